import json

import numpy as np
import pytest
from stable_baselines3 import DQN
from stable_baselines3.common.logger import configure
from stable_baselines3.common.vec_env import VecEnvWrapper

from agents.callbacks import DrivingEvalCallback, HParamsCallback
from envs import make_vec_env


@pytest.fixture
def model(tmp_path):
    model = DQN("MlpPolicy", make_vec_env("highway-fast-v0", 2, seed=0), learning_starts=20,
                buffer_size=200, policy_kwargs={"net_arch": [16]}, seed=0, device="cpu")
    model.set_logger(configure(str(tmp_path / "tb"), ["tensorboard"]))
    return model


def test_eval_cadence_and_records(model):
    records = []
    callback = DrivingEvalCallback(make_vec_env("highway-fast-v0", 1, seed=0, stream=1), eval_every=100,
                                   n_episodes=2, on_evaluation=records.append)
    model.learn(300, callback=callback)
    # DQN collects 4 steps x 2 envs per rollout, so learn(300) ends at 304: one final evaluation.
    assert [record["step"] for record in records] == [100, 200, 300, model.num_timesteps]
    for record in records:
        assert record["n_episodes"] == 2
        assert 0.0 <= record["crash_rate"] <= 1.0
        assert 0.0 < record["mean_return"] <= 30.0


class ActionSpy(VecEnvWrapper):
    """Remembers every action sent to the env, one row per env and step."""

    def __init__(self, venv) -> None:
        super().__init__(venv)
        self.rows: list[np.ndarray] = []

    @property
    def actions(self) -> np.ndarray:
        return np.concatenate(self.rows)

    def reset(self):
        return self.venv.reset()

    def step_async(self, actions) -> None:
        self.rows.append(np.array(actions).reshape(self.num_envs, -1))
        self.venv.step_async(actions)

    def step_wait(self):
        return self.venv.step_wait()


def test_action_fractions_are_logged_per_action(model, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    records = []
    spy = ActionSpy(make_vec_env("highway-fast-v0", 1, seed=0, stream=1))  # one env: every episode counts
    callback = DrivingEvalCallback(spy, eval_every=0, n_episodes=2, on_evaluation=records.append)
    model.learn(50, callback=callback)
    (record,) = records
    json.dumps(record)  # eval.json is written with json.dump
    taken = spy.actions[:, 0].tolist()
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    for action in range(5):  # highway-fast-v0's meta-actions
        (event,) = events.Scalars(f"eval/action_fraction/{action}")
        assert event.step == model.num_timesteps
        assert event.value == pytest.approx(taken.count(action) / len(taken))
    assert record["action_counts"] == [taken.count(action) for action in range(5)]


def test_continuous_action_spread_is_logged_per_dimension(tmp_path):
    import warnings

    from stable_baselines3 import PPO
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    def racetrack(stream: int):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # racetrack-v0's version note
            return make_vec_env("racetrack-v0", 1, seed=0, backend="envpool", config={"duration": 3}, stream=stream)

    model = PPO("MlpPolicy", racetrack(0), n_steps=16, batch_size=16, n_epochs=1, seed=0, device="cpu",
                policy_kwargs={"net_arch": [8]})
    model.set_logger(configure(str(tmp_path / "tb"), ["tensorboard"]))
    spy = ActionSpy(racetrack(1))
    records = []
    model.learn(16, callback=DrivingEvalCallback(spy, eval_every=0, n_episodes=2, on_evaluation=records.append))
    (record,) = records
    json.dumps(record)
    taken = spy.actions  # one env: every step belongs to a counted episode
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    (mean,) = events.Scalars("eval/action_mean/0")
    (std,) = events.Scalars("eval/action_std/0")
    assert mean.value == pytest.approx(taken[:, 0].mean(), abs=1e-6)
    assert std.value == pytest.approx(taken[:, 0].std(), abs=1e-6)
    assert std.value > 0.0  # the untrained greedy steering varies with the observation: not a 0 == 0 check
    assert not [tag for tag in events.Tags()["scalars"] if tag.startswith("eval/action_fraction/")]


def test_final_evaluation_when_budget_is_not_a_multiple(model):
    records = []
    callback = DrivingEvalCallback(make_vec_env("highway-fast-v0", 1, seed=0, stream=1), eval_every=0,
                                   n_episodes=1, on_evaluation=records.append)
    model.learn(50, callback=callback)
    assert [record["step"] for record in records] == [model.num_timesteps]


def test_hparams_record_is_written_to_tensorboard(model, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    model.learn(20, callback=HParamsCallback({"algo": "dqn", "gamma": 0.99, "seed": 0}))
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    assert "_hparams_/experiment" in events.summary_metadata
    content = events.PluginTagToContent("hparams")
    assert any(b"gamma" in blob for blob in content.values())
    assert any(b"eval/mean_return" in blob for blob in content.values())


def test_a_group_member_writes_its_values_but_no_summary_of_its_own(model, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams.metadata import SESSION_START_INFO_TAG, parse_session_start_info_plugin_data

    model.learn(20, callback=HParamsCallback({"algo": "dqn", "kappa": 0.3, "variant": "asymmetric", "lr": None},
                                             summary=False))
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    assert "_hparams_/experiment" not in events.summary_metadata  # the group's folder holds the one summary
    start = parse_session_start_info_plugin_data(events.PluginTagToContent("hparams")[SESSION_START_INFO_TAG])
    assert start.hparams["variant"].string_value == "asymmetric" and start.hparams["kappa"].number_value == 0.3
    assert set(start.hparams) == {"algo", "kappa", "variant"}  # None: no value
    assert start.group_name == ""  # each run its own group, named by the run


def test_a_hook_returning_false_stops_training(model):
    seen = []

    def stop_after_second(record):
        seen.append(record["step"])
        return len(seen) < 2

    callback = DrivingEvalCallback(make_vec_env("highway-fast-v0", 1, seed=0, stream=1), eval_every=100,
                                   n_episodes=1, hooks=[stop_after_second])
    model.learn(1000, callback=callback)
    assert seen == [100, 200]
    assert callback.stopped_early == 200 and model.num_timesteps == 200


def test_every_hook_sees_every_record_even_after_a_stop_vote(model):
    """A pruning hook voting to stop must not hide the record from the hooks after it (a logger,
    the best-model keeper): all of them see it, then training stops."""
    first, second = [], []

    def stop_now(record):
        first.append(record["step"])
        return False

    callback = DrivingEvalCallback(make_vec_env("highway-fast-v0", 1, seed=0, stream=1), eval_every=100,
                                   n_episodes=1, hooks=[stop_now, lambda record: second.append(record["step"])])
    model.learn(1000, callback=callback)
    assert first == [100] and second == [100]
    assert callback.stopped_early == 100


def test_a_collapsed_policy_is_warned_about_once_a_run_not_at_every_evaluation(model, caplog, monkeypatch):
    import logging

    faster = 3

    def always_faster(observation, state=None, episode_start=None, deterministic=False):
        return np.full(len(observation), faster), state

    monkeypatch.setattr(model, "predict", always_faster)  # training and evaluation alike: every evaluation collapsed
    records = []
    callback = DrivingEvalCallback(make_vec_env("highway-fast-v0", 1, seed=0, stream=1), eval_every=100,
                                   n_episodes=1, on_evaluation=records.append)
    with caplog.at_level(logging.WARNING, logger="neurodrive.eval"):
        model.learn(300, callback=callback)
    assert len(records) == 4 and all(record["dominant_action"]["action"] == faster for record in records)
    warnings = [record for record in caplog.records if "may have collapsed" in record.getMessage()]
    assert len(warnings) == 1 and f"action {faster} took 100.0%" in warnings[0].getMessage()

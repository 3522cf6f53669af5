import pytest
from stable_baselines3 import DQN
from stable_baselines3.common.logger import configure

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

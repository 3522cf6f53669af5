"""Each line of the README's bad-input table: the command fails early with a message naming the problem."""

import json
import shutil

import pytest
import yaml

from experiments.cli import main
from tests_support import EXPERIMENTS

SMOKE = str(EXPERIMENTS / "smoke.yaml")


def run(capsys, *args: str) -> tuple[int, str]:
    code = main(list(args))
    return code, capsys.readouterr().err


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    assert main(["train", SMOKE, "--set", f"logging.root={root}", "--set", "training.eval_every=0",
                 "--set", "training.total_timesteps=100"]) == 0
    (run_dir,) = (root / "smoke").iterdir()
    return run_dir


@pytest.mark.parametrize("overrides, message", [
    (["env.n_envs=[1"], "malformed YAML"),
    (["env.lane=3"], "env.lane: unknown key; allowed: id, backend, n_envs, config"),
    (["training.seed=abc"], "training.seed: Input should be a valid integer"),
    (["training.eval_episodes=0"], "training.eval_episodes: Input should be greater than or equal to 1"),
    (["env.id=highway-v7"], "env.id: unknown scenario 'highway-v7'; allowed:"),
    (["env.backend=envpool", "env.config.other_vehicles_type=highway_env.vehicle.behavior.AggressiveVehicle"],
     "env.config.other_vehicles_type: the EnvPool port of highway-fast-v0 cannot honour this key"),
    (["env.config.other_vehicles_type=x.Y"], "env.config.other_vehicles_type: must be the dotted path of a "
                                             "highway-env Vehicle class"),
])
def test_train_rejects_bad_config_before_any_work(capsys, tmp_path, overrides, message):
    args = ["train", SMOKE, "--set", f"logging.root={tmp_path / 'runs'}"]
    for item in overrides:
        args += ["--set", item]
    code, err = run(capsys, *args)
    assert code == 2 and message in err
    assert not (tmp_path / "runs").exists()


def test_unwritable_run_root(capsys, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    code, err = run(capsys, "train", SMOKE, "--set", f"logging.root={blocker}/runs")
    assert code == 2 and "logging.root: cannot create a run folder" in err


@pytest.mark.parametrize("command", ["evaluate", "record"])
def test_missing_run_folder(capsys, tmp_path, command):
    code, err = run(capsys, command, str(tmp_path / "nope"))
    assert code == 2 and "no such run folder" in err


@pytest.mark.parametrize("command", ["evaluate", "record"])
def test_corrupt_config_and_model(capsys, tmp_path, finished_run, command):
    broken = tmp_path / "broken"
    shutil.copytree(finished_run, broken)
    (broken / "config.yaml").write_text("name: [unclosed\n")
    code, err = run(capsys, command, str(broken))
    assert code == 2 and "malformed YAML" in err
    shutil.copy(finished_run / "config.yaml", broken / "config.yaml")
    (broken / "model.zip").write_bytes(b"not a zip file")
    code, err = run(capsys, command, str(broken))
    assert code == 2 and "cannot load as agent.algo='dqn'" in err
    (broken / "model.zip").unlink()
    code, err = run(capsys, command, str(broken))
    assert code == 2 and "model.zip is missing" in err


def test_model_from_another_algorithm(capsys, tmp_path, finished_run):
    other = tmp_path / "other"
    shutil.copytree(finished_run, other)
    config = yaml.safe_load((other / "config.yaml").read_text())
    config["agent"] = {"algo": "a2c"}
    (other / "config.yaml").write_text(yaml.safe_dump(config))
    code, err = run(capsys, "evaluate", str(other))
    assert code == 2 and "cannot load as agent.algo='a2c'" in err


def test_resume_errors(capsys, tmp_path, finished_run):
    code, err = run(capsys, "train", "--resume", str(tmp_path / "nope"))
    assert code == 2 and "no such run folder" in err
    code, err = run(capsys, "train", "--resume", str(finished_run))
    assert code == 2 and "already finished; nothing to resume" in err
    no_checkpoint = tmp_path / "no_checkpoint"
    shutil.copytree(finished_run, no_checkpoint)
    meta = (no_checkpoint / "run.json").read_text().replace('"finished"', '"failed"')
    (no_checkpoint / "run.json").write_text(meta)
    shutil.rmtree(no_checkpoint / "checkpoints")
    code, err = run(capsys, "train", "--resume", str(no_checkpoint))
    assert code == 2 and "no checkpoint to resume from" in err
    code, err = run(capsys, "train", SMOKE, "--resume", str(finished_run))
    assert code == 2 and "give either CONFIG or --resume" in err


def test_a_failure_while_building_is_recorded(capsys, tmp_path):
    """A value the model rejects only when it is built: a configuration error (status 2, no
    traceback), and the run folder says failed, and why."""
    code, err = run(capsys, "train", SMOKE, "--set", f"logging.root={tmp_path}", "--set",
                    "agent.policy_kwargs={features_extractor_class: agents.extractors.EgoAttention, "
                    "features_extractor_kwargs: {embed_dim: 7, heads: 2}}")
    assert code == 2 and "features_extractor_kwargs.embed_dim: must divide by heads=2" in err
    assert "Traceback" not in err
    (run_dir,) = (tmp_path / "smoke").iterdir()
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["status"] == "failed" and meta["steps"] == 0 and "embed_dim" in meta["error"]


def test_an_unknown_policy_is_refused_before_any_work(capsys, tmp_path):
    code, err = run(capsys, "train", SMOKE, "--set", f"logging.root={tmp_path}", "--set", "agent.policy=NoSuchPolicy")
    assert code == 2
    assert "agent.policy: DopamineDQN has no policy 'NoSuchPolicy'; allowed: MlpPolicy, CnnPolicy" in err
    assert not (tmp_path / "smoke").exists()


FAILING_MODULE = """
from neuro.dopamine import DopamineModule


class FailsLater(DopamineModule):
    def __init__(self):
        self.calls = 0

    def transform(self, td_error, reward=None):
        self.calls += 1
        if self.calls >= 30:
            raise ValueError("a bug in the module, not a configuration error")
        return td_error
"""


def test_a_value_error_while_training_is_a_crash_not_a_config_error(capsys, tmp_path, monkeypatch):
    """Only configuration errors exit with status 2 and one line; a ValueError raised mid-training
    propagates (the interpreter prints its traceback, exit 1) and run.json says failed."""
    (tmp_path / "failing_module.py").write_text(FAILING_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ValueError, match="a bug in the module"):
        main(["train", SMOKE, "--set", f"logging.root={tmp_path}", "--set", "training.eval_every=0",
              "--set", "neuro.dopamine={type: 'failing_module:FailsLater'}",
              "--set", "agent.hyperparameters.learning_starts=20"])
    assert "error:" not in capsys.readouterr().err
    (run_dir,) = (tmp_path / "smoke").iterdir()
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["status"] == "failed" and "a bug in the module" in meta["error"] and meta["steps"] > 0


COMPARE_FILE = str(EXPERIMENTS / "compare" / "highway_ppo.yaml")
SWEEP_FILE = str(next((EXPERIMENTS / "sweeps").glob("*.yaml")))


@pytest.mark.parametrize("args, message", [
    (["compare", COMPARE_FILE, "--workers", "1000000"], "--workers: must be an int in [1, "),
    (["compare", COMPARE_FILE, "--workers", "0"], "--workers: must be an int in [1, "),
    (["sweep", SWEEP_FILE, "--workers", "1000000"], "--workers: must be an int in [1, "),
    (["sweep", SWEEP_FILE, "--n-trials", "10000000000"], "--n-trials: must be an int in [1, 1000000]"),
    (["bench", "--repeats", "100000"], "--repeats: must be an int in [1, 1000]"),
    (["fidelity", "--episodes", "10000000"], "--envpool-episodes: must be an int in [2, 1000000]"),
])
def test_command_line_counts_are_bounded_before_any_work(capsys, tmp_path, monkeypatch, args, message):
    """A count typed on the command line gets the bound of the config's counts: one line, exit 2, nothing run."""
    monkeypatch.chdir(tmp_path)
    code, err = run(capsys, *args)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    if "--workers" in args:
        assert "CPUs" in err  # the bound is the machine's, and the line says so
    assert list(tmp_path.iterdir()) == []  # no run folder, grid, study or results file


@pytest.mark.parametrize("args, message", [
    (["evaluate", "RUN", "--episodes", "10000000"], "--episodes: must be an int in [1, 1000000]"),
    (["evaluate", "RUN", "--n-envs", "100000"], "--n-envs: must be an int in [1, 1024]"),
    (["record", "RUN", "--episodes", "100000"], "--episodes: must be an int in [1, 1000] (each is a video file)"),
])
def test_evaluate_and_record_counts_are_bounded(capsys, finished_run, args, message):
    before = sorted(path.name for path in finished_run.iterdir())
    code, err = run(capsys, *[str(finished_run) if arg == "RUN" else arg for arg in args])
    assert code == 2 and message in err
    assert sorted(path.name for path in finished_run.iterdir()) == before

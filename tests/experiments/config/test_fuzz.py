"""A property-based fuzzer over the shipped experiment, sweep and comparison files.

Each example takes one shipped file and mutates it at random paths (a value swapped for another type,
a negative, zero, a huge int, nan or inf, a string, a list, a mapping; a key deleted; an unknown key
added). Loading it must either succeed or raise a ``ConfigError`` whose message is one line naming
the field; never another exception, and within a time bound. The fast lane runs a few dozen examples,
derandomized (the same ones every run); the slow lane a few hundred, and runs some mutated experiments
that validate through the CLI for a few steps: exit 0, or 2 with one line, never a traceback.
"""

from __future__ import annotations

import copy
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents.registry import constructor_arguments, get_algorithm
from envs.scenarios import highway_env_default_config
from experiments.compare.spec import comparison_from_raw
from experiments.config import ConfigError, set_path, validate_config
from experiments.config.toolkit import read_yaml_mapping
from experiments.sweeps.spec import sweep_from_raw

PRESETS = Path(__file__).resolve().parents[3] / "experiments" / "presets"
REPOSITORY = PRESETS.parents[1]
SWEEPS = sorted((PRESETS / "sweeps").glob("*.yaml"))
COMPARISONS = sorted((PRESETS / "compare").glob("*.yaml"))
EXPERIMENTS = sorted(path for path in PRESETS.rglob("*.yaml") if path.parent.name not in ("sweeps", "compare"))

LOAD_SECONDS = 60  # one load, a comparison's scenario builds included, on a busy two-core machine
# One line naming a field: "<source>: <field or file>: <what is wrong>".
ONE_LINE = re.compile(r"^[^\n]*?\S: [^\n]*\S$")

Path_ = tuple[Any, ...]


def _load(kind: str, path: Path, raw: dict[str, Any]) -> None:
    """Validate ``raw`` as the shipped file at ``path`` (a relative ``experiment:`` resolves beside it)."""
    if kind == "experiment":
        validate_config(raw, str(path))
    elif kind == "sweep":
        sweep_from_raw(raw, str(path), path.parent, default_name=path.stem)
    else:
        comparison_from_raw(raw, str(path), path.parent, text="")


def _paths(node: Any, prefix: Path_ = ()) -> Iterator[Path_]:
    """Every path in a YAML tree (mapping keys and list indices), the containers' own paths included."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield (*prefix, key)
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield (*prefix, index)
            yield from _paths(value, (*prefix, index))


def _container(raw: Any, path: Path_) -> Any:
    node = raw
    for part in path[:-1]:
        node = node[part]
    return node


# Keys as a user types them: a key with a newline is a line break in the message naming it (test_values).
PRINTABLE = st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"))
VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from([0, -1, 1, -5, 2, 10**9, 10**12, 10**18, 2**64, -(10**12)]),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([float("nan"), float("inf"), float("-inf"), 0.0, -0.5, 1e-300, 1e300, 0.5]),
    # no subnormals: a run in the same process may flush them to zero (training.flush_denormal)
    st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=False),
    st.sampled_from(["abc", "", "auto", ".", "..", "os:system", "1e3", "highway-v0", "none"]),
    st.text(max_size=6),
    st.lists(st.integers(min_value=-3, max_value=3), max_size=3),
    # copies: a later mutation may add a key inside, and the strategy's own value must stay as it was
    st.sampled_from([[], [1], [-64], [64, -64], [[1]], {}, {"type": "x"}, {"a": 1}]).map(copy.deepcopy),
)


# Fields a shipped file may leave out, set by the "set" mutation (a sweep or comparison sets them under
# ``fixed``): the env.config keys of the file's scenario, the counts and the wrappers.
COUNTS = ("env.n_envs", "env.backend", "env.wrappers", "training.total_timesteps", "training.seed",
          "training.eval_episodes", "training.eval_n_envs", "training.eval_every")


AGENT_FIELDS = ("agent.policy_kwargs.net_arch", "agent.policy_kwargs.activation_fn", "training.device",
                "training.torch_threads")


def _targets(raw: dict[str, Any], path: Path) -> list[str]:
    """The fields the "set" mutation writes in this file: its scenario's env.config keys, the counts, and
    its algorithm's hyperparameters, policy keywords, device and threads."""
    experiment = raw
    if isinstance(raw.get("experiment"), str):  # a sweep or comparison names its base experiment
        experiment = read_yaml_mapping(path.parent / raw["experiment"])
    env, agent = experiment.get("env") or {}, experiment.get("agent") or {}
    hyperparameters = [name for name in constructor_arguments(get_algorithm(agent.get("algo", "dqn")))
                       if name not in ("policy", "env", "seed", "device", "verbose", "tensorboard_log", "neuro")]
    return [*COUNTS, *(f"env.config.{key}" for key in highway_env_default_config(env.get("id", "highway-fast-v0"))),
            *(f"agent.hyperparameters.{name}" for name in hyperparameters), *AGENT_FIELDS]


WRAPPER_SPECS = st.fixed_dictionaries(
    {"type": st.sampled_from(["observation_noise", "sensor_dropout", "observation_delay", "action_delay", "x"])},
    optional={"std": VALUES, "probability": VALUES, "steps": VALUES, "seed": VALUES, "default_action": VALUES})


@st.composite
def _mutation(draw: st.DrawFn, raw: dict[str, Any], targets: list[str]) -> tuple[str, Path_]:
    """Mutate ``raw`` in place at one random path; returns what was done, for the failure message."""
    paths = list(_paths(raw))
    operation = draw(st.sampled_from(["replace", "replace", "replace", "wrap", "delete", "add", "set", "set"]))
    if operation == "set":
        target = draw(st.sampled_from(targets))
        value = draw(st.lists(WRAPPER_SPECS, max_size=2) if target == "env.wrappers" else VALUES)
        if "parameters" in raw or "variants" in raw:  # a sweep or comparison: through its fixed overrides
            raw.setdefault("fixed", {})
            if isinstance(raw["fixed"], dict):
                raw["fixed"][target] = value
            return f"set fixed.{target}", ("fixed", target)
        try:
            set_path(raw, target, value)
        except ConfigError:  # an earlier mutation made a section on the way a scalar
            return "none", ()
        return f"set {target}", tuple(target.split("."))
    if operation == "add" or not paths:
        mappings = [()] + [path for path in paths if isinstance(_container(raw, (*path, None)), dict)]
        where = draw(st.sampled_from(mappings))
        key = draw(st.sampled_from(["unknown_key", "seeds", "n_envs", "type", "steps"]) | st.text(PRINTABLE, min_size=1,
                                                                                               max_size=5))
        _container(raw, (*where, None))[key] = draw(VALUES)
        return f"add {key!r}", where
    path = draw(st.sampled_from(paths))
    parent, last = _container(raw, path), path[-1]
    if operation == "delete":
        del parent[last]
    elif operation == "wrap":  # the same value as another type
        value = parent[last]
        parent[last] = draw(st.sampled_from([str(value), [value], {"value": value}]))
    else:
        parent[last] = draw(VALUES)
    return operation, path


SHIPPED = [("experiment", path) for path in EXPERIMENTS] + [("sweep", path) for path in SWEEPS] + \
          [("comparison", path) for path in COMPARISONS]
RAW = {path: read_yaml_mapping(path) for _, path in SHIPPED}
TARGETS = {path: _targets(raw, path) for path, raw in RAW.items()}


@st.composite
def mutated_files(draw: st.DrawFn) -> tuple[str, Path, dict[str, Any], list[tuple[str, Path_]]]:
    kind, path = draw(st.sampled_from(SHIPPED))
    raw = copy.deepcopy(RAW[path])
    done = [draw(_mutation(raw, TARGETS[path])) for _ in range(draw(st.integers(min_value=1, max_value=3)))]
    return kind, path, raw, done


@contextmanager
def _deadline(seconds: int) -> Iterator[None]:
    """Fail instead of hanging: a load past ``seconds`` raises in the main thread."""

    def expire(signum: int, frame: Any) -> None:
        raise TimeoutError(f"loading took over {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def check_loads_or_one_line(kind: str, path: Path, raw: dict[str, Any], done: list[Any]) -> ConfigError | None:
    """The property: ``raw`` loads, or fails with a one-line ``ConfigError`` naming a field, in time."""
    start = time.monotonic()
    try:
        with _deadline(LOAD_SECONDS):
            _load(kind, path, raw)
    except ConfigError as error:
        message = str(error)
        assert ONE_LINE.match(message), f"{path.name} after {done}: not one line naming a field: {message!r}"
        return error
    except TimeoutError:
        raise AssertionError(f"{path.name} after {done}: loading hung past {LOAD_SECONDS} s") from None
    except Exception as error:  # the property: nothing but a ConfigError
        raise AssertionError(f"{path.name} after {done}: {type(error).__name__}: {error}") from error
    finally:
        elapsed = time.monotonic() - start
        assert elapsed < LOAD_SECONDS, f"{path.name} after {done}: loading took {elapsed:.0f} s"
    return None


def _fuzz(examples: int) -> Callable[..., None]:
    @settings(max_examples=examples, derandomize=True, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(mutated_files())
    def run(case: tuple[str, Path, dict[str, Any], list[Any]]) -> None:
        check_loads_or_one_line(*case)

    return run


def test_fuzzed_files_load_or_fail_in_one_line_naming_the_field() -> None:
    _fuzz(30)()


@pytest.mark.slow
def test_fuzzed_files_load_or_fail_in_one_line_naming_the_field_wide() -> None:
    _fuzz(400)()


def test_the_shipped_files_load_unmutated() -> None:
    """The fuzzer's starting points are valid, so what fails is the mutation."""
    for kind, path in SHIPPED:
        assert check_loads_or_one_line(kind, path, copy.deepcopy(RAW[path]), []) is None, path




def test_the_property_catches_a_traceback_and_a_multi_line_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """The check fails on what the fuzzer hunts: another exception, or an error over several lines."""
    raw = copy.deepcopy(RAW[EXPERIMENTS[0]])

    def crash(*args: Any) -> None:
        raise TypeError("'<' not supported between instances of 'str' and 'int'")

    def two_lines(*args: Any) -> None:
        raise ConfigError("config: 1 validation error\n  env.config.duration: bad")

    for broken in (crash, two_lines):
        monkeypatch.setattr(sys.modules[__name__], "_load", broken)
        with pytest.raises(AssertionError):
            check_loads_or_one_line("experiment", EXPERIMENTS[0], raw, [])


# Mutated experiments the slow test runs: each validates (a ConfigError at load is the fast lane's business).
RUN_MUTATIONS = [
    ("smoke.yaml", "env.config.duration=3.5"),
    ("smoke.yaml", "env.config.vehicles_count=0"),
    ("smoke.yaml", "env.config.vehicles_density=0.001"),
    ("smoke.yaml", "env.wrappers=[{type: observation_delay, steps: 1000}]"),
    ("highway_dqn.yaml", "env.config.lanes_count=1"),
    ("highway_dqn.yaml", "env.config.policy_frequency=1"),
    ("racetrack_ppo.yaml", "env.config.other_vehicles=0"),
    ("smoke.yaml", "env.config.observation={type: Kinematics, vehicles_count: 1000}"),
    ("smoke.yaml", "env.config.observation={type: OccupancyGrid}"),
    ("smoke.yaml", "env.config.action={type: ContinuousAction}"),
]


# Small runs: whatever a mutation set, these decide how long a run takes.
SHORT_RUN = ["training.total_timesteps=64", "training.eval_every=0", "training.eval_episodes=1",
             "training.eval_n_envs=1", "env.n_envs=1", "logging.progress_bar=false", "training.checkpoint_every=0"]


def _train(config: Path, overrides: list[str], folder: Path) -> subprocess.CompletedProcess[str]:
    """``neurodrive train`` of this checkout (not an installed copy) in a fresh process."""
    command = [sys.executable, "-m", "experiments.cli", "train", str(config)]
    for override in [*overrides, *SHORT_RUN, f"logging.root={folder}"]:
        command += ["--set", override]
    environment = {**os.environ, "PYTHONPATH": str(REPOSITORY)}
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env=environment, cwd=folder)


def _assert_ran_or_one_line(result: subprocess.CompletedProcess[str]) -> None:
    """Exit 0, or 2 with one ``error:`` line, the last; never a traceback."""
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert result.returncode in (0, 2), result.stderr[-3000:]
    if result.returncode == 2:
        errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1 and result.stderr.strip().splitlines()[-1] == errors[0], result.stderr
        assert ONE_LINE.match(errors[0].removeprefix("error: ")), errors[0]


@pytest.mark.slow
@pytest.mark.parametrize(("preset", "assignment"), RUN_MUTATIONS)
def test_mutated_experiments_that_validate_run_or_exit_2_in_one_line(preset: str, assignment: str,
                                                                     tmp_path: Path) -> None:
    _assert_ran_or_one_line(_train(PRESETS / preset, [assignment], tmp_path))


@pytest.mark.slow
def test_fuzzed_experiments_that_validate_run_or_exit_2_in_one_line(tmp_path: Path) -> None:
    """The first few fuzzed experiments (derandomized) that validate, each trained a few steps."""
    valid: list[tuple[Path, dict[str, Any], list[Any]]] = []

    @settings(max_examples=80, derandomize=True, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(mutated_files())
    def collect(case: tuple[str, Path, dict[str, Any], list[Any]]) -> None:
        kind, path, raw, done = case
        if kind == "experiment" and len(valid) < 4 and all(operation != "none" for operation, _ in done) and \
                check_loads_or_one_line(kind, path, raw, done) is None:
            valid.append((path, copy.deepcopy(raw), done))

    collect()
    assert valid, "no fuzzed experiment validated"
    for index, (path, raw, done) in enumerate(valid):
        config = tmp_path / f"{index}-{path.name}"
        config.write_text(yaml.safe_dump(raw, allow_unicode=True))
        folder = tmp_path / f"run{index}"
        folder.mkdir()
        result = _train(config, [], folder)
        try:
            _assert_ran_or_one_line(result)
        except AssertionError as error:
            raise AssertionError(f"{path.name} after {done}: {error}") from None

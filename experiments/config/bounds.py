"""Upper bounds of the counts a config file gives, so none hangs or exhausts the machine.

A comparison's ``seeds: 1000000000000`` exhausted memory while it was validated; ``env.n_envs: 100000``
on highway-env ran out of file descriptors. Every count has a bound here, fixed or read from the
machine (``max_process_envs``), checked before any work; each error is one line naming the field.
"""

from __future__ import annotations

import math
import os
import resource
from dataclasses import dataclass
from typing import Any

from experiments.config.errors import ConfigError

MAX_SEED = 2**32 - 1  # numpy's seed range (SB3 seeds numpy with the run seed)
MAX_SEEDS = 10_000  # seeds of a comparison or sweep: each is a run
MAX_TIMESTEPS = 10**12  # env steps of one run: years of simulation, but finite
MAX_EPISODES = 1_000_000  # evaluation episodes
MAX_ENVS = 1024  # parallel envs of any backend: more only cost memory on any machine this runs on
MAX_TRIALS = 1_000_000  # trials of a sweep
_PROCESS_FILES = 4  # file descriptors the parent holds per SubprocVecEnv worker (pipe, sentinel, spare)
_PROCESSES_PER_CPU = 8  # env processes beyond this many per CPU only wait for one


def check_seeds(value: Any) -> Any:
    """A seed count in [1, MAX_SEEDS] or a list of distinct seeds in [0, MAX_SEED]; a ``ValueError`` in
    one sentence instead of pydantic's error per union member."""

    def whole(number: Any, low: int, high: int) -> bool:
        return isinstance(number, int) and not isinstance(number, bool) and low <= number <= high

    if whole(value, 1, MAX_SEEDS) or (isinstance(value, list) and 0 < len(value) <= MAX_SEEDS
                                      and all(whole(seed, 0, MAX_SEED) for seed in value)
                                      and len(set(value)) == len(value)):
        return value
    shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "..."
    raise ValueError(f"give a count in [1, {MAX_SEEDS}] or a list of at most {MAX_SEEDS} distinct seeds in "
                     f"[0, {MAX_SEED}] (got {shown})")


@dataclass(frozen=True)
class Rule:
    """What one ``env.config`` value may be: a kind and, for numbers, an interval."""

    kind: str  # int, number, bool, str, list, dict, any; object: never from a file
    low: float | None = None
    high: float | None = None
    low_open: bool = False  # low itself excluded (a density must be > 0)
    optional: bool = False  # null allowed (highway-env's "choose for me")
    why: str = ""  # why the upper bound, said in the error
    words: tuple[str, ...] = ()  # strings also allowed (an int or "auto"); of kind str: the only ones

    def allowed(self) -> str:
        """The allowed values in words: ``an int in [1, 1000]``, ``a finite number > 0``."""
        if self.kind == "object":
            return "a Python object, which a file cannot give"
        noun = {"int": "an int", "number": "a finite number", "bool": "true or false", "str": "a string",
                "list": "a list", "dict": "a mapping", "any": "any value"}[self.kind]
        if self.kind == "str" and self.words:
            noun = f"one of {', '.join(self.words)}"
        if self.low is not None and self.high is not None and not self.low_open:
            noun += f" in [{_number(self.low)}, {_number(self.high)}]"
        elif self.low is not None:
            noun += f" {'>' if self.low_open else '>='} {_number(self.low)}"
            noun += f" and <= {_number(self.high)}" if self.high is not None else ""
        elif self.high is not None:
            noun += f" <= {_number(self.high)}"
        noun += "".join(f" or {word!r}" for word in self.words) if self.kind != "str" else ""
        noun += " or null" if self.optional else ""
        return noun + (f" ({self.why})" if self.why else "")

    def accepts(self, value: Any) -> bool:
        if value is None:
            return self.optional or self.kind == "any"
        if self.kind in ("any", "object"):
            return self.kind == "any"
        if isinstance(value, str) and value in self.words:
            return True
        if self.kind == "bool":
            return isinstance(value, bool)
        if self.kind == "str":
            return isinstance(value, str) and not self.words
        if self.kind == "list":
            return isinstance(value, list | tuple)
        if self.kind == "dict":
            return isinstance(value, dict)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if self.kind == "int" and not isinstance(value, int):
            return False
        if not math.isfinite(value):
            return False
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        return self.high is None or value <= self.high


def _number(value: float) -> str:
    """A bound as written: 1000000 rather than 1e+06, 0.5 as 0.5."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def rule_of_default(default: Any) -> Rule:
    """A value's rule from the type of its default: ints take ints only, floats finite numbers."""
    if default is None:
        return Rule("any")
    for kind, types in (("bool", bool), ("int", int), ("number", float), ("str", str), ("list", (list, tuple)),
                        ("dict", dict)):
        if isinstance(default, types):
            return Rule(kind)
    return Rule("any")


def max_process_envs() -> int:
    """How many envs this machine runs as processes (highway-env's SubprocVecEnv): each holds file
    descriptors in the parent, and more than a few per CPU only wait for one."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    by_files = MAX_ENVS if soft == resource.RLIM_INFINITY else max(1, (soft - 64) // _PROCESS_FILES)
    return max(1, min(MAX_ENVS, by_files, _PROCESSES_PER_CPU * (os.cpu_count() or 1)))


def check_process_envs(field: str, n_envs: int, backend: str) -> None:
    """Fail in one line when ``n_envs`` highway-env processes do not fit this machine."""
    if backend != "highway-env" or n_envs <= 1:  # one env runs in this process
        return
    limit = max_process_envs()
    if n_envs > limit:
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        raise ConfigError(
            f"{field}: must be an int in [1, {limit}] on highway-env, where each env is a process: this machine "
            f"has {os.cpu_count()} CPUs and an open-file limit of {soft} (ulimit -n); got {n_envs}")


MAX_VIDEOS = 1000  # episodes recorded to video by one command
MAX_REPEATS = 1000  # timed repeats of a benchmark section
_WORKERS_PER_CPU = 4  # worker processes each train a model: beyond a few per CPU they only wait and fill memory


def max_workers() -> int:
    """How many worker processes (each training one run) this machine takes at once."""
    return _WORKERS_PER_CPU * (os.cpu_count() or 1)


def check_flag(flag: str, value: int | None, high: int, why: str = "", low: int = 1) -> None:
    """A command-line count in ``[low, high]``, or one line naming the flag, the range and why the bound."""
    if value is not None and not low <= value <= high:
        reason = f" ({why})" if why else ""
        raise ConfigError(f"{flag}: must be an int in [{low}, {high}]{reason}; got {value}")


def check_workers(flag: str, value: int) -> None:
    """``--workers``: at least 1, and at most a few per CPU of this machine."""
    check_flag(flag, value, max_workers(),
               f"worker processes each train a run: this machine has {os.cpu_count()} CPUs")

"""The generic registry of neuro parts: names and dotted paths, parameter checks from signatures
(classes without ``__init__``, ``**kwargs`` up the hierarchy, annotated bounds), nothing built."""

from __future__ import annotations

from typing import Annotated

import pytest

from neuro.parts import NEURO_PARTS, make_neuro, part_registry
from neuro.registry import OpenInterval, Registry, SpecError, constructor_signature


class Part:
    """The interface of a toy kind of part."""

    def step(self) -> float:
        return 0.0


class NoInit(Part):
    pass


class Gain(Part):
    built = 0

    def __init__(self, gain: Annotated[float, OpenInterval(0.0, 10.0)] = 1.0) -> None:
        Gain.built += 1
        self.gain = gain


class Forwarding(Gain):
    """SB3's pattern: named arguments of its own, the rest forwarded to the base."""

    def __init__(self, bias: float = 0.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.bias = bias


class OpenEnded(Part):
    def __init__(self, **options) -> None:
        self.options = options


class NotAPart:
    pass


@pytest.fixture
def registry() -> Registry[Part]:
    toy: Registry[Part] = Registry("toy", Part, default="gain")
    for name, cls in (("gain", Gain), ("no_init", NoInit), ("forwarding", Forwarding), ("open", OpenEnded)):
        toy.register(name)(cls)
    return toy


def test_signatures_follow_kwargs_up_the_hierarchy():
    assert [p.name for p in constructor_signature(Forwarding)[0]] == ["bias", "gain"]
    assert constructor_signature(Forwarding)[1] is False  # Gain's __init__ takes nothing more
    assert constructor_signature(NoInit) == ([], False)
    assert constructor_signature(OpenEnded) == ([], True)


def test_checking_builds_nothing(registry):
    Gain.built = 0
    registry.check({"type": "gain", "gain": 2.0})
    registry.check({"type": "forwarding", "gain": 2.0, "bias": 1.0})
    assert Gain.built == 0
    part = registry.make({"type": "forwarding", "gain": 2.0, "bias": 1.0})
    assert Gain.built == 1 and (part.gain, part.bias) == (2.0, 1.0)


@pytest.mark.parametrize("spec, message", [
    ({"type": "no_init", "gain": 1.0}, r"neuro.toy.gain: no_init takes no such parameter; allowed: none"),
    ({"type": "forwarding", "gian": 1.0}, r"neuro.toy.gian: forwarding takes no such parameter; allowed: bias, gain"),
    ({"type": "forwarding", "gain": 11.0}, r"neuro.toy.gain: must be in \(0, 10\) \(got 11.0\)"),
    ({"type": "gain", "gain": "loud"}, r"neuro.toy.gain: Input should be a valid number"),
    ({"type": "gains"}, r"neuro.toy.type: unknown toy type 'gains'; allowed: gain, no_init, forwarding, open"),
    ({"type": "tests.nowhere:Gain"}, r"neuro.toy.type: cannot load 'tests.nowhere:Gain'"),
    ({"type": "neuro.test_registry_missing:X"}, r"neuro.toy.type: cannot load"),
    ("gain", r"neuro.toy: expected a mapping"),
])
def test_errors_name_the_config_path_and_what_is_allowed(registry, spec, message):
    with pytest.raises(SpecError, match=message):
        registry.check(spec)


def test_open_ended_classes_take_any_keyword(registry):
    assert registry.make({"type": "open", "anything": 1}).options == {"anything": 1}


def test_default_type_and_instances_pass_through(registry):
    assert isinstance(registry.make(None), Gain) and isinstance(registry.make({}), Gain)
    part = NoInit()
    assert registry.make(part) is part


def test_a_dotted_path_class_must_have_the_whole_interface(registry, tmp_path, monkeypatch):
    (tmp_path / "user_parts.py").write_text(
        "class Duck:\n    def step(self):\n        return 1.0\n\nclass Lame:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert registry.make({"type": "user_parts:Duck"}).step() == 1.0
    with pytest.raises(SpecError, match=r"does not implement the toy interface \(missing: step\)"):
        registry.check({"type": "user_parts:Lame"})


def test_the_interface_includes_the_attributes_agents_read(tmp_path, monkeypatch):
    """A duck-typed TD-error module without ``n_channels`` (read by DQN and PPO) is refused at check
    time, not met later as an AttributeError inside training."""
    from neuro.dopamine import DOPAMINE_MODULES

    (tmp_path / "duck_dopamine.py").write_text(
        "class Duck:\n"
        "    name = 'duck'\n    acting_weights = (1.0,)\n    loss = 'huber'\n"
        "    def transform(self, td_error): return td_error\n"
        "    def dopamine_signal(self, td_error): return td_error\n"
        "    def dqn_loss(self, current, target): ...\n"
        "    def target_samples(self, targets): return targets\n"
        "    def baseline(self, terminated, gamma): return 0.0\n"
        "    def observe_rewards(self, rewards): ...\n"
        "    def check_agent(self, gamma, n_steps): ...\n"
        "    def observe_values(self, values): ...\n"
        "    def stats(self): return {}\n"
        "    def state_dict(self): return {}\n"
        "    def load_state_dict(self, state): ...\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(SpecError, match=r"missing: n_channels"):
        DOPAMINE_MODULES.check({"type": "duck_dopamine:Duck"})


def test_a_constructor_that_refuses_its_keywords_is_a_spec_error(registry):
    class Strict(Part):
        def __init__(self, **options) -> None:
            if options:
                raise TypeError(f"unexpected {sorted(options)}")

    registry.register("strict")(Strict)
    with pytest.raises(SpecError, match=r"neuro.toy: cannot build Strict from \{'x': 1\}: unexpected \['x'\]"):
        registry.make({"type": "strict", "x": 1})


def test_every_kind_is_checked_and_unknown_kinds_are_named():
    assert "dopamine" in NEURO_PARTS
    part_registry("dopamine").check({"type": "asymmetric", "kappa": 0.2})
    with pytest.raises(SpecError, match=r"neuro.serotonin: unknown neuro part; allowed: dopamine"):
        part_registry("serotonin")


def test_an_agent_gets_every_kind_it_takes_with_defaults():
    parts = make_neuro({"dopamine": {"type": "asymmetric", "kappa": 0.2}}, ("dopamine",))
    assert type(parts["dopamine"]).__name__ == "AsymmetricTD" and parts["dopamine"].kappa == 0.2
    assert type(make_neuro(None, ("dopamine",))["dopamine"]).__name__ == "StandardTD"
    with pytest.raises(SpecError, match=r"neuro.dopamine: this agent takes no such part; it takes: none"):
        make_neuro({"dopamine": None}, ())


def agent_calls(variable: str) -> set[str]:
    """The members the agents' code reads from a variable or attribute named ``variable``."""
    import ast
    from pathlib import Path

    calls = set()
    for path in (Path(__file__).parents[2] / "agents").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute):
                owner = node.value
                name = owner.id if isinstance(owner, ast.Name) else getattr(owner, "attr", None)
                if name == variable:
                    calls.add(node.attr)
    return calls


def test_the_interfaces_list_what_the_agents_call():
    """A class loaded by dotted path must provide what the agents read from it, and no more: the
    agents' own code (``dopamine.x``, ``modulator.x``, ``reader.x``), besides ``stats`` (read by the
    logger of every part). The base classes implement all of it."""
    from neuro.dopamine import DopamineModule
    from neuro.modulation import Modulator
    from neuro.registry import interface_members

    assert set(interface_members(DopamineModule)) - {"stats"} == agent_calls("dopamine")
    assert set(interface_members(Modulator)) - {"stats"} == (
        agent_calls("modulator") | agent_calls("reader")) - {"stats"}
    for base in (DopamineModule, Modulator):
        assert all(hasattr(base, member) for member in interface_members(base))


class Ranged(Part):
    """A part whose combination check names only some of its parameters."""

    def __init__(self, low: float = 0.0, high: float = 1.0,
                 scale: Annotated[float, OpenInterval(0.0, 10.0)] = 1.0) -> None:
        self.low, self.high, self.scale = low, high, scale

    @staticmethod
    def check_combination(low: float, high: float) -> None:
        if not low < high:
            raise ValueError(f"low: must be below high ({high}), got {low}")


@pytest.mark.parametrize(("spec", "message"), [
    ({"type": "ranged", "scale": 2.0, "low": 3.0}, r"^neuro.toy.low: must be below high \(1.0\), got 3.0$"),
    ({"type": "ranged", "high": -1.0}, r"^neuro.toy.low: must be below high \(-1.0\), got 0.0$"),  # a default
    ({"type": "ranged", "scale": 20.0}, r"^neuro.toy.scale: must be in \(0, 10\) \(got 20.0\)$"),
])
def test_combinations_are_checked_on_the_validated_parameters_with_defaults(registry, spec, message):
    """The check sees every parameter with its default and only those it names: a check that leaves
    one out is no TypeError."""
    registry.register("ranged")(Ranged)
    with pytest.raises(SpecError, match=message):
        registry.check(spec)
    with pytest.raises(SpecError, match=message):
        registry.make(spec)
    assert registry.make({"type": "ranged", "low": 0.5, "scale": 2}).scale == 2.0


@pytest.mark.parametrize(("kind", "spec", "message"), [
    ("learning_rate", {"type": "schedule", "shape": "step", "factor": 0.5},
     r"^neuro.learning_rate.milestones: required for shape 'step'"),
    ("discount", {"type": "td_variance", "rate": 0.1, "lo": 0.99, "hi": 0.9},
     r"^neuro.discount.lo: 0 < lo <= hi < 1 must hold, got lo=0.99, hi=0.9$"),
    ("exploration", {"type": "reward_trend", "gain": 1.0, "slow": 0.5},
     r"^neuro.exploration.slow: must be below fast \(0.01\), got 0.5$"),
    ("dopamine", {"type": "distributional", "code": "quantile", "loss": "squared", "n_channels": 5},
     r"^neuro.dopamine.loss: squared makes expectiles; the quantile code takes absolute"),
    ("dopamine", {"type": "distributional", "code": "median"},
     r"^neuro.dopamine.code: Input should be 'expectile' or 'quantile' \(got 'median'\)$"),
    ("learning_rate", {"type": "surprise", "eta": 2.0}, r"^neuro.learning_rate.eta: must be in \(0, 1\] \(got 2.0\)$"),
])
def test_a_bad_combination_or_value_of_a_shipped_part_is_a_config_error(kind, spec, message):
    """Checked, built by an agent, or built in Python: one parameter model, one kind of error."""
    from agents.registry import ALGORITHMS, check_neuro

    with pytest.raises(SpecError, match=message):
        part_registry(kind).check(spec)
    with pytest.raises(SpecError, match=message):
        check_neuro(ALGORITHMS["dqn"], {kind: spec})
    with pytest.raises(SpecError, match=message):
        make_neuro({kind: spec}, (kind,))
    cls = part_registry(kind).resolve(spec["type"])
    field = message.split(":")[0].rsplit(".", 1)[1]
    with pytest.raises(ValueError, match=rf"^{cls.__name__}\.{field}: "):
        cls(**{key: value for key, value in spec.items() if key != "type"})

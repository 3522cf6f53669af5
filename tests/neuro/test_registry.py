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


def test_the_dopamine_interface_declares_what_the_agents_call():
    """A user's multi-channel module that subclasses the base gets every method the agents call."""
    from neuro.dopamine import DopamineModule

    for method in ("transform", "dqn_loss", "observe_values", "stats", "state_dict", "load_state_dict"):
        assert callable(getattr(DopamineModule, method))

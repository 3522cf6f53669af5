"""What a fidelity run compares and its defaults: light, so the CLI parser needs no scipy or SB3."""

from __future__ import annotations

from envs.scenarios import scenarios
from experiments.config.errors import ConfigError

CANDIDATE, REFERENCE = "envpool", "highway-env"
COMPARED_BACKENDS: tuple[str, str] = (CANDIDATE, REFERENCE)
DEFAULT_EPISODES: dict[str, int] = {CANDIDATE: 200, REFERENCE: 40}
DEFAULT_TOLERANCE = 0.1


def fidelity_scenarios() -> list[str]:
    """Scenarios both backends have (a highway-env id with an EnvPool port)."""
    return [env_id for env_id, scenario in scenarios().items() if scenario.envpool_id is not None]


def parse_scenarios(text: str | None) -> list[str]:
    """``a,b`` -> ``[a, b]``; ``None`` -> all; an unknown id errors with the allowed ones."""
    allowed = fidelity_scenarios()
    if text is None:
        return allowed
    chosen = [name.strip() for name in text.split(",") if name.strip()]
    if not chosen:
        raise ConfigError(f"--scenarios: empty; allowed: {', '.join(allowed)}")
    for name in chosen:
        if name not in allowed:
            raise ConfigError(f"--scenarios: unknown scenario {name!r}; allowed: {', '.join(allowed)}")
    return list(dict.fromkeys(chosen))

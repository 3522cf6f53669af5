"""A comparison's verdicts as Markdown tables (for ``docs/results.md``), from the ``statistics`` of a report's
``results.json``: the first condition in full, then every condition side by side.

The tables only format what :mod:`experiments.compare.report.summary` computed; ``scripts/results_doc.py``
pastes them into the document and ``tests/docs/test_results.py`` checks the document still carries them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

Entry = Mapping[str, Any]

OUTCOME_WORDS = {"better": "**better**", "worse": "**worse**", "not_separated": "not separated",
                 "both_collapsed": "both collapsed", "open": "open"}
OUTCOME_MARKS = {"better": " (+)", "worse": " (-)", "not_separated": "", "both_collapsed": " (c)", "open": " (?)"}


def _interval(entry: Entry | None, digits: int = 2, signed: bool = False) -> str:
    if not entry:
        return "-"
    sign = "+" if signed else ""
    value = f"{entry['value']:{sign}.{digits}f}"
    if entry.get("low") is None or entry.get("high") is None:
        return value
    return f"{value} [{entry['low']:{sign}.{digits}f}, {entry['high']:{sign}.{digits}f}]"


def _verdict_cell(verdict: Entry | None, is_baseline: bool) -> str:
    if is_baseline:
        return "baseline"
    if verdict is None:
        return "-"
    words = OUTCOME_WORDS.get(verdict["outcome"], str(verdict["outcome"]))
    if "look" in verdict:  # a group-sequential decision: the look it stopped at, its adjusted interval
        difference = _interval(verdict.get("mean_difference"), signed=True)
        return f"{words}, look {verdict['look']} of {verdict['looks']}: mean diff {difference}"
    p_value = verdict.get("p_adjusted")
    return f"{words}, p {p_value:.3f} (Holm)" if p_value is not None else words


def _energy_cell(entry: Entry) -> str:
    energy = entry.get("energy")
    if not energy:
        return "-"
    scale, unit = (1e6, "µJ") if max(energy["snn_pj"], energy["ann_pj"]) >= 1e7 else (1e3, "nJ")
    return f"{energy['snn_pj'] / scale:.1f} / {energy['ann_pj'] / scale:.1f} {unit} ({energy['ratio']:.2f})"


def verdict_table(statistics: Entry, scenario: str, condition: str) -> str:
    """Every variant under one condition: seeds, IQM and mean return with their 95% bootstrap intervals, the
    probability of improvement over the baseline, the verdict, the crash rate (mean over seeds with its t
    interval; crashes / episodes pooled), speed, and energy per decision where the variant spikes."""
    variants = statistics["summary"][scenario][condition]
    verdicts = {entry["variant"]: entry for entry in statistics["verdicts"]
                if entry["scenario"] == scenario and entry["condition"] == condition}
    energy = any(entry.get("energy") for entry in variants.values())
    head = ["variant", "seeds", "IQM return", "mean return", "P(improvement)", "verdict",
            "crash rate (crashes/episodes)", "speed m/s"] + (["energy SNN / dense ANN (ratio)"] if energy else [])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, entry in variants.items():
        crashes = entry["crash_episodes"]
        cells = [name, str(entry["n_seeds"]), _interval(entry["iqm"]), _interval(entry["mean"]),
                 _interval(entry.get("probability_of_improvement")),
                 _verdict_cell(verdicts.get(name), bool(entry.get("is_baseline"))),
                 f"{_interval(entry['crash_rate'])} ({crashes['crashes']}/{crashes['episodes']})",
                 f"{entry['mean_speed']['value']:.1f}"] + ([_energy_cell(entry)] if energy else [])
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def condition_matrix(statistics: Entry, scenario: str, conditions: Sequence[str] | None = None) -> str:
    """Variants by conditions: IQM return and crash rate (mean over seeds) in each, marked (+) or (-) where the
    verdict separates the variant from the baseline, (c) where both collapsed to one action, (?) still open."""
    conditions = list(conditions or statistics["conditions"])
    summary = statistics["summary"][scenario]
    verdicts = {(entry["variant"], entry["condition"]): entry for entry in statistics["verdicts"]
                if entry["scenario"] == scenario}
    lines = ["| variant | " + " | ".join(conditions) + " |", "|---|" + "---|" * len(conditions)]
    for name in statistics["variants"]:
        cells = []
        for condition in conditions:
            entry = summary.get(condition, {}).get(name)
            if entry is None:
                cells.append("-")
                continue
            verdict = verdicts.get((name, condition))
            mark = OUTCOME_MARKS.get(verdict["outcome"], "") if verdict else ""
            cells.append(f"{entry['iqm']['value']:.2f}{mark}, {entry['crash_rate']['value']:.0%}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def comparison_tables(statistics: Entry) -> str:
    """The tables ``docs/results.md`` carries for one comparison, per training scenario."""
    parts = []
    for scenario in statistics["scenarios"]:
        first = statistics["conditions"][0]
        parts += [f"Under `{first}` ({scenario}):", "", verdict_table(statistics, scenario, first), "",
                  f"Every condition ({scenario}; IQM return, crash rate; (+)/(-): separated from "
                  f"`{statistics['baseline']}`):", "", condition_matrix(statistics, scenario)]
    return "\n".join(parts)

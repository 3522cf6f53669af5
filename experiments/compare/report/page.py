"""``report.html``: one self-contained page (no external reference, so it opens offline) with the summary
tables, a container per chart, the statistics embedded as JSON, and the style and drawing script of ``assets/``
inlined."""

from __future__ import annotations

import base64
import html
import json
import math
import shlex
from collections.abc import Sequence
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from experiments.compare.report.files import json_safe
from experiments.compare.report.plots import FIGURES, variant_colours
from experiments.compare.report.summary import Entry
from neuro.snn.config import ENERGY_CAVEAT


@cache
def _asset(name: str) -> str:
    """A file of ``assets/`` (the page's CSS and JavaScript, shipped as package data)."""
    return resources.files(__package__).joinpath("assets", name).read_text(encoding="utf-8")


def _text(value: Any) -> str:
    """HTML-escaped text; "://" written as an entity so no URL-looking reference appears in the file's source."""
    return html.escape(str(value)).replace("://", "&#58;//")


# One precision per kind of number, whatever its size, so a column reads evenly (report.js uses the same).
PRECISION = {"return": ".2f", "probability": ".2f", "rate": ".2f", "speed": ".1f", "energy": ",.0f", "ratio": ".2f"}


def _fmt(value: float | None, kind: str = "return") -> str:
    if value is None or not math.isfinite(value):
        return "-"
    text = format(value, PRECISION[kind])
    return text[1:] if text.startswith("-") and not text.strip("-0.,") else text  # no "-0.00"


def _fmt_estimate(estimate: dict[str, float | None] | None, kind: str = "return") -> str:
    """``value [low, high]``; "-" for an absent value or interval."""
    if not estimate or estimate.get("value") is None:
        return "-"
    low, high = estimate.get("low"), estimate.get("high")
    interval = f"[{_fmt(low, kind)}, {_fmt(high, kind)}]" if low is not None and high is not None else "[-]"
    return f"{_fmt(estimate['value'], kind)} {interval}"


def _estimate_cell(estimate: dict[str, float | None] | None, kind: str = "return") -> str:
    """An estimate as table-cell HTML: the value, its interval on a second line (so the tables fit 1280 px)."""
    value, _, interval = _fmt_estimate(estimate, kind).partition(" ")
    return _text(value) + (f'<span class="ci">{_text(interval)}</span>' if interval else "")


def _energy_cell(energy: Entry | None) -> tuple[str, str]:
    """(cell text, tooltip) for the per-decision energy of a spiking variant."""
    if not energy or energy.get("snn_pj") is None:
        return "-", "not a spiking agent, or no energy figures"
    snn, ann, ratio = _fmt(energy["snn_pj"], "energy"), _fmt(energy["ann_pj"], "energy"), _fmt(energy["ratio"], "ratio")
    text = f"{snn} vs ANN {ann} (x{ratio})"
    rates = ", ".join(f"{layer} {_fmt(rate, 'rate')}" for layer, rate in energy["firing_rates"].items())
    return text, f"mean over {energy['seeds']} seeds; firing rates: {rates or '-'}; {ENERGY_CAVEAT}"


SUMMARY_HEADER = ["variant", "seeds", "mean [95% CI]", "median [95% CI]", "IQM [95% CI]", "P(> baseline) [95% CI]",
                  "crash rate [95% t CI, seeds]", "crashes / episodes [Wilson 95% CI]", "mean speed",
                  "energy / decision (pJ): SNN vs ANN"]


def _summary_row(variant: str, entry: Entry) -> str:
    crashes = entry["crash_episodes"]
    energy_text, energy_tip = _energy_cell(entry["energy"])
    poi = "(baseline)" if entry["is_baseline"] else _estimate_cell(entry["probability_of_improvement"], "probability")
    speed = entry["mean_speed"]
    cells = [
        (f"{_text(variant)}" + (' <span class="badge">baseline</span>' if entry["is_baseline"] else ""), "", True),
        (str(entry["n_seeds"]), f"seeds {entry['seeds']}", False),
        (_estimate_cell(entry["mean"]), "", True),
        (_estimate_cell(entry["median"]), "", True),
        (_estimate_cell(entry["iqm"]), "", True),
        (poi, "", True),
        (_estimate_cell(entry["crash_rate"], "rate"), "", True),
        (f'{crashes["crashes"]}/{crashes["episodes"]}<span class="ci">[{_fmt(crashes.get("low"), "rate")}, '
         f'{_fmt(crashes.get("high"), "rate")}]</span>', "", True),
        (_fmt(speed.get("value"), "speed"), f"95% t CI over seeds: {_fmt_estimate(speed, 'speed')}", False),
        (energy_text, energy_tip, False),
    ]
    tds = "".join(f'<td{f" title={_attr(tip)}" if tip else ""}>{cell if raw else _text(cell)}</td>'
                  for cell, tip, raw in cells)
    row_class = ' class="baseline"' if entry["is_baseline"] else ""
    return f"<tr{row_class}>{tds}</tr>"


def _listing(names: Sequence[str]) -> str:
    return _text(", ".join(names) or "-")


def _attr(value: Any) -> str:
    return f'"{_text(value)}"'


def _summary_tables(stats: Entry) -> str:
    """One table per training scenario x condition, variants as rows; and across scenarios when there are several."""
    parts = []
    head = "".join(f"<th>{_text(name)}</th>" for name in SUMMARY_HEADER)
    for scenario, by_condition in stats["summary"].items():
        for condition, by_variant in by_condition.items():
            body = "".join(_summary_row(variant, by_variant[variant]) for variant in stats["variants"]
                           if variant in by_variant)
            parts.append(f'<h3>trained on {_text(scenario)}, evaluated: {_text(condition)}</h3>'
                         f'<div class="scroll"><table class="summary"><thead><tr>{head}</tr></thead>'
                         f'<tbody>{body}</tbody></table></div>')
    if len(stats["scenarios"]) > 1:
        parts.append("<h3>across training scenarios (stratified bootstrap, scenarios as tasks)</h3>")
        cross_head = "".join(f"<th>{_text(name)}</th>" for name in ["condition", "variant", "seeds", "mean [95% CI]",
                                                                    "median of scenario means [95% CI]",
                                                                    "IQM [95% CI]", "P(> baseline) [95% CI]",
                                                                    "crash rate [95% CI]"])
        rows = []
        for condition, by_variant in stats["aggregate"].items():
            for variant, entry in by_variant.items():
                poi = ("(baseline)" if entry["is_baseline"]
                       else _estimate_cell(entry["probability_of_improvement"], "probability"))
                cells = [_text(condition), _text(variant), str(entry["n_seeds"]), _estimate_cell(entry["mean"]),
                         _estimate_cell(entry["median"]), _estimate_cell(entry["iqm"]), poi,
                         _estimate_cell(entry["crash_rate"], "rate")]
                rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
        parts.append(f'<div class="scroll"><table class="summary"><thead><tr>{cross_head}</tr></thead>'
                     f'<tbody>{"".join(rows)}</tbody></table></div>')
    return "\n".join(parts) or "<p>No rows: nothing was evaluated.</p>"


def _cross_check_section(stats: Entry) -> str:
    """Where each condition's numbers come from and, on the cross-checked cells, whether the native port and
    the reference simulator agree (a flagged condition is marked; its verdicts deserve a second look)."""
    check = stats.get("cross_check") or {}
    backends = check.get("backends") or {}
    sources = "; ".join(f"{_text(condition)}: {_text(backend or '-')}" for condition, backend in backends.items())
    head = "".join(f"<th>{_text(name)}</th>" for name in ["condition", "backend", "reference", "cells",
                                                          "return difference [95% CI]",
                                                          "crash rate difference [95% CI]", "agreement"])
    rows = []
    for condition, entry in (check.get("conditions") or {}).items():
        verdict = "FLAGGED: they disagree" if entry["flagged"] else "agree"
        cells = [condition, entry["backend"], entry["reference_backend"], entry["cells"],
                 _fmt_estimate(entry["return_difference"]), _fmt_estimate(entry["crash_rate_difference"])]
        rows.append("<tr>" + "".join(f"<td>{_text(cell)}</td>" for cell in cells)
                    + f'<td class="{"worse" if entry["flagged"] else ""}">{verdict}</td></tr>')
    table = (f'<div class="scroll"><table class="summary" id="cross-check-table"><thead><tr>{head}</tr></thead>'
             f'<tbody>{"".join(rows)}</tbody></table></div><p class="caption">{_text(check.get("method", ""))}.</p>'
             if rows else "<p>No cross-check: every number comes from one simulator, or no cell was evaluated on "
                          "both (evaluation.cross_check).</p>")
    return (f'<section id="cross-check"><h2>Simulators</h2><p>The verdicts\' and tables\' numbers come from: '
            f"{sources or '-'}.</p>\n{table}</section>")


def _configs_text(configs: Any) -> str:
    try:
        return yaml.safe_dump(json_safe(configs), sort_keys=False)
    except yaml.YAMLError:
        return json.dumps(json_safe(configs), indent=2)


def _embedded_json(data: Any) -> str:
    """Strict JSON safe inside a <script> element: "<" escaped (no "</script>"), "/" of "://" escaped."""
    text = json.dumps(json_safe(data), allow_nan=False, separators=(",", ":"))
    # "://" only ever occurs inside JSON strings, where "\/" is a valid escape of "/".
    return text.replace("<", "\\u003c").replace("://", ":\\/\\/")


CHART_SECTIONS = [
    ("chart-curves", "Sample efficiency", "Training-time evaluations (eval.json): IQM over seeds at each evaluation "
     "step with a 95% pointwise percentile bootstrap band over seeds. Seeds may evaluate at slightly different "
     "steps: the curve keeps only the steps every seed has (results.json counts the dropped ones). Hover a point "
     "for exact values; click a legend entry to hide or show a variant everywhere."),
    ("chart-iqm", "IQM with 95% CIs", "Per condition, IQM of the seeds' mean returns across training scenarios, "
     "with 95% stratified bootstrap intervals (percentile)."),
    ("chart-poi", "Probability of improvement over the baseline", "P(variant > baseline): the share of (seed, "
     "baseline seed) pairs the variant wins, ties half, averaged over training scenarios; 95% bootstrap interval."),
    ("chart-profiles", "Performance profiles", "Fraction of runs (seeds x scenarios) scoring above each threshold, "
     "with a 95% pointwise stratified bootstrap band."),
    ("chart-transfer", "Transfer matrix", "IQM of seed mean returns per variant and evaluation condition, coloured "
     "from the lowest (red) to the highest (green) value in the matrix."),
    ("table-robustness", "Robustness", "Per variant and robustness condition: the IQM there, its change from clean "
     "(point estimates; red a drop, green a gain, a change of 0.00 neither) and the crash rate (mean over seeds, "
     "95% t interval)."),
]


# The PNG sections (plots.FIGURES), embedded as data: URIs so the page stays one file: (id, title, caption).
FIGURE_SECTIONS = {
    "difference.png": ("figure-difference", "Difference from the baseline", "Per condition, IQM of each variant's "
                       "seed mean returns minus the baseline's, across training scenarios, with a 95% stratified "
                       "bootstrap interval (each side's seeds resampled within scenario); an interval that crosses "
                       "the dashed zero line does not separate the two."),
    "seeds.png": ("figure-seeds", "Each seed beside its summary", "Per condition, every seed's mean return (one dot "
                  "per seed and scenario; a cross: that seed's policy collapsed to one action), and beneath them "
                  "the IQM across scenarios (diamond) with its 95% stratified bootstrap interval (bar)."),
    "crash_rate.png": ("figure-crash-rate", "Crash rate per condition", "Per condition, each variant's crash rate: "
                       "the mean over seeds of each seed's crash rate with a 95% Student-t interval over seeds "
                       "(clipped to [0, 1])."),
    "neuro_values.png": ("figure-neuro", "Neuromodulated values over training", "Every value a variant's neuro "
                         "parts logged to TensorBoard (neuro/<kind>/<key>: learning rate, epsilon, gamma and the "
                         "modulators' own statistics; the dopamine TD statistics are left out), per variant: IQM "
                         "over seeds with a 95% pointwise bootstrap band. Seeds log at different steps, so each "
                         "seed's values are interpolated linearly onto common steps within the range every seed "
                         "covers. Only variants that log one are drawn."),
}


def _figure_sections(plots: Sequence[Path]) -> str:
    """A section per PNG figure: the image inlined, or a line saying why there is none."""
    by_name = {Path(path).name: Path(path) for path in plots}
    parts = []
    for name in FIGURES:
        figure_id, title, caption = FIGURE_SECTIONS[name]
        path = by_name.get(name)
        if path is not None:
            encoded = base64.b64encode(path.read_bytes()).decode("ascii")
            body = (f'<img class="figure" id="{figure_id}" alt={_attr(title)} '
                    f'src="data:image/png;base64,{encoded}">')
        else:
            body = f'<p class="empty" id="{figure_id}">no data for this plot</p>'
        parts.append(f'<section><h2>{_text(title)}</h2><p class="caption">{_text(caption)}</p>{body}</section>')
    return "\n".join(parts)


def _command_text(command: Any) -> str:
    """The command line as a shell would take it (the runner passes argv as a list)."""
    if isinstance(command, list | tuple):
        return shlex.join(str(part) for part in command)
    return str(command or "-")


def _provenance(meta: Entry) -> str:
    versions = meta.get("versions") or {}
    version_rows = "".join(f"<tr><td>{_text(name)}</td><td>{_text(version if version is not None else '-')}</td></tr>"
                           for name, version in versions.items())
    return (f'<dl><dt>commit</dt><dd><code>{_text(meta.get("commit") or "-")}</code></dd>'
            f'<dt>command</dt><dd><code>{_text(_command_text(meta.get("command")))}</code></dd></dl>'
            f'<h3>library versions</h3><table class="versions"><tbody>{version_rows}</tbody></table>'
            f'<h3>comparison file</h3><pre id="compare-file">{_text(meta.get("compare_file") or "")}</pre>'
            f'<h3>resolved experiment configs</h3><pre id="configs">{_text(_configs_text(meta.get("configs") or {}))}'
            "</pre>")


FIXED_VERDICT_CAPTION = """Better, worse or not separated: two-sided Mann-Whitney U on the seeds' scores, Holm-corrected
across every variant x scenario x condition comparison of the grid at 5%; "not separated" is no evidence of no
difference (the seeds it would need for 80% power are a noisy estimate from these seeds); "both collapsed": every
seed of both took one action over 95% of its decisions (the notes name each collapsed cell)."""

SEQUENTIAL_VERDICT_CAPTION = """Each comparison stopped at the first look where Welch's z of the mean difference
crossed its boundary (better or worse), or ran to the last look (not separated); the seeds it used are the first
seeds of both sides up to that look. The mean difference's interval is the repeated confidence interval of that
look, valid whenever the comparison stopped and adjusted for the comparisons; it excludes 0 exactly when the
boundary was crossed. P(improvement) and the IQM difference are on the same seeds, unadjusted (descriptive).
"Both collapsed": every seed of both took one action over 95% of its decisions; "open": a look it needs is not
complete yet (rerun the command)."""


def _verdict_list(verdicts: Sequence[Entry]) -> str:
    items = "".join(f'<li class={_attr(entry["outcome"])}>{_text(entry["sentence"])}</li>' for entry in verdicts)
    return (f'<ul class="verdicts">{items}</ul>' if items
            else "<p>No verdicts: a verdict needs at least 2 seeds a side.</p>")


def _design_html(sequential: Entry, verdicts: Sequence[Entry]) -> str:
    """The group-sequential design: its sentence, a table of the looks and the seeds each comparison used."""
    design = sequential["design"]
    stopped: dict[int, list[str]] = {}
    for entry in verdicts:
        if entry["outcome"] != "open":
            stopped.setdefault(entry.get("look", 0), []).append(
                f"{entry['variant']} ({entry['scenario']} / {entry['condition']}): {entry['outcome']}")
    looks = zip(design["looks"], design["boundaries"], design["nominal_p"], design["alpha_spent"], strict=True)
    rows = "".join(
        f"<tr><td>{index}</td><td>{seeds}</td><td>{_fmt(bound)}</td><td>{_fmt(p)}</td><td>{_fmt(spent)}</td>"
        f"<td>{_text(', '.join(stopped.get(index, [])) or '-')}</td></tr>"
        for index, (seeds, bound, p, spent) in enumerate(looks, 1))
    head = "".join(f"<th>{_text(name)}</th>" for name in ["look", "seeds per variant", "boundary |z|",
                                                          "nominal p", "alpha spent", "stopped here"])
    power = design["power"]
    state = ("every comparison is settled" if sequential.get("complete")
             else f"not finished: {sequential.get('looks_run', 0)} look(s) run so far; rerun the command to continue")
    return (f'<p class="design">{_text(design["sentence"])}</p>'
            f'<p class="design">Multiplicity: {_text(design["multiplicity"])}. Power of each comparison at a true '
            f'effect of d = {_fmt(power["effect_size"])}: {_fmt(power["power"])}, expected seeds per variant '
            f'{_fmt(power["expected_seeds"])} ({_text(power["method"])}). State: {_text(state)}.</p>'
            f'<div class="scroll"><table class="design"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'
            "</div>")


def _verdicts_html(stats: Entry) -> str:
    """The verdicts section's body: the design first when the grid ran ``--until-conclusive``."""
    verdicts = stats.get("verdicts", [])
    sequential = stats.get("sequential")
    if sequential:
        return (f"{_design_html(sequential, verdicts)}\n{_verdict_list(verdicts)}\n"
                f'<p class="caption">{_text(SEQUENTIAL_VERDICT_CAPTION)}</p>')
    return f'{_verdict_list(verdicts)}\n<p class="caption">{_text(FIXED_VERDICT_CAPTION)}</p>'


def render_html(stats: Entry, meta: Entry, rows: Sequence[Entry], plots: Sequence[Path] = ()) -> str:
    """The whole report page: static tables, chart containers, the PNG figures of ``plots`` inlined, the embedded
    data and the drawing script."""
    data = {"statistics": stats, "colours": variant_colours(stats["variants"]), "name": meta.get("name")}
    charts = "\n".join(f'<section><h2>{_text(title)}</h2><p class="caption">{_text(caption)}</p>'
                       f'<div class="chart" id="{chart_id}"></div></section>'
                       for chart_id, title, caption in CHART_SECTIONS)
    settings = stats["settings"]
    notes = "".join(f"<li>{_text(note)}</li>" for note in stats["notes"])
    name = meta.get("name") or "comparison"
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>NeuroDrive comparison: {_text(name)}</title>
<style>
{_asset("report.css")}</style>
</head>
<body>
<svg id="svg-namespace" width="0" height="0" aria-hidden="true"></svg>
<h1>NeuroDrive comparison: {_text(name)}</h1>
<p>Baseline: <strong>{_text(stats["baseline"])}</strong>. Variants: {_listing(stats["variants"])}.
Training scenarios: {_listing(stats["scenarios"])}. Conditions: {_listing(stats["conditions"])}.
{len(rows)} evaluations.</p>
<section id="verdicts"><h2>Verdicts</h2>
{_verdicts_html(stats)}
</section>
<section id="method"><h2>How to read it</h2><ul>
<li>A seed is a run; its score is its mean return under the condition. Each condition is summarised separately.</li>
<li>Intervals are {settings["confidence"]:.0%}: mean, median and IQM use the percentile stratified bootstrap
({settings["n_resamples"]} resamples, seed {settings["bootstrap_seed"]}; {_text(settings["stratification"])}).</li>
<li>Per training scenario, the median is that of the seeds' scores; across scenarios, the median over
scenarios of each scenario's mean (rliable). The IQM pools seeds x scenarios and averages the middle half.</li>
<li>{_text(settings["crash_rate_ci"])}.</li>
<li>Energy per decision: {_text(settings["energy"])}.</li>
<li>"-": not available (an interval needs at least 2 seeds).</li>
</ul>{f'<h3>notes</h3><ul class="notes">{notes}</ul>' if notes else ""}</section>
<section id="summary"><h2>Summary</h2>
{_summary_tables(stats)}
</section>
{_cross_check_section(stats)}
{charts}
{_figure_sections(plots)}
<section id="provenance"><h2>Provenance</h2>
{_provenance(meta)}
</section>
<script type="application/json" id="report-data">{_embedded_json(data)}</script>
<script>

{_asset("report.js")}
</script>
</body>
</html>
"""

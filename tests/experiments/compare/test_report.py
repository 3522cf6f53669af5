"""The comparison report from hand-made rows (no training): statistics in results.json against values counted by
hand, the CSV, the PNGs, and report.html self-contained, with valid JavaScript that draws every chart (checked by
node with a stub DOM when node is installed) and "-" where a single seed leaves no interval."""

from __future__ import annotations

import csv
import fnmatch
import json
import re
import shutil
import subprocess
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from matplotlib import image

from experiments.compare.report import compute_statistics, condition_kinds, write_report

SCENARIO = "highway-fast-v0"
SEEDS = [0, 1, 2, 3, 4]
# Seed mean returns, chosen so the statistics are easy by hand (IQM of 5 = mean of the middle 3 after sorting).
SCORES = {
    "dqn": {"clean": [10, 11, 12, 13, 14], "noise": [5, 6, 7, 8, 9]},
    "dopamine": {"clean": [20, 21, 22, 23, 100], "noise": [5, 6, 7, 8, 9]},
    "spiking": {"clean": [1, 2, 3, 4, 5], "noise": [0, 0, 0, 0, 0]},
}
SNN = {"energy_pj_per_decision": 100.0, "ann_energy_pj_per_decision": 400.0, "energy_ratio": 0.25,
       "firing_rate/hidden_0": 0.1}
CHART_IDS = ["chart-curves", "chart-iqm", "chart-poi", "chart-profiles", "chart-transfer", "table-robustness"]
META = {"name": "unit", "compare_file": "name: unit\nbaseline: dqn\n", "configs": {"dqn": {"agent": {"algo": "dqn"}}},
        "commit": "abc1234", "versions": {"python": "3.11", "torch": None},
        "command": ["neurodrive", "compare", "unit.yaml"]}  # argv, as the runner passes it


def make_row(variant: str, seed: int, condition: str, score: float, scenario: str = SCENARIO,
             crashed: list[bool] | None = None, snn: dict | None = None, speed: float | None = 20.0) -> dict[str, Any]:
    crashed = crashed if crashed is not None else [seed % 2 == 0, False, False, False]  # seeds 0, 2, 4 crash once
    return {"variant": variant, "scenario": scenario, "seed": seed, "condition": condition,
            "run_dir": f"runs/{variant}_{seed}", "mean_return": float(score), "crash_rate": sum(crashed) / len(crashed),
            "mean_speed": speed, "n_episodes": len(crashed), "returns": [float(score)] * len(crashed),
            "crashed": crashed, "snn": snn, "curve": [[1000, score / 2 + seed], [2000, float(score)]]}


def grid_rows() -> list[dict[str, Any]]:
    return [make_row(variant, seed, condition, scores[i], snn=dict(SNN) if variant == "spiking" else None)
            for variant, by_condition in SCORES.items() for condition, scores in by_condition.items()
            for i, seed in enumerate(SEEDS)]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return write_report(tmp_path_factory.mktemp("report"), grid_rows(), "dqn", META)


def summary(report: dict[str, Any]) -> dict[str, Any]:
    return json.loads(report["json"].read_text())["statistics"]["summary"][SCENARIO]


def scripts(html: str) -> tuple[str, str]:
    """(embedded JSON text, drawing script) of the report page."""
    data = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', html, re.S)
    code = re.search(r"<script>(.*?)</script>", html, re.S)
    assert data and code
    return data.group(1), code.group(1)


# --- statistics ---------------------------------------------------------------------------------------------------


def test_results_json_holds_rows_meta_and_hand_counted_statistics(report: dict[str, Any]) -> None:
    saved = json.loads(report["json"].read_text())
    assert len(saved["rows"]) == 3 * 2 * 5 and saved["meta"]["commit"] == "abc1234"
    clean, noise = summary(report)["clean"], summary(report)["noise"]
    # IQM of 5 = trim one score per end: dqn (11+12+13)/3, dopamine (21+22+23)/3 (100 has no say), spiking 3
    assert clean["dqn"]["iqm"]["value"] == pytest.approx(12.0)
    assert clean["dopamine"]["iqm"]["value"] == pytest.approx(22.0)
    assert clean["spiking"]["iqm"]["value"] == pytest.approx(3.0)
    assert clean["dopamine"]["mean"]["value"] == pytest.approx(186 / 5)
    assert clean["dopamine"]["median"]["value"] == pytest.approx(22.0)
    for entry in clean.values():
        assert entry["iqm"]["low"] <= entry["iqm"]["value"] <= entry["iqm"]["high"]
    # every dopamine seed beats every dqn seed, every spiking seed loses; identical scores under noise tie (1/2)
    assert clean["dopamine"]["probability_of_improvement"] == {"value": 1.0, "low": 1.0, "high": 1.0}
    assert clean["spiking"]["probability_of_improvement"] == {"value": 0.0, "low": 0.0, "high": 0.0}
    assert noise["dopamine"]["probability_of_improvement"]["value"] == pytest.approx(0.5)
    assert clean["dqn"]["probability_of_improvement"] is None and clean["dqn"]["is_baseline"]


def test_crash_rate_speed_and_energy(report: dict[str, Any]) -> None:
    dqn, spiking = summary(report)["clean"]["dqn"], summary(report)["clean"]["spiking"]
    # seeds 0, 2, 4 crash in 1 of 4 episodes: seed rates 1/4, 0, 1/4, 0, 1/4 -> mean 0.15; pooled 3 of 20 episodes
    assert dqn["crash_rate"]["value"] == pytest.approx(0.15)
    assert 0.0 <= dqn["crash_rate"]["low"] < 0.15 < dqn["crash_rate"]["high"] <= 1.0
    assert (dqn["crash_episodes"]["crashes"], dqn["crash_episodes"]["episodes"]) == (3, 20)
    assert dqn["crash_episodes"]["value"] == pytest.approx(0.15)
    assert dqn["mean_speed"]["value"] == pytest.approx(20.0)
    assert dqn["energy"] is None
    assert spiking["energy"]["snn_pj"] == pytest.approx(100.0) and spiking["energy"]["ann_pj"] == pytest.approx(400.0)
    assert spiking["energy"]["ratio"] == pytest.approx(0.25)
    assert spiking["energy"]["firing_rates"] == {"hidden_0": pytest.approx(0.1)}


def test_statistics_are_reproducible() -> None:
    rows = grid_rows()
    assert compute_statistics(rows, "dqn") == compute_statistics(rows, "dqn")


def test_scores_pool_over_training_scenarios_as_tasks() -> None:
    # 4 seeds x 2 scenarios pooled: 1 2 | 3 4 10 20 | 30 40 -> IQM 37 / 4 = 9.25 (tests/.../test_statistics.py)
    scores = {"a": {"merge": [1, 2, 3, 4], "exit": [10, 20, 30, 40]}, "b": {"merge": [0, 0, 0, 0], "exit": [50] * 4}}
    rows = [make_row(variant, seed, "clean", value, scenario=scenario)
            for variant, by_scenario in scores.items() for scenario, values in by_scenario.items()
            for seed, value in enumerate(values)]
    stats = compute_statistics(rows, "b")
    assert stats["aggregate"]["clean"]["a"]["iqm"]["value"] == pytest.approx(9.25)
    # a wins every pair on merge, loses every pair on exit: averaged over the two tasks, 1/2
    assert stats["aggregate"]["clean"]["a"]["probability_of_improvement"]["value"] == pytest.approx(0.5)
    assert stats["summary"]["merge"]["clean"]["a"]["probability_of_improvement"]["value"] == pytest.approx(1.0)
    assert stats["aggregate"]["clean"]["a"]["scenarios"] == ["merge", "exit"]
    # a seed missing in one scenario: across scenarios only the seeds every scenario has count, with a note
    # (merge 1 2 3, exit 10 20 30 pooled: 1 | 2 3 10 20 | 30 -> 35 / 4)
    uneven = [row for row in rows if not (row["variant"] == "a" and row["scenario"] == "exit" and row["seed"] == 3)]
    stats = compute_statistics(uneven, "b")
    assert stats["aggregate"]["clean"]["a"]["seeds"] == [0, 1, 2]
    assert stats["aggregate"]["clean"]["a"]["iqm"]["value"] == pytest.approx(35 / 4)
    assert any("left out [3]" in note for note in stats["notes"])


def test_condition_kinds_come_from_the_parsed_conditions() -> None:
    # env.id changes: a transfer; other env changes: robustness; the transfer matrix keeps clean and transfers.
    # The overrides as Comparison.conditions holds them: dotted keys or nested mappings, {} for none.
    conditions = {"clean": {}, "merge": {"env.id": "merge-v0"},
                  "noise": {"env.wrappers": [{"type": "observation_noise", "std": 0.1}]},
                  "dense": {"env": {"config": {"density": 2}}}, "exit": {"env": {"id": "exit-v0"}}}
    kinds = condition_kinds(conditions)
    assert kinds == {"clean": "clean", "merge": "transfer", "noise": "robustness", "dense": "robustness",
                     "exit": "transfer"}
    rows = [make_row("dqn", seed, condition, seed) for seed in (0, 1) for condition in conditions]
    stats = compute_statistics(rows, "dqn", {"condition_kinds": kinds})
    assert stats["condition_kinds"] == kinds
    assert stats["transfer_conditions"] == ["clean", "merge", "exit"]
    assert stats["robustness_conditions"] == ["noise", "dense"]
    # the comparison file's text is provenance only: it is not read again for kinds
    text = "conditions:\n  merge: {env.id: merge-v0}\n"
    assert compute_statistics(rows, "dqn", {"compare_file": text})["condition_kinds"]["merge"] == "other"
    # without kinds nothing says: every other condition shows in both
    assert compute_statistics(rows, "dqn")["robustness_conditions"] == ["merge", "noise", "dense", "exit"]


def test_unknown_baseline_and_duplicate_rows_are_refused() -> None:
    with pytest.raises(ValueError, match="baseline"):
        compute_statistics(grid_rows(), "ppo")
    with pytest.raises(ValueError, match="two rows"):
        compute_statistics(grid_rows() + grid_rows()[:1], "dqn")


# --- files --------------------------------------------------------------------------------------------------------


def test_csv_has_one_line_per_row_with_lists_as_json(report: dict[str, Any]) -> None:
    with report["csv"].open(newline="") as handle:
        lines = list(csv.DictReader(handle))
    assert len(lines) == 30
    first = lines[0]
    assert (first["variant"], first["condition"], first["seed"], float(first["mean_return"])) == ("dqn", "clean",
                                                                                                 "0", 10.0)
    assert json.loads(first["crashed"]) == [True, False, False, False] and json.loads(first["returns"]) == [10.0] * 4
    assert "snn" not in first and first["snn/energy_ratio"] == ""  # flattened; empty for an ANN agent
    spiking = next(line for line in lines if line["variant"] == "spiking")
    assert float(spiking["snn/energy_ratio"]) == pytest.approx(0.25)


def test_plots_are_readable_images(report: dict[str, Any]) -> None:
    names = {path.name for path in report["plots"]}
    assert {"iqm_ci.png", "sample_efficiency.png", "probability_of_improvement.png", "performance_profiles.png",
            "difference.png", "seeds.png", "crash_rate.png"} <= names
    assert "neuro_values.png" not in names  # no run folder here has a tb/ folder
    for path in report["plots"]:
        pixels = image.imread(path)
        assert path.stat().st_size > 0 and pixels.ndim == 3 and min(pixels.shape[:2]) > 100


def test_html_is_self_contained_and_complete(report: dict[str, Any]) -> None:
    html = report["html"].read_text()
    assert "http://" not in html and "https://" not in html
    assert not re.search(r"<script[^>]*\bsrc=", html) and not re.search(r"<link[^>]*\bhref=", html)
    assert "@import" not in html
    images = re.findall(r"<img [^>]*>", html)  # the PNG figures, inlined: no file beside the page is needed
    assert len(images) == 3 and all('src="data:image/png;base64,' in tag for tag in images)
    for chart_id in CHART_IDS:
        assert html.count(f'id="{chart_id}"') == 1
    for variant in SCORES:
        assert f"<td>{variant}" in html
    assert re.search(r"<tr[^>]*class=\"baseline\"><td>dqn <span class=\"badge\">baseline</span>", html)
    assert "100 vs ANN 400 (x0.25)" in html  # spiking energy beside the ANN figure
    assert "abc1234" in html and "neurodrive compare unit.yaml" in html and "baseline: dqn" in html
    data, _ = scripts(html)
    embedded = json.loads(data)
    assert embedded["statistics"]["summary"][SCENARIO]["clean"]["dqn"]["iqm"]["value"] == pytest.approx(12.0)


def test_no_url_leaks_from_user_text(tmp_path: Path) -> None:
    # A URL inside the comparison file or a config is shown as text, without "://" in the page source.
    meta = {**META, "compare_file": "# see https://example.org\nname: unit\n", "configs": {"dqn": {"u": "http://x"}}}
    html = write_report(tmp_path, grid_rows()[:10], "dqn", meta)["html"].read_text()
    assert "://" not in html
    assert "example.org" in html
    data, _ = scripts(html)
    assert json.loads(data)["statistics"]["baseline"] == "dqn"


def test_css_and_javascript_are_the_asset_files_inlined(report: dict[str, Any]) -> None:
    # The page inlines the package's asset files whole (no reference to them: the page stays one file).
    assets = resources.files("experiments.compare.report").joinpath("assets")
    css, js = (assets.joinpath(name).read_text(encoding="utf-8") for name in ("report.css", "report.js"))
    html = report["html"].read_text()
    assert f"<style>\n{css}</style>" in html
    _, code = scripts(html)
    assert code.strip() == js.strip()
    assert "svg.plot" in css and "function drawCurves" in js


def test_assets_ship_as_package_data() -> None:
    # An installed wheel holds only the files pyproject's package-data names; a missing asset would break the page.
    root = Path(__file__).resolve().parents[3]
    patterns = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assets = sorted((root / "experiments" / "compare" / "report" / "assets").iterdir())
    assert {asset.suffix for asset in assets} == {".css", ".js"}
    for asset in assets:
        name = asset.relative_to(root / "experiments").as_posix()
        assert any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns["experiments"]), name


# --- JavaScript ---------------------------------------------------------------------------------------------------

# A stub DOM, just enough for the report script: it records every element, refuses attributes that say NaN or
# undefined (a chart computed from a missing value), and reports console.error calls and thrown errors.
STUB_DOM = r"""
const fs = require("fs"), vm = require("vm");
const [scriptPath, dataPath, idsJson] = process.argv.slice(2);
const all = [], SVG_NS = "svg-namespace-stub";
class StubNode {
  constructor(tag, ns) {
    this.tagName = tag; this.namespaceURI = ns; this.children = []; this.attributes = {}; this.style = {};
    this.textContent = ""; this.listeners = {}; this.className = ""; this.classes = {};
    const self = this;
    this.classList = {toggle(name, on) { self.classes[name] = on; }};
    all.push(this);
  }
  appendChild(child) { this.children.push(child); child.parentNode = this; return child; }
  setAttribute(key, value) {
    if (typeof value !== "string" || /NaN|undefined|Infinity/.test(value)) {
      throw new Error("bad attribute " + key + "=" + value + " on <" + this.tagName + ">");
    }
    this.attributes[key] = value;
  }
  getAttribute(key) { return key in this.attributes ? this.attributes[key] : null; }
  addEventListener(type, listener) { (this.listeners[type] = this.listeners[type] || []).push(listener); }
}
const byId = {};
for (const id of JSON.parse(idsJson)) { byId[id] = new StubNode("div", "html"); }
byId["report-data"] = new StubNode("script", "html");
byId["report-data"].textContent = fs.readFileSync(dataPath, "utf8");
byId["svg-namespace"] = new StubNode("svg", SVG_NS);
const errors = [];
global.console = {log: console.log, error: (...args) => errors.push(args.map(String).join(" "))};
global.document = {
  getElementById: (id) => byId[id] || null,
  createElementNS: (ns, tag) => {
    if (ns !== SVG_NS) { throw new Error("wrong namespace " + ns); }
    return new StubNode(tag, ns);
  },
  createElement: (tag) => new StubNode(tag, "html"),
  querySelectorAll: (selector) => {
    const match = /^\[([\w-]+)\]$/.exec(selector);
    if (!match) { throw new Error("selector the stub does not know: " + selector); }
    return all.filter((node) => node.getAttribute(match[1]) !== null);
  },
};
try { vm.runInThisContext(fs.readFileSync(scriptPath, "utf8")); } catch (error) { errors.push(String(error)); }
const count = (node, tag) => node.children.reduce((n, c) => n + count(c, tag), node.tagName === tag ? 1 : 0);
const drawn = {};
for (const id of JSON.parse(idsJson)) {
  drawn[id] = {svg: count(byId[id], "svg"), title: count(byId[id], "title"), table: count(byId[id], "table"),
               empty: byId[id].children.filter((c) => c.attributes["class"] === "empty").length};
}
// Clicking a legend entry hides that variant's series everywhere; clicking again shows them.
const item = all.find((node) => node.getAttribute("data-legend") === "spiking");
item.listeners.click.forEach((listener) => listener());
const series = all.filter((node) => node.getAttribute("data-series") === "spiking");
const hidden = series.filter((node) => node.style.display === "none").length;
item.listeners.click.forEach((listener) => listener());
const shown = series.filter((node) => node.style.display === "").length;
console.log(JSON.stringify({errors, drawn, series: series.length, hidden, shown, off: item.classes.off}));
"""


def run_script(tmp_path: Path, html: str) -> dict[str, Any]:
    """Run the report's script under node with the stub DOM; its JSON summary."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the report's JavaScript is not checked here")
    data, code = scripts(html)
    (tmp_path / "report.js").write_text(code)
    (tmp_path / "data.json").write_text(data)
    (tmp_path / "stub.js").write_text(STUB_DOM)
    checked = subprocess.run([node, "--check", str(tmp_path / "report.js")], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    ran = subprocess.run([node, str(tmp_path / "stub.js"), str(tmp_path / "report.js"), str(tmp_path / "data.json"),
                          json.dumps(CHART_IDS)], capture_output=True, text=True, timeout=30)
    assert ran.returncode == 0, ran.stderr
    return json.loads(ran.stdout)


def test_javascript_is_valid_and_draws_every_chart(report: dict[str, Any], tmp_path: Path) -> None:
    result = run_script(tmp_path, report["html"].read_text())
    assert result["errors"] == []
    drawn = result["drawn"]
    assert drawn["chart-curves"]["svg"] == 1 and drawn["chart-iqm"]["svg"] == 2  # one scenario; two conditions
    assert drawn["chart-poi"]["svg"] == 2 and drawn["chart-profiles"]["svg"] == 2
    assert drawn["chart-transfer"]["svg"] == 1 and drawn["table-robustness"]["table"] == 1
    assert all(drawn[chart]["title"] > 0 for chart in CHART_IDS if chart != "table-robustness")  # hover tooltips
    assert all(drawn[chart]["empty"] == 0 for chart in CHART_IDS)
    assert result["series"] > 0 and result["hidden"] == result["series"] == result["shown"]
    assert result["off"] is False


# --- degenerate input ---------------------------------------------------------------------------------------------


def test_single_seed_and_missing_snn_give_dashes_not_crashes(tmp_path: Path) -> None:
    rows = [make_row("dqn", seed, "clean", score) for seed, score in enumerate([10, 11, 12])]
    rows.append(make_row("spiking", 0, "clean", 50, snn=None, speed=None) | {"curve": [], "crashed": []})
    rows.append(make_row("spiking", 0, "noise", 40, snn=None, speed=None) | {"curve": []})
    report = write_report(tmp_path / "out", rows, "dqn", META)
    stats = json.loads(report["json"].read_text())["statistics"]
    single = stats["summary"][SCENARIO]["clean"]["spiking"]
    assert single["iqm"] == {"value": 50.0, "low": None, "high": None}
    assert single["probability_of_improvement"] == {"value": 1.0, "low": None, "high": None}
    assert single["crash_rate"]["low"] is None and single["mean_speed"]["value"] is None and single["energy"] is None
    # no per-episode flags: crashes from crash_rate x n_episodes (seed 0 crashes once in 4)
    assert (single["crash_episodes"]["crashes"], single["crash_episodes"]["episodes"]) == (1, 4)
    html = report["html"].read_text()
    text = re.sub(r'src="data:[^"]*"', "", html)  # base64 may spell "NaN" by chance
    assert '50.00<span class="ci">[-]</span>' in html and "NaN" not in text
    result = run_script(tmp_path, html)
    assert result["errors"] == []
    # the baseline was not evaluated under noise: no probability of improvement there, and the page still draws
    assert stats["aggregate"]["noise"]["spiking"]["probability_of_improvement"] is None


def test_no_rows_still_writes_a_page(tmp_path: Path) -> None:
    report = write_report(tmp_path, [], "dqn", META)
    html = report["html"].read_text()
    assert "nothing was evaluated" in html and report["plots"] == []
    if shutil.which("node"):
        data, code = scripts(html)
        (tmp_path / "r.js").write_text(code)
        assert subprocess.run(["node", "--check", str(tmp_path / "r.js")]).returncode == 0


def test_verdicts_are_holm_corrected_mann_whitney_and_say_the_seeds_a_tie_would_need() -> None:
    from scipy import stats

    seeds = range(6)
    far = [10.0 + seed for seed in seeds]  # every seed above every baseline seed
    baseline = [0.0 + seed for seed in seeds]
    mixed = [0.5 + seed for seed in seeds]  # interleaved with the baseline: no separation at 6 seeds
    rows = [make_row(variant, seed, condition, scores[seed]) for condition in ("clean", "noise")
            for variant, scores in (("standard", baseline), ("far", far), ("mixed", mixed)) for seed in seeds]
    statistics = compute_statistics(rows, "standard")
    by_key = {(v["variant"], v["condition"]): v for v in statistics["verdicts"]}
    assert len(by_key) == 4  # 2 variants x 2 conditions, baseline left out
    p_far = stats.mannwhitneyu(far, baseline, alternative="two-sided").pvalue
    p_mixed = stats.mannwhitneyu(mixed, baseline, alternative="two-sided").pvalue
    # Holm over m = 4, step-down: the far ones (tied, smallest) get 4p and max(4p, 3p) = 4p; the mixed ones
    # max(4p_far, 2p_mixed) then max(that, p_mixed), each capped at 1
    assert by_key[("far", "clean")]["p_adjusted"] == pytest.approx(4 * p_far)
    assert by_key[("far", "clean")]["outcome"] == "better" and 4 * p_far <= 0.05
    assert by_key[("mixed", "noise")]["p_adjusted"] == pytest.approx(min(1.0, max(4 * p_far, 2 * p_mixed)))
    assert by_key[("mixed", "clean")]["outcome"] == "not_separated"
    assert by_key[("far", "clean")]["iqm_difference"]["value"] == pytest.approx(10.0)  # IQM of x minus IQM of y
    assert by_key[("far", "clean")]["probability_of_improvement"]["value"] == 1.0
    # A difference of 0.5 against a seed SD of 1.87: Welch's power analysis asks for ~200 seeds a side.
    needed = by_key[("mixed", "clean")]["seeds_for_power"]
    assert needed is not None and 150 < needed < 250
    assert by_key[("far", "clean")]["seeds_for_power"] is None  # settled: nothing to add
    assert statistics["headline"][0].startswith("far is better than standard on")
    # The verdict's interval is the summary's for the same pair, whatever order the rows come in.
    cell = statistics["summary"][SCENARIO]["clean"]["mixed"]["probability_of_improvement"]
    assert by_key[("mixed", "clean")]["probability_of_improvement"] == cell
    reversed_rows = {(v["variant"], v["condition"]): v for v in compute_statistics(rows[::-1], "standard")["verdicts"]}
    assert reversed_rows == by_key
    assert any("not separated from standard" in line and "seeds a side would give 80% power" in line
               for line in statistics["headline"])


def test_the_page_opens_with_its_verdicts(report: dict[str, Any]) -> None:
    import html as html_module

    html = report["html"].read_text()
    statistics = json.loads(report["json"].read_text())["statistics"]
    assert statistics["headline"]  # the hand-made grid has 2+ seeds a side
    head = html[:html.index('<section id="method">')]  # above the method and every table
    for entry in statistics["verdicts"]:
        assert f'<li class="{entry["outcome"]}">{html_module.escape(entry["sentence"])}</li>' in head


def test_two_collapsed_policies_are_both_collapsed_not_unseparated_and_each_collapse_is_named() -> None:
    seeds = range(4)
    idle = {"action": 1, "fraction": 1.0}
    rows = [{**make_row(variant, seed, "clean", 5.0 + seed + (0.5 if variant == "stuck" else 0.0)),
             "dominant_action": idle if variant != "mixed" or seed == 0 else None}
            for variant in ("standard", "stuck", "mixed") for seed in seeds]
    statistics = compute_statistics(rows, "standard")
    outcome = {v["variant"]: v for v in statistics["verdicts"]}
    assert outcome["stuck"]["outcome"] == "both_collapsed" and outcome["stuck"]["seeds_for_power"] is None
    assert "both collapsed to one action on every seed" in outcome["stuck"]["sentence"]
    # One collapsed seed of four is no collapse of the variant: an ordinary verdict, with its power analysis.
    assert outcome["mixed"]["outcome"] == "not_separated" and outcome["mixed"]["seeds_for_power"] is None  # a tie
    collapsed = statistics["summary"][SCENARIO]["clean"]
    assert collapsed["stuck"]["collapsed_seeds"] == [0, 1, 2, 3] and collapsed["mixed"]["collapsed_seeds"] == [0]
    notes = [note for note in statistics["notes"] if "collapsed to one action" in note]
    assert any(note.startswith(f"{SCENARIO} / clean / mixed: 1 of 4 seeds collapsed") for note in notes)
    assert len(notes) == 3  # standard, stuck and mixed each named once

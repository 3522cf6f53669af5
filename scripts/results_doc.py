"""Bring docs/results.md up to date with the published comparisons' reports.

For each comparison named below, from ``<root>/<name>/report/`` (``neurodrive compare`` writes it): copy
``results.json``, the report's key plots and, when under 1 MB, ``report.html`` into ``docs/results/<name>/``;
then rewrite the block between ``<!-- tables: <name> -->`` and ``<!-- /tables: <name> -->`` in docs/results.md
with the tables of ``experiments.compare.report.markdown``, and draw the P5 frontier
(``docs/results/frontier.png``: return against crash rate).

    python scripts/results_doc.py                      # every published comparison found under runs/compare
    python scripts/results_doc.py --root /elsewhere/runs/compare strong_agent
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
from pathlib import Path

from experiments.compare.report.markdown import comparison_tables
from experiments.compare.runner import read_meta
from experiments.runs.folder import RunFolder

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "results.md"
FOLDER = REPO / "docs" / "results"
PUBLISHED = ("strong_agent", "dqn_dopamine", "modulated", "spiking", "vision_spiking", "plasticity",
             "plasticity_spiking")
PLOTS = ("iqm_ci.png", "crash_rate.png", "probability_of_improvement.png", "transfer_matrix.png")
MAX_HTML_BYTES = 1_000_000
P5_RETURN, P5_CRASH_RATE = 27.0, 0.05


def publish(name: str, report: Path) -> dict:
    target = FOLDER / name
    target.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(report / "results.json", target / "results.json")
    for plot in PLOTS:
        if (report / "plots" / plot).is_file():
            shutil.copyfile(report / "plots" / plot, target / plot)
    html = report / "report.html"
    if html.is_file() and html.stat().st_size <= MAX_HTML_BYTES:
        shutil.copyfile(html, target / "report.html")
    return json.loads((target / "results.json").read_text())


def replace_block(text: str, kind: str, name: str, body: str) -> str:
    pattern = re.compile(rf"(<!-- {kind}: {re.escape(name)} -->\n).*?(\n<!-- /{kind}: {re.escape(name)} -->)", re.S)
    if not pattern.search(text):
        raise SystemExit(f"docs/results.md has no <!-- {kind}: {name} --> block")
    return pattern.sub(lambda match: match.group(1) + body + match.group(2), text)


def provenance(data: dict, base: Path) -> str:
    """Where the numbers came from: the commits the cells trained on, their training wall times, the span."""
    runs = {}
    for row in data["rows"]:
        meta = read_meta(RunFolder(base / row["run_dir"].split(":", 1)[-1]))
        if meta is not None:
            runs[row["run_dir"]] = meta
    if not runs:
        return "(run folders not found: provenance not collected)"
    commits = sorted({(run.get("platform_commit") or "?")[:10] for run in runs.values()})
    walls = [run["wall_time_s"] for run in runs.values() if run.get("wall_time_s") is not None]
    started = min(run["started"] for run in runs.values())[:16].replace("T", " ")
    finished = max(run.get("finished") or run["started"] for run in runs.values())[:16].replace("T", " ")
    meta = data["meta"]
    command = " ".join(meta.get("command") or [])
    return (f"{len(runs)} cells trained on commit {', '.join(commits)}; training wall time per cell "
            f"{min(walls):.0f}-{max(walls):.0f} s (sum {sum(walls) / 60:.0f} min); first start {started}, last "
            f"finish {finished} UTC. Report written on commit {(meta.get('commit') or '?')[:10]} by `{command}`.")


def draw_frontier(results: dict[str, dict]) -> None:
    """Mean return against crash rate of every seed of the strong agent under `clean`, and each published DQN
    variant's mean over seeds there, with the P5 target region."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    figure, axis = plt.subplots(figsize=(9, 4.5))
    axis.add_patch(Rectangle((0, P5_RETURN), P5_CRASH_RATE, 3.0, color="#d9f0d3", zorder=0,
                             label="P5 target: return >= 27, crashes <= 5%"))
    markers = iter("os^Dvp<>")
    for name, data in results.items():
        statistics = data["statistics"]
        condition = statistics["conditions"][0]
        for scenario in statistics["scenarios"]:
            if scenario != "highway-fast-v0":
                continue
            marker = next(markers)
            for variant, entry in statistics["summary"][scenario][condition].items():
                label = f"{name}: {variant}"
                axis.scatter(entry["crash_rate"]["value"], entry["mean"]["value"], marker=marker, s=60,
                             label=label, zorder=3)
                if name == "strong_agent":
                    rows = [row for row in data["rows"] if row["variant"] == variant and row["condition"] == condition]
                    axis.scatter([row["crash_rate"] for row in rows], [row["mean_return"] for row in rows],
                                 marker=marker, s=18, alpha=0.5, color="grey", zorder=2)
    axis.set_xlabel("crash rate (mean over seeds; grey: each strong-agent seed)")
    axis.set_ylabel("mean return (highway-fast-v0, clean)")
    axis.set_xlim(left=0)
    axis.set_ylim(top=max(axis.get_ylim()[1], P5_RETURN + 0.5))
    axis.legend(fontsize=6, loc="center left", bbox_to_anchor=(1.01, 0.5))
    figure.tight_layout()
    figure.savefig(FOLDER / "frontier.png", dpi=120)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", default=list(PUBLISHED))
    parser.add_argument("--root", type=Path, default=Path("runs/compare"))
    args = parser.parse_args()
    text = DOC.read_text()
    for name in args.names:
        report = args.root / name / "report"
        if not (report / "results.json").is_file():
            print(f"{name}: no report under {report}; kept as it is")
            continue
        data = publish(name, report)
        text = replace_block(text, "tables", name, comparison_tables(data["statistics"]))
        text = replace_block(text, "provenance", name, provenance(data, args.root.resolve().parents[1]))
        print(f"{name}: published ({len(data['rows'])} rows)")
    DOC.write_text(text)
    results = {name: json.loads((FOLDER / name / "results.json").read_text()) for name in PUBLISHED
               if (FOLDER / name / "results.json").is_file() and name in ("strong_agent", "dqn_dopamine", "modulated")}
    if results:
        draw_frontier(results)


if __name__ == "__main__":
    main()

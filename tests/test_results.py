"""docs/results.md held to the runs behind it (issue 27). For each published comparison (docs/results/<name>/):

- its committed numbers came from the committed configs: the config digest of every cell in its results
  equals the digest of that cell in ``experiments/presets/compare/<name>.yaml`` as committed now, and so do
  the conditions' evaluation settings;
- its statistics are what the report code computes from its committed per-seed rows, and the tables in
  docs/results.md are those statistics (so no number in the document was typed by hand);
- every figure the document shows exists;
- (slow) one cell of each table reruns at a short budget (the file's ``quick:`` block) on today's code, with
  the committed experiment apart from what that block shortens.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest
import yaml

from experiments.compare.report.files import json_safe
from experiments.compare.report.markdown import comparison_tables
from experiments.compare.report.summary import compute_statistics
from experiments.compare.runner import run_cell
from experiments.compare.spec import load_comparison
from experiments.config import set_path
from tests_support import EXPERIMENTS, REPO

DOC = REPO / "docs" / "results.md"
PUBLISHED = sorted(path.parent for path in (REPO / "docs" / "results").glob("*/results.json"))
FROM_FILES = {"neuro_values"}  # read from each run's TensorBoard files, which are not committed


def results(folder: Path) -> dict:
    return json.loads((folder / "results.json").read_text())


def compare_file(folder: Path) -> Path:
    return EXPERIMENTS / "compare" / f"{folder.name}.yaml"


def test_there_are_published_results():
    assert len(PUBLISHED) >= 7, PUBLISHED  # else the tests below would check nothing


@pytest.mark.parametrize("folder", PUBLISHED, ids=lambda folder: folder.name)
def test_committed_numbers_came_from_the_committed_config(folder):
    data = results(folder)
    seeds = sorted({int(row["seed"]) for row in data["rows"]})  # a sequential design's later looks included
    expected = dataclasses.replace(load_comparison(compare_file(folder)), seeds=seeds).fingerprint()
    recorded = data["meta"]["fingerprint"]
    cells = {f"{row['variant']}/{row['scenario']}/seed{row['seed']}" for row in data["rows"]}
    assert cells and cells <= set(expected["cells"]), sorted(cells - set(expected["cells"]))
    changed = sorted(cell for cell in cells if recorded["cells"][cell] != expected["cells"][cell])
    assert not changed, f"{folder.name}: the comparison file now gives {changed} another experiment"
    conditions = {row["condition"] for row in data["rows"]}
    assert {name: recorded["conditions"][name] for name in conditions} == \
        {name: expected["conditions"][name] for name in conditions}


@pytest.mark.parametrize("folder", PUBLISHED, ids=lambda folder: folder.name)
def test_statistics_and_the_documents_tables_come_from_the_rows(folder):
    data = results(folder)
    statistics = json_safe(compute_statistics(data["rows"], data["statistics"]["baseline"], data["meta"]))
    committed = data["statistics"]
    assert {key: value for key, value in statistics.items() if key not in FROM_FILES} == \
        {key: value for key, value in committed.items() if key not in FROM_FILES}
    block = re.search(rf"<!-- tables: {folder.name} -->\n(.*?)\n<!-- /tables: {folder.name} -->", DOC.read_text(), re.S)
    assert block, f"docs/results.md has no tables block for {folder.name}"
    assert block.group(1) == comparison_tables(committed), f"regenerate: python scripts/results_doc.py {folder.name}"


def test_every_figure_the_document_shows_exists():
    figures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", DOC.read_text())
    assert figures
    missing = [figure for figure in figures if not (DOC.parent / figure).is_file()]
    assert not missing, missing


@pytest.mark.slow
@pytest.mark.parametrize("folder", PUBLISHED, ids=lambda folder: folder.name)
def test_one_cell_of_each_table_reruns_at_a_short_budget(folder, tmp_path, monkeypatch):
    """The baseline's first seed, trained and judged under every condition with the file's quick block: it runs
    on today's code, and its experiment is the committed one except the fields that block shortens."""
    data = results(folder)
    path = compare_file(folder)
    quick = load_comparison(path, quick=True)
    baseline = data["statistics"]["baseline"]
    cell = next(cell for cell in quick.cells() if cell.variant == baseline)
    monkeypatch.chdir(tmp_path)
    run_dir = run_cell(quick, cell)
    for condition in quick.conditions:
        record = json.loads((run_dir / f"compare-{condition}.json").read_text())
        assert record["summary"]["n_episodes"] == quick.evaluation.episodes
    rerun = yaml.safe_load((run_dir / "config.yaml").read_text())
    committed = data["meta"]["configs"][baseline]
    shortened = yaml.safe_load(path.read_text()).get("quick", {}).get("fixed", {})
    for dotted in shortened:  # put back what the quick block changed, then nothing else may differ
        keys = dotted.split(".")
        value = committed
        for key in keys:
            value = value[key]
        set_path(rerun, dotted, value)
    rerun.pop("logging"), committed.pop("logging")
    assert rerun == committed

"""report.html in a real headless browser (Debian's chromium driven by Playwright, network off, a 1280 px
window): the summary table renders, every chart draws into its container, every PNG figure loads, no table
or the page itself is wider than the window, a change of exactly 0 is neutral, the legend toggles a series,
and the page logs no console errors."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from experiments.compare.report import write_report

sys.path.insert(0, str(Path(__file__).parent))
from test_report import CHART_IDS, META, grid_rows, make_row  # noqa: E402  (the hand-made grid of test_report.py)
from test_report_plots import write_tb  # noqa: E402

FIGURE_IDS = ["figure-difference", "figure-seeds", "figure-crash-rate", "figure-neuro"]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Flags for a root, offline, closed-network machine (DESIGN.md's browser trap).
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

# CI installs both (.ci/run), so there the test always runs; elsewhere it says what it needs.
pytestmark = pytest.mark.skipif(
    not os.environ.get("CI") and (importlib.util.find_spec("playwright") is None or not Path(CHROMIUM).exists()),
    reason="needs Playwright and Debian's chromium (apt-get install chromium; .ci/run installs it)",
)


def browser_rows(tmp_path: Path) -> list[dict]:
    """The hand-made grid, plus a variant that scores the same clean and under noise (a change of exactly 0) and
    logs a neuromodulated learning rate to TensorBoard."""
    rows = grid_rows()
    for seed in range(3):
        run = tmp_path / "runs" / f"steady_{seed}"
        write_tb(run / "tb", {"neuro/learning_rate/learning_rate": [(step, 1e-3 * (1 + seed) - 1e-7 * step)
                                                                    for step in range(0, 2000, 200)]})
        rows += [make_row("steady", seed, condition, 10.0 + seed) | {"run_dir": str(run)}
                 for condition in ("clean", "noise")]
    return rows


def test_report_renders_its_table_and_every_chart_offline_without_console_errors(tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    report = write_report(tmp_path / "report", browser_rows(tmp_path), "dqn", META)
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            # the report must open with the network off, and fit a 1280 px window
            context = browser.new_context(offline=True, viewport={"width": 1280, "height": 900})
            page = context.new_page()
            page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(report["html"].resolve().as_uri())
            page.wait_for_load_state("load")
            verdicts = page.inner_text("#verdicts")  # the headline, first thing on the page
            assert all(sentence in verdicts for sentence in report["headline"]) and report["headline"]
            table_text = page.inner_text("table")
            assert "dqn" in table_text and "dopamine" in table_text and "spiking" in table_text
            for chart_id in CHART_IDS:
                drawn = page.eval_on_selector(f"#{chart_id}", "el => el.querySelectorAll('svg *, td').length")
                assert drawn > 0, chart_id
            for figure_id in FIGURE_IDS:  # each PNG figure is there and decoded
                loaded = page.eval_on_selector(f"#{figure_id}", "img => img.complete && img.naturalWidth > 0")
                assert loaded, figure_id
            assert page.evaluate("document.documentElement.scrollWidth") <= 1280  # no horizontal overflow
            too_wide = page.evaluate("[...document.querySelectorAll('table')]"
                                     ".filter(t => t.scrollWidth > t.parentElement.clientWidth).length")
            assert too_wide == 0  # every table fits without its own scroll bar
            # steady scores the same under noise as clean: its change reads 0.00, neither green nor red
            change = page.evaluate("""() => {
                const row = [...document.querySelectorAll('#table-robustness tr')]
                    .find(tr => tr.cells[0].textContent === 'steady' && tr.cells[1].textContent === 'noise');
                const cell = row.cells[4];
                return [cell.textContent, cell.className, getComputedStyle(cell).color,
                        getComputedStyle(row).color];
            }""")
            assert change[0] == "0.00" and change[1] == "same" and change[2] == change[3]
            # no interval end or dot of the drawn charts sits on or past its frame
            clipped = page.evaluate("""() => [...document.querySelectorAll('#chart-iqm svg, #chart-poi svg')]
                .flatMap(svg => {
                    const frame = svg.querySelector('.frame'), left = +frame.getAttribute('x');
                    const right = left + +frame.getAttribute('width');
                    const xs = [...svg.querySelectorAll('[data-series] line')]
                        .flatMap(l => [+l.getAttribute('x1'), +l.getAttribute('x2')])
                        .concat([...svg.querySelectorAll('[data-series] circle')].map(c => +c.getAttribute('cx')));
                    return xs.filter(x => !(left < x && x < right));
                })""")
            assert clipped == []
            worse = page.eval_on_selector_all("#table-robustness td.worse", "cells => cells.length")
            assert worse > 0  # the others do drop under noise, and show it
            shown = ("el => [...el.querySelectorAll(\"[data-series='dopamine']\")]"
                     ".filter(node => getComputedStyle(node).display !== 'none').length")
            assert page.eval_on_selector("#chart-iqm", shown) > 0
            page.click("#chart-iqm [data-legend='dopamine']")  # the legend hides a variant in every chart
            assert page.eval_on_selector("#chart-iqm", shown) == 0
            assert page.eval_on_selector("#chart-curves", shown) == 0
        finally:
            browser.close()
    assert errors == []


def test_a_report_run_until_conclusive_shows_its_design_and_headline(tmp_path: Path) -> None:
    """The report of a grid run ``--until-conclusive`` (cells faked, as in test_until_conclusive.py): the design's
    sentence and its table of looks sit in the verdicts section with every headline sentence, and fit the window."""
    from playwright.sync_api import sync_playwright
    from test_until_conclusive import FakeCells, write_grid

    from experiments.cli import main

    path = write_grid(tmp_path)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("experiments.compare.runner.run_cell", FakeCells())
        assert main(["compare", str(path), "--until-conclusive", "--max-seeds", "10"]) == 0
    report = tmp_path / "runs" / "seq" / "report"
    headline = json.loads((report / "results.json").read_text())["statistics"]["headline"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(offline=True, viewport={"width": 1280, "height": 900}).new_page()
            page.goto((report / "report.html").resolve().as_uri())
            page.wait_for_load_state("load")
            verdicts = page.inner_text("#verdicts")
            assert headline[0].startswith("Group-sequential design") and all(line in verdicts for line in headline)
            looks = page.eval_on_selector_all("#verdicts table.design tbody tr", "rows => rows.length")
            assert looks == 2  # looks at 5 and 10 seeds
            assert page.eval_on_selector("#verdicts table.design",
                                         "t => t.scrollWidth <= t.parentElement.clientWidth")
            assert page.evaluate("document.documentElement.scrollWidth") <= 1280
        finally:
            browser.close()

"""report.html in a real headless browser (Debian's chromium driven by Playwright, network off): the
summary table renders, every chart draws into its container, the legend toggles a series, and the
page logs no console errors."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from pathlib import Path

import pytest

from experiments.compare.report import write_report

sys.path.insert(0, str(Path(__file__).parent))
from test_report import CHART_IDS, META, grid_rows  # noqa: E402  (the hand-made grid of test_report.py)

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Flags for a root, offline, closed-network machine (DESIGN.md's browser trap).
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

# CI installs both (.ci/run), so there the test always runs; elsewhere it says what it needs.
pytestmark = pytest.mark.skipif(
    not os.environ.get("CI") and (importlib.util.find_spec("playwright") is None or not Path(CHROMIUM).exists()),
    reason="needs Playwright and Debian's chromium (apt-get install chromium; .ci/run installs it)",
)


def test_report_renders_its_table_and_every_chart_offline_without_console_errors(tmp_path):
    from playwright.sync_api import sync_playwright

    report = write_report(tmp_path / "report", grid_rows(), "dqn", META)
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(offline=True)  # the report must open with the network off
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
            shown = ("el => [...el.querySelectorAll(\"[data-series='dopamine']\")]"
                     ".filter(node => getComputedStyle(node).display !== 'none').length")
            assert page.eval_on_selector("#chart-iqm", shown) > 0
            page.click("#chart-iqm [data-legend='dopamine']")  # the legend hides a variant in every chart
            assert page.eval_on_selector("#chart-iqm", shown) == 0
            assert page.eval_on_selector("#chart-curves", shown) == 0
        finally:
            browser.close()
    assert errors == []

"""report.html in a real browser: headless Chromium (Debian's ``chromium``, driven by Playwright without a
browser download) opens the page of a tiny run and of a tiny study from disk. Run with ``pytest -m browser``;
``.ci/run`` installs chromium when it is absent."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import make_report_run, make_report_study
from PIL import Image

from dsbias.report.write import write_html

pytestmark = pytest.mark.browser
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Flags that work in a container without a sandbox or a GPU, and keep the browser off the network.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not Path(CHROMIUM).is_file():
        pytest.fail("chromium not found: apt-get install -y chromium (.ci/run does it)")
    from playwright.sync_api import sync_playwright

    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(str(profile), executable_path=CHROMIUM, headless=True,
                                                    args=FLAGS, viewport={"width": 1200, "height": 900})
        yield ctx
        ctx.close()


def open_page(browser, html: Path, shot: Path) -> tuple:
    """Load ``html`` from disk; return the page, its console errors and failed requests, and save a screenshot."""
    page = browser.new_page()
    errors, failed = [], []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("requestfailed", lambda r: failed.append(r.url))
    page.goto(html.resolve().as_uri(), wait_until="load")
    page.screenshot(path=str(shot), full_page=True)
    return page, errors, failed


def check_common(page, errors, failed, shot: Path, sections: set[str]) -> None:
    assert errors == [] and failed == []
    sizes = page.eval_on_selector_all("img", "els => els.map(e => [e.complete, e.naturalWidth, e.naturalHeight])")
    assert sizes and all(ok and w > 0 and h > 0 for ok, w, h in sizes)
    ids = set(page.eval_on_selector_all("[id]", "els => els.map(e => e.id)"))
    assert sections <= ids, sections - ids
    assert page.locator("#verdict li").count() >= 3
    assert page.locator("#confusion tbody tr").count() >= 2
    img = np.asarray(Image.open(io.BytesIO(shot.read_bytes())).convert("L"), dtype=np.float64)
    assert img.shape[0] > 500 and img.std() > 10  # not blank: text, tables and figures on white
    # Outgoing requests: none but the page's own files.
    assert page.evaluate("performance.getEntriesByType('resource').every(e => e.name.startsWith('file:') "
                         "|| e.name.startsWith('data:'))")


def test_run_page_in_chromium(browser, tmp_path):
    root = make_report_run(tmp_path / "run")
    html = write_html(root)
    page, errors, failed = open_page(browser, html, tmp_path / "run.png")
    check_common(page, errors, failed, tmp_path / "run.png", {"verdict", "results", "results-table", "per-source",
                                                              "images", "leakage", "embedding", "curves",
                                                              "provenance"})
    assert "Separable" in page.inner_text("#verdict") or "Not shown" in page.inner_text("#verdict")
    # Sorting: a click on "value" orders the results table by it (numbers, not text).
    page.click("#results-table th:nth-child(3)")
    values = [float(v.rstrip("%")) for v in page.eval_on_selector_all(
        "#results-table tbody tr td:nth-child(3)", "els => els.map(e => e.textContent)")]
    assert values == sorted(values)


def test_study_page_in_chromium(browser, tmp_path):
    out = make_report_study(tmp_path / "study", n_runs=2)
    html = write_html(out)
    page, errors, failed = open_page(browser, html, tmp_path / "study.png")
    check_common(page, errors, failed, tmp_path / "study.png", {"verdict", "results", "table-combos", "per-source",
                                                                "figures", "runs", "provenance"})
    page.click("#runs a >> nth=0")  # a run's own page opens from the study's
    page.wait_for_load_state("load")
    assert page.url.endswith("/report.html") and "/runs/" in page.url
    assert page.locator("#results-table").count() == 1

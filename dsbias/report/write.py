"""Which page a path gets (a study dir: the study page; a run or features dir: the run page), and the hook every
command calls after writing its results."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from dsbias.report.run_page import write_run_page
from dsbias.report.rundata import has_results
from dsbias.report.study_page import write_study_page

logger = logging.getLogger(__name__)


def write_html(path: str | Path, runs: bool = True) -> Path:
    """(Re)write ``report.html`` for a study dir (``results.csv`` in it; with ``runs``, every run's page too) or a
    run / features dir."""
    p = Path(path)
    if (p / "results.csv").is_file():
        return write_study_page(p, runs=runs)
    return write_run_page(p)


def refresh(path: str | Path) -> Path | None:
    """Rewrite the page of ``path`` after a command added a result; only in the main process of a launch (the
    others return None), and only once the dir holds a result to lead with (a pretraining run's page is written
    by its first probe). Prints where it went, its size and the time it took."""
    if int(os.environ.get("RANK", "0")) != 0 or not ((Path(path) / "results.csv").is_file() or has_results(path)):
        return None
    t0 = time.perf_counter()
    page = write_html(path, runs=False)
    print(f"report: {page} ({page.stat().st_size / 1024:.0f} KB, {time.perf_counter() - t0:.1f}s)")
    return page

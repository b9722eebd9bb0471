"""``python tools/report.py PATH [--no-runs]``

(Re)write report.html for a run dir, a features dir or a study dir (with results.csv): the verdict, every result
with its interval, the confusion table, images, near duplicates, the embedding map, curves and provenance, in one
self-contained file that opens from disk. A study dir also gets every run's own page (unless --no-runs).
"""

from __future__ import annotations

import time
from pathlib import Path

from dsbias.cli import args as cli
from dsbias.errors import UserError
from dsbias.report.write import write_html


@cli.guarded
def main(argv: list[str]) -> int:
    p = cli.parser("tools/report.py", __doc__, config=False)
    p.add_argument("path", help="run dir, features dir or study dir")
    p.add_argument("--no-runs", action="store_true", help="study dir: rewrite only the study's page")
    args = cli.parse(p, argv)
    if not Path(args.path).is_dir():
        raise UserError(f"{args.path}: not a directory (give a run dir, a features dir or a study dir)")
    t0 = time.perf_counter()
    page = write_html(args.path, runs=not args.no_runs)
    print(f"report: {page} ({page.stat().st_size / 1024:.0f} KB, {time.perf_counter() - t0:.1f}s)")
    return 0

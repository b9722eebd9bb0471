"""``python tools/calibrate.py [--reps 500] [--signal-reps 200] [--classifier-runs 10] [--out DIR]``

Calibration benchmark (not a test): how often each verdict says "separable" on null data (target <= 5%) and how
often each 95% interval covers the true accuracy (target ~95%), for the kNN, linear and clustering probes on
synthetic grouped Gaussian features and for the end-to-end classifier on null toy sources. Writes
``DIR/calibration.json`` and ``DIR/calibration.md`` and prints the table.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from dsbias.bench.calibration import SETTINGS, markdown, one_repetition, summarise
from dsbias.bench.calibration_runs import classifier_calibration
from dsbias.bench.timer import machine_line
from dsbias.cli import args as cli
from dsbias.errors import UserError
from dsbias.log import progress
from dsbias.runs import write_json, write_text


@cli.guarded
def main(argv: list[str]) -> int:
    p = cli.parser("tools/calibrate.py", __doc__, config=False)
    p.add_argument("--reps", type=int, default=500, help="repetitions per null setting of the feature probes (0: none)")
    p.add_argument("--signal-reps", type=int, default=200, help="repetitions with signal (coverage, gain)")
    p.add_argument("--classifier-runs", type=int, default=10, help="classifier runs per null toy data set (0: none)")
    p.add_argument("--classifier-overrides", nargs="*", default=[],
                   help="config overrides of the classifier runs, e.g. data.image_size=32 (default: none)")
    p.add_argument("--probes", nargs="+", default=["knn", "linear", "cluster"], choices=["knn", "linear", "cluster"])
    p.add_argument("--out", default="out/calibration", help="output folder (default out/calibration)")
    args = cli.parse(p, argv)
    if min(args.reps, args.signal_reps, args.classifier_runs) < 0:
        raise UserError("--reps, --signal-reps and --classifier-runs must be >= 0")
    out = Path(args.out)
    t0 = time.perf_counter()
    summary, seconds = {}, {}
    for setting in SETTINGS:
        reps = args.signal_reps if setting.shift > 0 else args.reps
        if not reps:
            continue
        t = time.perf_counter()
        outcomes = [one_repetition(setting, r, tuple(args.probes))
                    for r in progress(range(reps), desc=setting.name, unit="rep")]
        seconds[setting.name] = round(time.perf_counter() - t, 1)
        summary.update({f"{setting.name} :: {k}": v for k, v in summarise(outcomes).items()})
    if args.classifier_runs:
        t = time.perf_counter()
        runs = classifier_calibration(args.classifier_runs, out / "runs",
                                      overrides=tuple(args.classifier_overrides))
        seconds["classifier"] = round(time.perf_counter() - t, 1)
        for key, r in summarise(runs).items():
            name, scored = key.split("/")
            summary[f"{name.removeprefix('classifier ')} :: classifier/{scored}"] = r
    table = markdown(summary)
    head = (f"{machine_line()}; load average at the end {os.getloadavg()[0]:.1f}; "
            f"{time.perf_counter() - t0:.0f} s in all ({seconds}); command: python tools/calibrate.py "
            + " ".join(argv))
    write_json(out / "calibration.json", {"summary": summary, "seconds": seconds, "machine": head})
    write_text(out / "calibration.md", f"{head}\n\n{table}\n")
    print(f"{head}\n\n{table}\n\n-> {out / 'calibration.md'}")
    return 0

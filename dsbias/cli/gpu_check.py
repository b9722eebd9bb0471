"""``python tools/gpu_check.py [--only abcdef] [--json FILE]``

The first run of dsbias on a CUDA GPU, in <= 10 minutes on one GPU: (a) pytest -m gpu, (b) a sharded faiss
index vs CPU, (c) each method at 224 px in fp32/bf16/fp16 with resume, extraction and probes, (d) ConvNeXt-T
throughput per precision vs a bare timm loop and the loader, (e) 2 processes vs 1 on one GPU, (f) the linear
probe's peak memory on 3M x 768 features. Prints one table and writes JSON; without a GPU it stops with one line.
"""

from __future__ import annotations

import time
from pathlib import Path

from dsbias.bench.gpu_check import CHECKS, require_gpu, run_checks, table
from dsbias.bench.timer import machine_line
from dsbias.cli import args as cli
from dsbias.errors import UserError
from dsbias.runs import write_json


@cli.guarded
def main(argv: list[str]) -> int:
    p = cli.parser("tools/gpu_check.py", __doc__, config=False)
    p.add_argument("--only", default="".join(CHECKS), help="checks to run, e.g. 'ab' (default: %(default)s)")
    p.add_argument("--json", default="gpu_check.json", help="where the rows go (default: %(default)s)")
    args = cli.parse(p, argv)
    unknown = sorted(set(args.only) - set(CHECKS))
    if unknown or not args.only:
        raise UserError(f"--only {args.only!r}: use letters of {''.join(CHECKS)} (e.g. --only ab)")
    gpu = require_gpu()
    t0 = time.perf_counter()
    rows = run_checks([c for c in CHECKS if c in args.only])
    title = f"gpu_check on {gpu}, {time.perf_counter() - t0:.0f} s"
    print(table(rows, title))
    print(machine_line())
    write_json(Path(args.json), {"gpu": gpu, "machine": machine_line(), "rows": rows})
    print(f"-> {args.json}")
    return 0 if not any(r["ok"] is False for r in rows) else 1

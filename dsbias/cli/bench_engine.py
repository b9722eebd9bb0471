"""``python tools/bench_engine.py [--steps 30] [--config FILE] [overrides...]`` (default: configs/pretrain.yaml)

The engine's training throughput next to a bare PyTorch loop over the same method and batch: trains ``--steps``
steps with the engine (data loading, augmentation, Accelerate) into a temporary run dir, then times a plain
AdamW loop over one fixed batch of the same size; prints both and their ratio.
"""

from __future__ import annotations

import json
import tempfile

from dsbias.bench.engine import bench_engine
from dsbias.bench.timer import machine_line
from dsbias.cli import args as cli


@cli.guarded
def main(argv: list[str]) -> int:
    p = cli.parser("tools/bench_engine.py", __doc__)
    p.add_argument("--steps", type=int, default=30, help="timed steps (%(default)s)")
    args = cli.parse(p, argv)
    cfg = cli.load(args, default_config="pretrain")
    with tempfile.TemporaryDirectory(prefix="dsbias-bench-") as tmp:
        result = bench_engine(cfg, args.steps, tmp)
    print(json.dumps(result, indent=1))
    print(f"engine {result['engine_img_per_s']:.1f} img/s  bare loop {result['bare_img_per_s']:.1f} img/s  "
          f"ratio {result['ratio']:.2f}  ({result['method']}, {result['model']}, batch {result['batch']})")
    print(machine_line())
    return 0

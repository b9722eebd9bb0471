"""``python tools/bench_engine.py [--steps 30] [--config FILE] [overrides...]`` (default: configs/pretrain.yaml)

The engine's training throughput next to a bare PyTorch loop over the same method and batch: trains ``--steps``
steps with the engine (data loading, augmentation, Accelerate) into a temporary run dir, then times a plain
AdamW loop over one fixed batch of the same size; prints both and their ratio.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from dsbias.bench.engine import bench_engine, bench_engine_files, make_pngs
from dsbias.bench.timer import machine_line
from dsbias.cli import args as cli


@cli.guarded
def main(argv: list[str]) -> int:
    p = cli.parser("tools/bench_engine.py", __doc__)
    p.add_argument("--steps", type=int, default=30, help="timed steps (%(default)s)")
    p.add_argument("--files", type=int, default=0,
                   help="train on this many real 64-px PNG crops (two sources) instead of the config's data, "
                        "without and with data.cache_decoded, against a plain loop over images decoded once; "
                        "e.g. --files 8000 model=convnext_atto method=supervised train.batch_size=128")
    args = cli.parse(p, argv)
    with tempfile.TemporaryDirectory(prefix="dsbias-bench-") as tmp:
        if args.files:
            sources = make_pngs(Path(tmp) / "png", args.files)
            per = args.files // 2
            args.overrides = [f"data.sources={sources}", f"data.per_source={{train: {per - per // 10}, "
                              f"val: {per // 10}}}", "data.image_size=64", *args.overrides]
            cfg = cli.load(args, default_config="pretrain")
            result = bench_engine_files(cfg, args.steps, Path(tmp) / "runs")
            print(json.dumps(result, indent=1))
            print(f"engine {result['engine_img_per_s']:.1f} img/s, with data.cache_decoded "
                  f"{result['engine_cached_img_per_s']:.1f}, plain loop {result['bare_img_per_s']:.1f} img/s: "
                  f"ratios {result['ratio']:.2f} / {result['ratio_cached']:.2f}")
            print("a loader worker's work, ms per image: " + ", ".join(
                f"{k} {v:.3f}" for k, v in result["worker_ms_per_image"].items()))
            print(machine_line())
            return 0
        cfg = cli.load(args, default_config="pretrain")
        result = bench_engine(cfg, args.steps, tmp)
    print(json.dumps(result, indent=1))
    print(f"engine {result['engine_img_per_s']:.1f} img/s  bare loop {result['bare_img_per_s']:.1f} img/s  "
          f"ratio {result['ratio']:.2f}  ({result['method']}, {result['model']}, batch {result['batch']})")
    print(machine_line())
    return 0

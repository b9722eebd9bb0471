"""The engine's training throughput next to a bare PyTorch loop over the same method and batch.

    python tools/bench_engine.py [--steps 30] [--config FILE] [overrides...]      # default: configs/pretrain.yaml

Trains ``--steps`` steps with the engine (data loading, augmentation, Accelerate) into a temporary run dir,
then times a plain AdamW loop over one fixed batch of the same size; prints both and their ratio.
"""

import json
import tempfile

from dsbias.bench import bench_engine
from dsbias.config import config_from_cli

if __name__ == "__main__":
    cfg, args = config_from_cli(
        default_config="pretrain", description=__doc__,
        add_arguments=lambda p: p.add_argument("--steps", type=int, default=30, help="timed steps (%(default)s)"),
    )
    with tempfile.TemporaryDirectory(prefix="dsbias-bench-") as tmp:
        result = bench_engine(cfg, args.steps, tmp)
    print(json.dumps(result, indent=1))
    print(f"engine {result['engine_img_per_s']:.1f} img/s  bare loop {result['bare_img_per_s']:.1f} img/s  "
          f"ratio {result['ratio']:.2f}  ({result['method']}, {result['model']}, batch {result['batch']})")

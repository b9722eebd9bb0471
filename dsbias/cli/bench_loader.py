"""``python tools/bench_loader.py [--images 2000] [--sizes 64 224] [--workers N] [--batch 64] [--steps 3]``

Is data loading the bottleneck? Decode + augment images/s (folders, tar shards, parquet shards, a save_to_disk
dataset) next to training images/s; manifest build time per 100k images; drawing from a large parquet source.
"""

from __future__ import annotations

from dsbias.bench.loader import run_bench
from dsbias.cli import args as cli


@cli.guarded
def main(argv: list[str]) -> int:
    p = cli.parser("tools/bench_loader.py", __doc__, config=False)
    p.add_argument("--images", type=int, default=2000, help="JPEGs of ~500 px to make (temp folder)")
    p.add_argument("--sizes", type=int, nargs="+", default=[64, 224], help="network input sizes")
    p.add_argument("--workers", type=int, default=None, help="DataLoader workers (default: CPUs, max 8)")
    p.add_argument("--batch", type=int, default=64, help="batch size")
    p.add_argument("--steps", type=int, default=3, help="timed training steps per model and size")
    p.add_argument("--tmp", default=None, help="folder for the temporary images (default: system temp)")
    p.add_argument("--row-groups", type=int, nargs="+", default=[100, 10],
                   help="rows per parquet row group: one parquet copy per size (the first is also timed cached)")
    p.add_argument("--parquet-rows", type=int, default=200_000, help="rows of the large parquet source (0: skip)")
    a = cli.parse(p, argv)
    print(run_bench(a.images, a.sizes, a.workers, a.batch, a.steps, a.tmp, tuple(a.row_groups), a.parquet_rows))
    return 0

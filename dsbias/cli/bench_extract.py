"""``python tools/bench_extract.py [--backbone SPEC] [--init random] [--images 512] [--batch 64] [--workers 2]
[--repeat 3]``

Feature-extraction images/s against a bare ``model(x)`` loop over the same model, batch and images; prints
markdown.
"""

from __future__ import annotations

from dsbias.bench.extract import run_bench
from dsbias.cli import args as cli


@cli.guarded
def main(argv: list[str]) -> int:
    p = cli.parser("tools/bench_extract.py", __doc__, config=False)
    p.add_argument("--backbone", default="timm:vit_small_patch16_224", help="backbone spec (as ssl/extract.py)")
    p.add_argument("--init", default="random", choices=("pretrained", "random"),
                   help="random (default) downloads nothing")
    p.add_argument("--weights", default=None, help="a local weights file (with --init pretrained)")
    p.add_argument("--images", type=int, default=512, help="JPEGs of ~500 px to make (temp folder)")
    p.add_argument("--batch", type=int, default=64, help="batch size of both loops")
    p.add_argument("--workers", type=int, default=2, help="loader workers of the extraction (data.num_workers)")
    p.add_argument("--repeat", type=int, default=3, help="timed passes per loop (after one warm-up)")
    p.add_argument("--tmp", default=None, help="folder for the temporary images (default: system temp)")
    a = cli.parse(p, argv)
    print(run_bench(a.images, a.batch, a.workers, a.repeat, a.backbone, a.init, a.weights, a.tmp))
    return 0

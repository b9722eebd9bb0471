"""``python tools/prepare.py data=SOURCES.yaml --out DIR [--reencode jpeg --quality 90] [--size 256]``

Write sources to webdataset shards the paper's way (shorter side -> 500 if larger, bicubic), recording native
size and format; ``--reencode jpeg`` makes every image one codec (the low-level fingerprint control).
"""

from __future__ import annotations

from dsbias.cli import args as cli
from dsbias.data.prepare import CODECS, PrepareOptions, prepare, summary_text


@cli.guarded
def main(argv: list[str]) -> int:
    d = PrepareOptions()
    p = cli.parser("tools/prepare.py", __doc__)
    p.add_argument("--short-side", type=int, default=d.short_side, help="resize shorter side to this if larger")
    p.add_argument("--size", type=int, default=d.size, help="resize every image to this shorter side")
    p.add_argument("--max-side", type=int, default=d.max_side, help="cap the longer side")
    p.add_argument("--reencode", choices=sorted(CODECS), default=None, help="re-encode every image")
    p.add_argument("--quality", type=int, default=d.quality, help="JPEG/WebP quality of --reencode")
    p.add_argument("--shard-size", type=int, default=d.shard_size, help="images per shard")
    p.add_argument("--limit", type=int, default=d.limit, help="images per source (0: all)")
    args = cli.parse(p, argv)
    cfg = cli.load(args)
    opts = PrepareOptions(short_side=args.short_side, size=args.size, max_side=args.max_side, reencode=args.reencode,
                          quality=args.quality, shard_size=args.shard_size, limit=args.limit)
    result = prepare(cfg.data, cfg.out, opts)
    print(summary_text(result, cfg.out))
    return 0

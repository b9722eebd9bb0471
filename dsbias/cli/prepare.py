"""``python tools/prepare.py data=SOURCES.yaml --out DIR [--format parquet] [--reencode jpeg --quality 90]``

Write sources to webdataset shards (or parquet shards, --format parquet) the paper's way (shorter side -> 500 if
larger, bicubic), recording native size and format; ``--reencode jpeg`` makes every image one codec (the
low-level fingerprint control).
"""

from __future__ import annotations

from dsbias.cli import args as cli
from dsbias.data.prepare import CODECS, PrepareOptions, prepare, summary_text
from dsbias.errors import UserError


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
    p.add_argument("--format", choices=["tar", "parquet"], default=d.format,
                   help="tar (webdataset) or parquet shards (Hugging Face layout; needs the parquet extra)")
    p.add_argument("--row-group-size", type=int, default=d.row_group_size,
                   help="parquet: rows per row group (one image read reads its row group)")
    args = cli.parse(p, argv)
    if args.row_group_size < 1 or args.shard_size < 1:
        raise UserError(f"--shard-size {args.shard_size} / --row-group-size {args.row_group_size}: must be >= 1")
    cfg = cli.load(args)
    opts = PrepareOptions(short_side=args.short_side, size=args.size, max_side=args.max_side, reencode=args.reencode,
                          quality=args.quality, shard_size=args.shard_size, limit=args.limit, format=args.format,
                          row_group_size=args.row_group_size)
    result = prepare(cfg.data, cfg.out, opts)
    print(summary_text(result, cfg.out))
    return 0

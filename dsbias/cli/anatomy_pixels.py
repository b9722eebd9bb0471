"""``python tools/anatomy_pixels.py --out DIR [--transforms a,b,...] [overrides...]``

Anatomy table in a minute on a CPU: a linear probe on the network input after each transformation. Writes
``DIR/anatomy_pixels.json`` (+ the manifest) and prints a Markdown table.
"""

from __future__ import annotations

from dsbias.anatomy.transforms import parse_transform
from dsbias.audit.pixel_probe import DEFAULT_TRANSFORMS, format_anatomy_table, pixel_probe_table
from dsbias.cli import args as cli
from dsbias.data.manifest import load_or_build_manifest
from dsbias.errors import UserError
from dsbias.runs import RunDir, write_json


@cli.guarded
def main(argv: list[str]) -> int:
    p = cli.parser("tools/anatomy_pixels.py", __doc__)
    p.add_argument("--transforms", default=",".join(t or "reference" for t in DEFAULT_TRANSFORMS),
                   help="comma-separated data.transform values (reference = none)")
    p.add_argument("--workers", type=int, default=4, help="threads reading images")
    args = cli.parse(p, argv)
    cfg = cli.load(args)
    names = tuple("" if t.strip() == "reference" else t.strip() for t in args.transforms.split(","))
    for name in names:  # an unknown name or a missing extra stops here, not after the first rows
        try:
            parse_transform(name)
        except ValueError as e:
            raise UserError(f"--transforms: {e}") from None
    run = RunDir.at(cfg.out)
    manifest = load_or_build_manifest(cfg.data, run.manifest)
    rows = pixel_probe_table(manifest, cfg.data, names, workers=args.workers)
    write_json(run.anatomy_pixels, rows)
    print(f"== pixel-probe anatomy table ({', '.join(manifest.sources)}): {run.anatomy_pixels}")
    print(format_anatomy_table(rows))
    return 0

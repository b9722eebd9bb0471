"""``python ssl/extract.py --backbone SPEC --out DIR [--weights FILE] [--pool P] [--layer L] [--init random]
[--config FILE] [overrides...]``, ``python ssl/extract.py --run RUN_DIR``, or ``python ssl/extract.py --out DIR
[overrides...]`` (the config's ``model``).

Write features to disk for the probes. SPEC: run:RUN_DIR | timm:NAME | open_clip:ARCH (a built-in arch, a model
config .json, local-dir:PATH, hf-hub:ORG/REPO) | hf:PATH_OR_ID. The model's own preprocessing is used and
recorded in meta.json. Rerunning a stopped extraction into the same DIR continues where it stopped.
"""

from __future__ import annotations

import json

from dsbias.cli import args as cli
from dsbias.config import load_config
from dsbias.errors import UserError
from dsbias.pipelines.extract import extract_backbone, extract_model, extract_run
from dsbias.runs import RunDir

FLAGS = ("backbone", "weights", "pool", "layer", "init")


@cli.guarded
def main(argv: list[str]) -> int:
    p = cli.parser("ssl/extract.py", __doc__, run=True)
    p.add_argument("--backbone", default=None, help="SPEC (extract.backbone): run:DIR, timm:NAME, open_clip:ARCH, "
                                                    "hf:PATH_OR_ID")
    p.add_argument("--weights", default=None, help="timm / open_clip: a local weights file (open_clip: or a tag)")
    p.add_argument("--pool", default=None, choices=("default", "cls", "avg"), help="pooling (extract.pool)")
    p.add_argument("--layer", default=None, help="final, or a block index: 0, 5, -1... (extract.layer)")
    p.add_argument("--init", default=None, choices=("pretrained", "random"),
                   help="random: the same architecture at a seeded random init (extract.init)")
    args = cli.parse(p, argv)
    flags = {k: getattr(args, k) for k in FLAGS if getattr(args, k) is not None}
    own_run = args.backbone is not None and args.backbone.startswith("run:") and args.out is None
    if args.run is not None or own_run:
        if args.run is not None and args.backbone is not None:
            raise UserError("--run DIR is --backbone run:DIR: give one of them")
        if args.config or args.overrides or set(flags) - {"backbone"}:
            raise UserError("--run DIR (or --backbone run:DIR without --out) rewrites the run's own features with "
                            "its config; for other settings give --out NEW_DIR")
        extract_run(args.run or args.backbone[len("run:"):])
        return 0
    # JSON strings are YAML strings: a spec or path with ':' or '#' reaches the config as typed.
    args.overrides = [*args.overrides, *(f"extract.{k}={json.dumps(v)}" for k, v in flags.items() if k != "layer")]
    if "layer" in flags:
        layer = flags["layer"]
        args.overrides.append(f"extract.layer={layer if layer.lstrip('-').isdigit() else json.dumps(layer)}")
    spec = flags.get("backbone", "")
    if spec.startswith("run:") and args.config is None:  # another run's backbone on data: the run's config as base
        run = RunDir.at(spec[len("run:"):])
        if not run.config.is_file():
            raise UserError(f"{run.config} not found: --backbone run:DIR needs a dsbias run dir")
        overrides = [*args.overrides, f"out={json.dumps(args.out)}"]
        extract_backbone(load_config(run.config, overrides))
        return 0
    cfg = cli.load(args)
    if cfg.extract.backbone:
        extract_backbone(cfg)
    else:
        extract_model(cfg)
    return 0

"""``python tools/tiny_backbones.py --out DIR``

Save tiny stand-ins for hub backbones the way users get them (a timm ViT .safetensors; an open_clip model config
+ weights file and a local-dir; a transformers ViT saved with save_pretrained), to try ``--backbone`` offline.
Prints a ``backbones=[...]`` list for ``tools/study.py --study backbones``.
"""

from __future__ import annotations

import json
from pathlib import Path

from dsbias.cli import args as cli
from dsbias.models.spec import parse_spec
from dsbias.models.tiny import save_tiny_backbones


@cli.guarded
def main(argv: list[str]) -> int:
    p = cli.parser("tools/tiny_backbones.py", __doc__, config=False)
    p.add_argument("--out", required=True, help="folder to save them in")
    p.add_argument("--seed", type=int, default=1, help="seed of their (random) weights (not train.seed's 0)")
    a = cli.parse(p, argv)
    entries = save_tiny_backbones(Path(a.out), a.seed)
    for e in entries:
        spec = parse_spec(e["backbone"])
        print(f"python ssl/extract.py --out out/{spec.slug()} data=toy --backbone '{spec}'"
              + (f" --weights {e['weights']}" if "weights" in e else "")
              + (f" 'extract.kwargs={json.dumps(e['kwargs'])}'" if "kwargs" in e else ""))
    print(f"'backbones={json.dumps(entries)}'")
    return 0

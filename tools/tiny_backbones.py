"""Tiny timm / open_clip / transformers backbones saved like the real ones: python tools/tiny_backbones.py --out DIR"""

from dsbias.cli.tiny_backbones import main

if __name__ == "__main__":
    raise SystemExit(main())

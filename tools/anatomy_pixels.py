"""Anatomy table from a pixel probe: python tools/anatomy_pixels.py --out DIR data=toy_color"""

from dsbias.cli.anatomy_pixels import main

if __name__ == "__main__":
    raise SystemExit(main())

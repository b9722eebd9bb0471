"""Shortcut baselines (metadata-only, tiny-image): python tools/baselines.py --run RUN_DIR"""

from dsbias.cli.baselines import main

if __name__ == "__main__":
    raise SystemExit(main())

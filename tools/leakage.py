"""Near-duplicate audit on features: python tools/leakage.py --features RUN_DIR"""

from dsbias.cli.leakage import main

if __name__ == "__main__":
    raise SystemExit(main())

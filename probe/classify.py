"""Dataset classification: accelerate launch probe/classify.py [--config FILE] [--out DIR] [overrides]"""

from dsbias.cli.classify import main

if __name__ == "__main__":
    raise SystemExit(main())

"""Self-supervised pretraining without source labels: accelerate launch ssl/pretrain.py [--out DIR] [overrides]"""

from dsbias.cli.pretrain import main

if __name__ == "__main__":
    raise SystemExit(main())

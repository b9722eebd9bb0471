"""The first run on a CUDA GPU, <= 10 minutes: python tools/gpu_check.py"""

from dsbias.cli.gpu_check import main

if __name__ == "__main__":
    raise SystemExit(main())

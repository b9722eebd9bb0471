"""Loader vs training throughput: python tools/bench_loader.py"""

from dsbias.cli.bench_loader import main

if __name__ == "__main__":
    raise SystemExit(main())

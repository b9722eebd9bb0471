"""Extraction vs a bare model(x) loop: python tools/bench_extract.py"""

from dsbias.cli.bench_extract import main

if __name__ == "__main__":
    raise SystemExit(main())

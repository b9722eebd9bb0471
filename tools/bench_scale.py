"""Scale rehearsal: kNN, linear probe and manifest build at 1M rows / 200k images: python tools/bench_scale.py"""

from dsbias.cli.bench_scale import main

if __name__ == "__main__":
    raise SystemExit(main())

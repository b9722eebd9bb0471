"""Engine vs a bare loop: python tools/bench_engine.py --steps 20"""

from dsbias.cli.bench_engine import main

if __name__ == "__main__":
    raise SystemExit(main())

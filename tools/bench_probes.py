"""Probes vs scikit-learn and the GEMM rate: python tools/bench_probes.py"""

from dsbias.cli.bench_probes import main

if __name__ == "__main__":
    raise SystemExit(main())

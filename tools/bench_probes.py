"""Benchmark the kNN and linear probes against scikit-learn and torch: python tools/bench_probes.py"""

import sys

from dsbias.probes.bench import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

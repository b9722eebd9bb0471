"""Near-duplicate audit on extracted features (faiss, cosine): within and across sources, and train vs val.

    python tools/leakage.py --features out/ [--threshold 0.95] [--k 10] [--top 20]   # -> out/features/leakage.json
"""

from dsbias.anatomy.cli import leakage_main

if __name__ == "__main__":
    leakage_main()

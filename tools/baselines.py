"""Shortcut baselines next to the network: metadata-only and tiny-image classifiers on a run's manifest.

    python tools/baselines.py --run out/                    # the run's data and manifest -> out/baselines.json
    python tools/baselines.py --out out/base data=toy       # any data config (manifest drawn into --out)
    python tools/baselines.py --run out/ --max-train 0      # all train rows (default: 10000 per source)
"""

from dsbias.anatomy.cli import baselines_main

if __name__ == "__main__":
    baselines_main()

"""Run a named study (a grid of ordinary runs) and write report.md, figures and results.csv.

    python tools/study.py --study combos --tiny                 # Table 2 on the toy sources, on a CPU
    python tools/study.py --study all --seeds 3 --out out/ycd data=configs/data/ycd.yaml --launcher "accelerate launch"
"""

from dsbias.study import main

if __name__ == "__main__":
    main()

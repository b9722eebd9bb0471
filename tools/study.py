"""A named study and its report: python tools/study.py --study combos --tiny"""

from dsbias.cli.study import main

if __name__ == "__main__":
    raise SystemExit(main())

"""report.html for a run or study dir: python tools/report.py PATH"""

from dsbias.cli.report import main

if __name__ == "__main__":
    raise SystemExit(main())

"""Calibration benchmark of the verdicts and intervals on null and synthetic data: python tools/calibrate.py"""

from dsbias.cli.calibrate import main

if __name__ == "__main__":
    raise SystemExit(main())

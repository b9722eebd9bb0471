"""Linear probe of cached features (MAE protocol): python probe/linear.py --features out/"""

from dsbias.cli.linear import main

if __name__ == "__main__":
    raise SystemExit(main())

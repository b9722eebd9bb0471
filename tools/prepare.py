"""Sources to webdataset (or parquet) shards the paper's way: python tools/prepare.py data=SOURCES.yaml --out DIR"""

from dsbias.cli.prepare import main

if __name__ == "__main__":
    raise SystemExit(main())

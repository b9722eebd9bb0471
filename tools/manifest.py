"""A reusable manifest: python tools/manifest.py data=SOURCES.yaml --out DIR"""

from dsbias.cli.manifest import main

if __name__ == "__main__":
    raise SystemExit(main())

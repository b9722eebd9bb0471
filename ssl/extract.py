"""Features for the probes: python ssl/extract.py --backbone SPEC --out DIR | --run RUN_DIR | --out DIR [overrides]"""

from dsbias.cli.extract import main

if __name__ == "__main__":
    raise SystemExit(main())

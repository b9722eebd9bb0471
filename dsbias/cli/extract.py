"""``python ssl/extract.py --run RUN_DIR`` or ``python ssl/extract.py --out DIR [--config FILE] [overrides...]``

Write features to disk for the probes: from a finished pretraining or classification run (``--run``), or from
the config's ``model`` (any timm backbone; ``model.weights`` = a local weights file) on the config's data.
"""

from __future__ import annotations

from dsbias.cli import args as cli
from dsbias.pipelines.extract import extract_model, extract_run


@cli.guarded
def main(argv: list[str]) -> int:
    args = cli.parse(cli.parser("ssl/extract.py", __doc__, run=True), argv)
    if args.run is not None:
        cli.load(args)  # refuses --run mixed with a config or overrides
        extract_run(args.run)
    else:
        extract_model(cli.load(args))
    return 0

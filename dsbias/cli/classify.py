"""``accelerate launch probe/classify.py [--config FILE] [--out DIR] [overrides...]``

Dataset classification: train a network to name each image's source; report held-out top-1 with its CI.
With no arguments: a small ConvNeXt on the built-in toy sources (configs/classify/default.yaml), written to
out/classify/. The paper's recipe: --config configs/classify/liu_he.yaml data=YOUR_DATA.yaml
"""

from __future__ import annotations

from dsbias.cli import args as cli
from dsbias.pipelines.classify import classify
from dsbias.report.write import refresh


@cli.guarded
def main(argv: list[str]) -> int:
    args = cli.parse(cli.parser("probe/classify.py", __doc__), argv)
    cfg = cli.load(args, default_config="classify/default")
    classify(cfg)
    refresh(cfg.out)  # once metrics.json exists (a run stopped early by train.stop_after has none yet)
    return 0

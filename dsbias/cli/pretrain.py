"""``accelerate launch ssl/pretrain.py [--config FILE] [--out DIR] [--resume] [overrides...]``

Self-supervised pretraining on the mixed sources, without source labels; then features for the probes.
With no arguments: MAE on the built-in toy sources (configs/pretrain.yaml), written to out/.
"""

from __future__ import annotations

from dsbias.cli import args as cli
from dsbias.engine.checkpoint import latest_checkpoint
from dsbias.errors import UserError
from dsbias.pipelines.pretrain import pretrain
from dsbias.runs import RunDir


@cli.guarded
def main(argv: list[str]) -> int:
    p = cli.parser("ssl/pretrain.py", __doc__)
    p.add_argument("--resume", action="store_true", help="require an existing run dir and continue from its last state")
    args = cli.parse(p, argv)
    cfg = cli.load(args, default_config="pretrain")
    if args.resume and latest_checkpoint(RunDir.at(cfg.out)) is None:
        raise UserError(f"--resume: no checkpoint in {cfg.out}/state (rerunning into a run dir resumes anyway)")
    pretrain(cfg)
    return 0

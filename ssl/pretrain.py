"""Self-supervised pretraining on the mixed sources, without source labels; then features for the probes.

    accelerate launch ssl/pretrain.py [--config FILE] [--out DIR] [--resume] [overrides...]

With no arguments: MAE on the built-in toy sources (configs/pretrain.yaml), written to out/.
"""

from pathlib import Path

from dsbias.config import config_from_cli
from dsbias.train import main

if __name__ == "__main__":
    cfg, args = config_from_cli(
        default_config="pretrain",
        description=__doc__,
        add_arguments=lambda p: p.add_argument(
            "--resume", action="store_true", help="require an existing run dir and continue from its last state"
        ),
    )
    if args.resume and not (Path(cfg.out) / "state" / "latest.json").is_file():
        raise SystemExit(f"--resume: no checkpoint in {cfg.out}/state (rerunning into a run dir resumes anyway)")
    main(cfg)

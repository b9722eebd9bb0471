"""Dataset classification: train a network to name each image's source; report held-out top-1 with its CI.

    accelerate launch probe/classify.py [--config FILE] [--out DIR] [overrides...]

With no arguments: a small ConvNeXt on the built-in toy sources (configs/classify/default.yaml), written to
out/classify/. The paper's recipe: --config configs/classify/liu_he.yaml data=YOUR_DATA.yaml
"""

from dsbias.classify import main
from dsbias.config import config_from_cli

if __name__ == "__main__":
    cfg, _ = config_from_cli(default_config="classify/default", description=__doc__)
    main(cfg)

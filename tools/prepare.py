"""Write sources to webdataset shards the paper's way (shorter side -> 500 if larger, bicubic), recording
native size and format; ``--reencode jpeg`` makes every image one codec (the low-level fingerprint control).

    python tools/prepare.py data=my_sources.yaml --out /data/shards [--reencode jpeg --quality 90] [--size 256]
"""

from dsbias.config import config_from_cli
from dsbias.data.prepare import add_arguments, options_from_args, prepare, summary_text
from dsbias.log import setup_logging


def main() -> None:
    setup_logging(True)
    cfg, args = config_from_cli(description=__doc__, add_arguments=add_arguments)
    result = prepare(cfg, options_from_args(args))
    print(summary_text(result, cfg.out))


if __name__ == "__main__":
    main()

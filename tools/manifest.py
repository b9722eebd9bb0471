"""Scan the sources once and write a reusable manifest: N per source drawn uniformly at random with the seed,
train/val disjoint, exact duplicates handled (data.dedup), native size/format/bytes and a content hash per row.

    python tools/manifest.py data=my_sources.yaml data.per_source={train: 100000, val: 10000} --out /data/mix1
    python ssl/pretrain.py data=my_sources.yaml data.manifest=/data/mix1/manifest.jsonl
"""

from dsbias.config import config_from_cli
from dsbias.data.manifest import make_manifest, summary_text
from dsbias.log import setup_logging


def main() -> None:
    setup_logging(True)
    cfg, _ = config_from_cli(description=__doc__)
    manifest, path = make_manifest(cfg.data, cfg.out)
    print(summary_text(manifest, path))


if __name__ == "__main__":
    main()

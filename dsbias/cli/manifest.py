"""``python tools/manifest.py data=SOURCES.yaml 'data.per_source={train: N, val: M}' --out DIR``

Scan the sources once and write a reusable manifest: N per source drawn uniformly at random with the seed,
train/val disjoint, exact duplicates handled (data.dedup), native size/format/bytes and a content hash per row.
Then: python ssl/pretrain.py data=SOURCES.yaml data.manifest=DIR/manifest.jsonl
"""

from __future__ import annotations

from dsbias.cli import args as cli
from dsbias.data.manifest import make_manifest, summary_text
from dsbias.runs import RunDir, lock_run, released_after


@cli.guarded
def main(argv: list[str]) -> int:
    cfg = cli.load(cli.parse(cli.parser("tools/manifest.py", __doc__), argv))
    out = RunDir.at(cfg.out)
    with released_after(out):
        lock_run(out)  # a run training in --out reads its manifest.jsonl
        manifest, path = make_manifest(cfg.data, cfg.out)
    print(summary_text(manifest, path))
    return 0

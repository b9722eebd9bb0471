"""``python tools/leakage.py --features RUN_OR_FEATURES_DIR [--threshold 0.95] [--k 10] [--top 20]``

Near-duplicate audit on extracted features (faiss, cosine): within and across sources, and train vs val.
Writes ``leakage.json`` into the features dir and prints the counts and the closest pairs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dsbias.audit.leakage import duplicate_report
from dsbias.cli import args as cli
from dsbias.data.manifest import Manifest
from dsbias.features.store import leakage_path, load_features
from dsbias.report.write import refresh
from dsbias.runs import RunDir, write_json


def _manifest_rows(features_root: Path, meta: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The manifest rows of a features dir: ``meta["manifest_path"]`` or ``../manifest.jsonl``; None if absent."""
    for cand in (meta.get("manifest_path"), RunDir.at(features_root.parent).manifest):
        if cand and Path(cand).is_file() and Path(cand).with_suffix(".json").is_file():
            return Manifest.load(cand).rows
    return None


@cli.guarded
def main(argv: list[str]) -> int:
    p = cli.parser("tools/leakage.py", __doc__, config=False)
    p.add_argument("--features", required=True, help="run dir or features dir")
    p.add_argument("--threshold", type=float, default=0.95, help="cosine at or above which a pair is a duplicate")
    p.add_argument("--k", type=int, default=10, help="neighbours searched per image")
    p.add_argument("--top", type=int, default=20, help="closest pairs to list")
    args = cli.parse(p, argv)
    fs = load_features(args.features)
    report = duplicate_report(fs, _manifest_rows(fs.root, fs.meta), threshold=args.threshold, k=args.k,
                              top=args.top)
    out = leakage_path(fs.root)
    write_json(out, report)
    c = report["counts"]
    print(f"== near duplicates at cosine >= {args.threshold} ({report['n']} images, k={args.k}): {out}")
    print(f"   train-val {c['train-val']}   cross-source {c['cross-source']}   within-source {c['within-source']}"
          f"   val images with a train duplicate {len(report['val_with_train_duplicate'])}")
    if report["saturated"]:
        print(f"   {report['saturated']} images had all {args.k} neighbours above the threshold: counts are lower "
              "bounds (raise --k, or the threshold if the features are untrained)")
    for pr in report["top_pairs"][:10]:
        a, b = pr["a"], pr["b"]
        print(f"   {pr['cosine']:.4f} {pr['kind']:<14} {a['split']}/{a['source']}:{a.get('item', a['index'])}  "
              f"{b['split']}/{b['source']}:{b.get('item', b['index'])}")
    refresh(fs.root)
    return 0

"""Command lines of the anatomy tools: ``tools/baselines.py`` and ``tools/leakage.py``."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from dsbias.anatomy.baselines import format_baselines, run_baselines
from dsbias.anatomy.leakage import duplicate_report
from dsbias.config import config_from_cli, dump_yaml, load_config
from dsbias.data.manifest import Manifest, load_or_build_manifest
from dsbias.features import load_features
from dsbias.log import setup_logging
from dsbias.runs import RunDir, write_json, write_text

logger = logging.getLogger(__name__)


def baselines_main(argv: list[str] | None = None) -> dict[str, Any]:
    """``--run DIR`` (a run's config + manifest) or ``[--config FILE] [--out DIR] [overrides]`` (a data config;
    the manifest is drawn into ``--out``). Writes ``baselines.json`` into the run dir and prints the table."""
    argv = sys.argv[1:] if argv is None else argv
    setup_logging(True)

    def flags(p: argparse.ArgumentParser) -> None:
        p.add_argument("--run", default=None, help="run dir with config.yaml and manifest.jsonl")
        p.add_argument("--max-train", type=int, default=10000, help="train rows per source (0: all)")
        p.add_argument("--no-tiny", action="store_true", help="skip the tiny-image baseline (reads every image)")
        p.add_argument("--workers", type=int, default=4, help="threads reading images")

    pre = argparse.ArgumentParser(add_help=False)
    flags(pre)
    known, _ = pre.parse_known_args(argv)
    if known.run is not None:
        run = RunDir.at(known.run)
        if not run.config.is_file() or not run.manifest.is_file():
            sys.exit(f"error: {run.root} needs config.yaml and manifest.jsonl (a dsbias run dir)")
        cfg, args = load_config(run.config), known
        manifest = Manifest.load(run.manifest)
    else:
        cfg, args = config_from_cli(argv, description="Shortcut baselines: metadata-only and tiny-image classifiers",
                                    add_arguments=flags)
        run = RunDir.at(cfg.out)
        manifest = load_or_build_manifest(cfg.data, run.manifest)
        if not run.config.exists():  # so that `--run DIR` works on it later; never overwrite a run's config
            write_text(run.config, dump_yaml(cfg))
    results = run_baselines(manifest, cfg.data, max_train=args.max_train, tiny=not args.no_tiny,
                            seed=cfg.data.seed, workers=args.workers)
    out = run.root / "baselines.json"
    write_json(out, results)
    print(f"== shortcut baselines on {len(manifest.sources)} sources ({', '.join(manifest.sources)}): {out}")
    print(format_baselines(results))
    return results


def _manifest_rows(features_root: Path, meta: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The manifest rows of a features dir: ``meta["manifest_path"]`` or ``../manifest.jsonl``; None if absent."""
    for cand in (meta.get("manifest_path"), features_root.parent / "manifest.jsonl"):
        if cand and Path(cand).is_file() and Path(cand).with_suffix(".json").is_file():
            return Manifest.load(cand).rows
    return None


def leakage_main(argv: list[str] | None = None) -> dict[str, Any]:
    """``--features RUN_OR_FEATURES_DIR [--threshold 0.95] [--k 10] [--top 20]``: writes ``leakage.json``
    into the features dir and prints the counts and the closest pairs."""
    setup_logging(True)
    p = argparse.ArgumentParser(description="Near-duplicate audit on extracted features (faiss, cosine)")
    p.add_argument("--features", required=True, help="run dir or features dir")
    p.add_argument("--threshold", type=float, default=0.95, help="cosine at or above which a pair is a duplicate")
    p.add_argument("--k", type=int, default=10, help="neighbours searched per image")
    p.add_argument("--top", type=int, default=20, help="closest pairs to list")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    fs = load_features(args.features)
    rows = _manifest_rows(fs.root, fs.meta)
    report = duplicate_report(fs, rows, threshold=args.threshold, k=args.k, top=args.top)
    out = fs.root / "leakage.json"
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
    return report


def pixel_probe_main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    """``[--config FILE] [--out DIR] [--transforms a,b,...] [overrides]``: the pixel-probe anatomy table of a
    data config; writes ``DIR/anatomy_pixels.json`` (+ the manifest) and prints a Markdown table."""
    from dsbias.anatomy.pixel_probe import DEFAULT_TRANSFORMS, format_anatomy_table, pixel_probe_table

    setup_logging(True)

    def flags(p: argparse.ArgumentParser) -> None:
        p.add_argument("--transforms", default=",".join(t or "reference" for t in DEFAULT_TRANSFORMS),
                       help="comma-separated data.transform values (reference = none)")
        p.add_argument("--workers", type=int, default=4, help="threads reading images")

    cfg, args = config_from_cli(argv, description="Anatomy table from a linear probe on transformed pixels",
                                add_arguments=flags)
    run = RunDir.at(cfg.out)
    manifest = load_or_build_manifest(cfg.data, run.manifest)
    names = tuple("" if t.strip() == "reference" else t.strip() for t in args.transforms.split(","))
    rows = pixel_probe_table(manifest, cfg.data, names, workers=args.workers)
    write_json(run.root / "anatomy_pixels.json", rows)
    print(f"== pixel-probe anatomy table ({', '.join(manifest.sources)}): {run.root / 'anatomy_pixels.json'}")
    print(format_anatomy_table(rows))
    return rows

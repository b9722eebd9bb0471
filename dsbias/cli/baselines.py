"""``python tools/baselines.py --run RUN_DIR`` or ``python tools/baselines.py --out DIR [overrides...]``

Shortcut baselines next to the network: metadata-only and tiny-image classifiers on a run's manifest (or on a
data config, the manifest drawn into ``--out``). Writes ``baselines.json`` into the run dir.
"""

from __future__ import annotations

from dsbias.audit.baselines import format_baselines, run_baselines
from dsbias.cli import args as cli
from dsbias.data.manifest import Manifest, load_or_build_manifest
from dsbias.errors import UserError
from dsbias.report.write import refresh
from dsbias.runs import RunDir, write_json, write_text
from dsbias.typedconfig import dump_yaml


@cli.guarded
def main(argv: list[str]) -> int:
    p = cli.parser("tools/baselines.py", __doc__, run=True)
    p.add_argument("--max-train", type=int, default=10000, help="train rows per source (0: all)")
    p.add_argument("--no-tiny", action="store_true", help="skip the tiny-image baseline (reads every image)")
    p.add_argument("--workers", type=int, default=4, help="threads reading images")
    args = cli.parse(p, argv)
    cfg = cli.load(args)
    if args.run is not None:
        run = RunDir.at(args.run)
        if not run.manifest.is_file():
            raise UserError(f"{run.manifest} not found: --run needs a dsbias run dir with a manifest")
        manifest = Manifest.load(run.manifest)
    else:
        run = RunDir.at(cfg.out)
        manifest = load_or_build_manifest(cfg.data, run.manifest)
        if not run.config.exists():  # so that `--run DIR` works on it later; never overwrite a run's config
            write_text(run.config, dump_yaml(cfg))
    results = run_baselines(manifest, cfg.data, max_train=args.max_train, tiny=not args.no_tiny,
                            seed=cfg.data.seed, workers=args.workers)
    write_json(run.baselines, results)
    print(f"== shortcut baselines on {len(manifest.sources)} sources ({', '.join(manifest.sources)}): {run.baselines}")
    print(format_baselines(results))
    refresh(run.root)
    return 0

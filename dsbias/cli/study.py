"""``python tools/study.py --study NAME [--tiny] [--only ROWS] [--seeds N] [--out DIR] [--launcher CMD|submitit]
[--slurm KEY=VALUE ...] [--run-launcher CMD] [overrides...]``

Run a named study (a grid of ordinary runs, after Liu & He's tables) and write report.md, figures and
results.csv. ``--tiny`` is the CPU preset (toy sources, small runs). ``--study backbones`` takes
``backbones=[SPEC, {backbone: SPEC, weights: FILE}, ...]`` (or ``backbones=FILE.yaml``). ``--launcher submitit``
submits every run as a SLURM job (job arrays) and waits for them; a rerun submits only the runs still incomplete.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from dsbias.cli import args as cli
from dsbias.config import load_config
from dsbias.errors import UserError
from dsbias.report.write import refresh
from dsbias.runs import RunDir, provenance, write_json
from dsbias.studies.backbones import parse_backbones
from dsbias.studies.catalogue import STUDIES
from dsbias.studies.cluster import LAUNCHER, parse_options
from dsbias.studies.report import write_report
from dsbias.studies.runner import run_study
from dsbias.typedconfig import find_preset, parse_override


@cli.guarded
def main(argv: list[str]) -> int:
    p = cli.parser("tools/study.py", __doc__)
    p.add_argument("--study", required=True, help=f"one of {', '.join([*STUDIES, 'all'])}")
    p.add_argument("--tiny", action="store_true", help="the CPU preset: toy sources, small runs")
    p.add_argument("--seeds", type=int, default=1, help="repeats per cell (data resample + init)")
    p.add_argument("--launcher", default="",
                   help=f"training command prefix, e.g. 'accelerate launch'; '{LAUNCHER}': each run a SLURM job")
    p.add_argument("--slurm", nargs="+", default=[], metavar="KEY=VALUE",
                   help="with --launcher submitit: executor options, e.g. timeout_min=600 nodes=1 gpus_per_node=8 "
                        "slurm_partition=gpu slurm_array_parallelism=16 (cluster=local runs the jobs here)")
    p.add_argument("--run-launcher", default="",
                   help="with --launcher submitit: the training command prefix inside each job, e.g. "
                        "'accelerate launch --multi_gpu --num_processes 8'")
    p.add_argument("--no-baselines", action="store_true", help="skip the metadata / tiny-image baselines")
    p.add_argument("--only", default="", help="comma-separated row labels to run, e.g. reference,canny,hog")
    args = cli.parse(p, argv)
    # `backbones=[...]` is the backbones study's list, not a config key: every other override goes to every run.
    picked = [o for o in args.overrides if o.startswith("backbones=")]
    backbones = parse_backbones(parse_override(picked[-1])["backbones"]) if picked else ()
    base = [o for o in args.overrides if not o.startswith("backbones=")]
    if args.tiny and not any(o.startswith("data=") or o.startswith("data.sources") for o in base):
        base.insert(0, "data=toy4")
    cfg = load_config(args.config or find_preset("classify/default"), base)
    if args.config:
        base = ["--config", args.config, *base]
    out = Path(args.out or f"out/study-{args.study}")
    only = [o.strip() for o in args.only.split(",") if o.strip()] or None
    if (args.slurm or args.run_launcher) and args.launcher != LAUNCHER:
        raise UserError(f"--slurm / --run-launcher apply to --launcher {LAUNCHER} only")
    rows = run_study(args.study, out, cfg, base, seeds=args.seeds, tiny=args.tiny, launcher=args.launcher,
                     baselines=not args.no_baselines, backbones=backbones, only=only,
                     cluster_options=parse_options(args.slurm), run_launcher=args.run_launcher)
    report = write_report(args.study, rows, out, shlex.join(["python", "tools/study.py", *argv]))
    write_json(RunDir.at(out).provenance, provenance())
    print(f"report: {report}\nresults: {out / 'results.csv'}")
    for rdir in sorted((out / "runs").glob("*")):  # each run's page, now with the baselines the study added
        refresh(rdir)
    refresh(out)
    return 0

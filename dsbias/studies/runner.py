"""Running a study: every cell x seed a normal run dir under ``DIR/runs/``, made as a subprocess by the same
scripts a user would call; a run whose results already exist is skipped, so a study interrupted anywhere resumes
where it stopped. :func:`collect` turns the run dirs into result rows for :mod:`dsbias.studies.report`.
"""

from __future__ import annotations

import json
import logging
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dsbias.audit.baselines import run_baselines
from dsbias.config import Config, load_config
from dsbias.data.manifest import Manifest
from dsbias.errors import UserError
from dsbias.features.store import result_path
from dsbias.runs import RunDir, read_json, write_json
from dsbias.studies import cluster
from dsbias.studies.catalogue import TINY_CLASSIFY, TINY_EXTRACT, TINY_SSL, Cell, StudyContext, build_cells

logger = logging.getLogger(__name__)
REPO = Path(__file__).resolve().parent.parent.parent
# The probes every features run gets (``probe/<name>.py --features RUN`` -> ``probe_<name>.json``).
FEATURE_PROBES = ("linear", "knn", "cluster")


def run_dir(out: Path, cell: Cell, seed: int) -> Path:
    return out / "runs" / f"{cell.key}-s{seed}"


def is_complete(cell: Cell, rdir: Path) -> bool:
    """A classifier run is complete with its metrics.json; a features run (pretraining or frozen backbone) with
    every probe's file."""
    run = RunDir.at(rdir)
    if cell.kind == "classify":
        return run.metrics.is_file()
    return all(result_path(run.features, p).is_file() for p in FEATURE_PROBES)


def _order(base: list[str], tiny: list[str]) -> list[str]:
    """``--config`` and preset selections (``data=toy4``) first, then the tiny preset, then dotted overrides:
    a later ``group=name`` would reset the tiny sizes, and the user's own ``a.b=value`` must win over them."""
    groups = [o for o in base if "=" not in o or "." not in o.split("=", 1)[0]]
    dotted = [o for o in base if "=" in o and "." in o.split("=", 1)[0]]
    return [*groups, *tiny, *dotted]


def commands(cell: Cell, rdir: Path, seed: int, base: list[str], launcher: list[str], tiny: bool) -> list[list[str]]:
    """The CLI commands that produce one cell's run dir (what a user would type)."""
    seeds = [f"data.seed={seed}", f"train.seed={seed}"]
    if cell.kind == "classify":
        tiny_over = list(TINY_CLASSIFY) if tiny else []
        return [[*launcher, str(REPO / "probe" / "classify.py"), "--out", str(rdir),
                 *_order([*base, *cell.overrides], tiny_over), *seeds]]
    script, tiny_over = ("extract.py", TINY_EXTRACT) if cell.kind == "extract" else ("pretrain.py", TINY_SSL)
    probes = [[sys.executable, str(REPO / "probe" / f"{p}.py"), "--features", str(rdir)] for p in FEATURE_PROBES]
    return [[*launcher, str(REPO / "ssl" / script), "--out", str(rdir),
             *_order([*base, *cell.overrides], list(tiny_over) if tiny else []), *seeds], *probes]


def execute(cmd: list[str], logf: Any) -> int:
    """Run one command from the repo root, output to the run's study.log; returns the exit code."""
    return subprocess.run(cmd, stdout=logf, stderr=subprocess.STDOUT, cwd=REPO).returncode


def run_study(
    name: str, out: Path, cfg: Config, base: list[str], seeds: int = 1, tiny: bool = False,
    launcher: str = "", echo: Callable[[str], None] = print, baselines: bool = True,
    backbones: tuple[dict[str, Any], ...] = (), only: list[str] | None = None,
    cluster_options: dict[str, Any] | None = None, run_launcher: str = "",
) -> list[dict[str, Any]]:
    """Run (or resume) every cell x seed of a study, then collect the result rows.

    Args:
        name: Study name (or ``all``).
        out: Study directory.
        cfg: The resolved base config (its data sources define the study's sources).
        base: Overrides passed to every run (the user's ``--config``/overrides, as given).
        seeds: Repeats per cell with seeds 0..N-1 (data resample + init).
        tiny: Use the tiny CPU preset.
        launcher: Command prefix for training runs (default: this Python; e.g. ``accelerate launch``), or
            ``submitit``: every run a cluster job (:mod:`dsbias.studies.cluster`).
        echo: Where the live progress lines go.
        baselines: Also score the shortcut baselines (metadata-only, tiny image) on every run's data.
        backbones: The frozen backbones of the ``backbones`` study.
        only: Run (and report) only the rows with these labels (``reference``, ``canny``...).
        cluster_options: With ``launcher="submitit"``: the executor's options (:func:`cluster.parse_options`).
        run_launcher: With ``launcher="submitit"``: the training command prefix inside each job.
    """
    cells = build_cells(name, StudyContext(cfg.data.sources, tiny, backbones), only)
    on_cluster = launcher == cluster.LAUNCHER
    prefix = run_launcher if on_cluster else launcher
    launch = shlex.split(prefix) if prefix else [sys.executable]
    jobs = [(c, s) for c in cells for s in range(seeds)]
    todo = [(c, s) for c, s in jobs if not is_complete(c, run_dir(out, c, s))]
    echo(f"study {name}: {len(jobs)} runs ({len(jobs) - len(todo)} already complete) -> {out}")
    t0, done_times = time.perf_counter(), []
    if on_cluster and todo:
        submit_to_cluster(todo, out, base, launch, tiny, cluster_options or {}, echo)
        todo = []
    for i, (cell, seed) in enumerate(todo, 1):
        rdir = run_dir(out, cell, seed)
        rdir.mkdir(parents=True, exist_ok=True)
        t = time.perf_counter()
        eta = (sum(done_times) / len(done_times) * (len(todo) - i + 1)) if done_times else None
        echo(f"[{i}/{len(todo)}] {cell.key} seed {seed} ..." + (f" (ETA {eta / 60:.1f} min)" if eta else ""))
        with open(RunDir.at(rdir).study_log, "a") as logf:
            for cmd in commands(cell, rdir, seed, base, launch, tiny):
                logf.write("$ " + shlex.join(cmd) + "\n")
                logf.flush()
                code = execute(cmd, logf)
                if code != 0:
                    raise RuntimeError(f"{cell.key} seed {seed}: `{shlex.join(cmd[:4])} ...` failed "
                                       f"(exit {code}); see {RunDir.at(rdir).study_log}")
        done_times.append(time.perf_counter() - t)
        echo(f"      done in {done_times[-1]:.0f}s")
    if baselines:
        run_baselines_for(cells, out, seeds, echo)
    rows = collect(name, cells, out, seeds)
    echo(f"study {name}: {len(todo)} runs in {(time.perf_counter() - t0) / 60:.1f} min, {len(rows)} result rows")
    return rows


def submit_to_cluster(todo: list[tuple[Cell, int]], out: Path, base: list[str], launch: list[str], tiny: bool,
                      options: dict[str, Any], echo: Callable[[str], None]) -> None:
    """Every incomplete run as a cluster job; returns when all have ended.

    Raises:
        UserError: Some jobs failed (named, with their logs); a rerun submits only the incomplete runs.
    """
    specs = []
    for cell, seed in todo:
        rdir = run_dir(out, cell, seed)
        rdir.mkdir(parents=True, exist_ok=True)
        specs.append((rdir.name, commands(cell, rdir, seed, base, launch, tiny), RunDir.at(rdir).study_log))
    failed = cluster.run_jobs(specs, out, options, REPO, echo)
    if failed:
        raise UserError(f"{len(failed)} of {len(specs)} cluster job(s) failed: {', '.join(failed)} (logs: "
                        f"{out / 'runs'}/<run>/study.log, {out / 'slurm'}); rerun the same command to submit "
                        "only the incomplete runs")


def _row(cell: Cell, rdir: Path, seed: int, probe: str, res: dict[str, Any], cfg: Config) -> dict[str, Any]:
    lo, hi = res["ci95"]
    primary = res.get("primary", "top1")
    value, (vlo, vhi) = (res["balanced_top1"], res["balanced_ci95"]) if primary == "balanced_top1" else (res["top1"],
                                                                                                         (lo, hi))
    gain_lo, gain_hi = res.get("gain_ci95") or (None, None)
    return {
        "study": cell.study, "run": rdir.name, "cell": cell.key, "label": cell.labels.get("label", cell.key),
        "sources": cell.labels.get("sources", "+".join(res["sources"])), "method": cell.labels.get("method"),
        "probe": probe, "transform": cell.labels.get("transform", "none"), "seed": seed,
        "top1": res["top1"], "ci_low": lo, "ci_high": hi, "primary": primary, "value": value, "value_ci_low": vlo,
        "value_ci_high": vhi, "balanced_top1": res.get("balanced_top1"), "p_value": res.get("p_value"),
        "design_effect": res.get("design_effect", 1.0), "n_groups": res.get("n_groups"), "chance": res["chance"],
        "majority": res.get("majority"), "train_top1": res.get("train_top1"), "n_val": res.get("n_val", res.get("n")),
        "nmi": (res.get("nmi") or {}).get("value"), "init_top1": res.get("init_top1"),
        "gain_over_init": res.get("gain_over_init"), "gain_ci_low": gain_lo, "gain_ci_high": gain_hi,
        "underfit": (res.get("underfit") or {}).get("likely"),
        "x": cell.labels.get("x"), "n_train": cfg.data.per_source.train,
        "arch": cell.labels.get("arch", cfg.model.name), "backbone": cell.labels.get("backbone"),
        "init": cell.labels.get("init"),
        "params": res.get("params"),
        "per_source": json.dumps(res.get("per_source")), "confusion": json.dumps(res.get("confusion")),
        "source_names": json.dumps(res["sources"]), "loss_decreased": res.get("loss_decreased"),
        "best_val_top1": res.get("best_val_top1"), "best_val_step": res.get("best_val_step"),
    }


def run_baselines_for(cells: list[Cell], out: Path, seeds: int, echo: Callable[[str], None]) -> None:
    """Metadata-only and tiny-image baselines on each run's manifest (``baselines.json``, skipped if present)."""
    for cell, seed in ((c, s) for c in cells for s in range(seeds)):
        run = RunDir.at(run_dir(out, cell, seed))
        if run.baselines.is_file() or not run.manifest.is_file():
            continue
        cfg = load_config(run.config)
        # Baselines read the images as stored: the transformation under study is not applied to them.
        res = run_baselines(Manifest.load(run.manifest), cfg.data, max_train=10_000, seed=seed)
        write_json(run.baselines, res)
        echo(f"      baselines {run.root.name}: metadata {100 * res['metadata']['top1']:.1f}%, "
             f"tiny image {100 * res['tiny']['top1']:.1f}%")


def collect(name: str, cells: list[Cell], out: Path, seeds: int) -> list[dict[str, Any]]:
    """One row per (run, probe) from the run dirs' ``metrics.json`` / ``probe_*.json``."""
    rows = []
    baselines_seen: set[str] = set()  # baselines read the stored images: one row set per distinct manifest
    for cell, seed in ((c, s) for c in cells for s in range(seeds)):
        rdir = run_dir(out, cell, seed)
        if not is_complete(cell, rdir):
            continue
        run = RunDir.at(rdir)
        cfg = load_config(run.config)
        if cell.kind == "classify":
            rows.append(_row(cell, rdir, seed, "end-to-end", read_json(run.metrics), cfg))
        else:
            for probe in FEATURE_PROBES:
                res = read_json(result_path(run.features, probe))
                rows.append(_row(cell, rdir, seed, probe, res, cfg))
                if "init" in res:  # the random-init control: the same probe on the backbone before training
                    rows.append(_row(cell, rdir, seed, f"{probe} (init)", res["init"], cfg))
        sha = read_json(run.manifest_summary).get("sha256") if run.manifest_summary.is_file() else None
        if run.baselines.is_file() and (sha is None or sha not in baselines_seen):
            baselines_seen.add(sha or rdir.name)
            b = read_json(run.baselines)
            for probe, key in (("metadata baseline", "metadata"), ("tiny-image baseline", "tiny")):
                if key in b:
                    rows.append(_row(cell, rdir, seed, probe, {**b[key], "n_val": b[key].get("n")}, cfg))
    return rows


"""Studies: grids of ordinary runs that reproduce Liu & He's tables by name, resumable, with seeds.

A study is a list of :class:`Cell` s (one run each: a dataset classifier, or a pretraining run with its
probes) built from the user's data config. Every cell x seed is a normal run dir under ``DIR/runs/``, run as
a subprocess with the same scripts a user would call; a run whose results already exist is skipped, so a
study interrupted anywhere resumes where it stopped. :func:`collect` turns the run dirs into result rows
and :mod:`dsbias.report` writes ``report.md``, the plots and ``results.csv``.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dsbias.config import Config, SourceConfig, load_config

logger = logging.getLogger(__name__)
REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Cell:
    """One run of a study.

    Attributes:
        study: Study name.
        key: Unique, file-system-safe run name.
        kind: ``classify`` (end-to-end source classifier) or ``ssl`` (pretraining + linear and kNN probes).
        overrides: Config overrides for this run (on top of the study's base).
        labels: Table/plot fields: ``label`` (row name), ``sources``, ``method``, ``transform``, ``x`` (plot x)...
    """

    study: str
    key: str
    kind: str
    overrides: tuple[str, ...]
    labels: dict[str, Any] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class StudyContext:
    """What study builders see: the user's sources and whether the tiny (CPU) preset is on."""

    sources: list[SourceConfig]
    tiny: bool


# Tiny presets: small enough that every study runs on a 2-core CPU in minutes, on the toy sources.
TINY_CLASSIFY = ("data.per_source={train: 120, val: 60}", "data.image_size=32", "train.samples=4800",
                 "train.batch_size=48", "train.log_every=10")
TINY_SSL = ("data.per_source={train: 120, val: 60}", "data.image_size=32", "train.samples=2400",
            "train.batch_size=48", "train.log_every=10", "model.kwargs={patch_size: 8}")


def _sources_override(sources: list[SourceConfig]) -> str:
    flow = yaml.safe_dump([dataclasses.asdict(s) for s in sources], default_flow_style=True, width=10_000)
    return "data.sources=" + flow.strip()


def _cls(study: str, key: str, *over: str, **labels: Any) -> Cell:
    return Cell(study, f"{study}-{key}", "classify", tuple(over),
                {"method": "supervised", "probe": "end-to-end", "transform": "none", "label": key, **labels})


# ----------------------------------------------------------------------------------------------------------
# The studies
# ----------------------------------------------------------------------------------------------------------


def combos(ctx: StudyContext) -> list[Cell]:
    """Table 2: every 3-way combination of the sources, then every larger prefix (4, 5, 6-way rows)."""
    src = ctx.sources
    if len(src) < 3:
        raise ValueError(f"study combos: needs >= 3 sources, the data config has {len(src)}")
    subsets = [list(c) for c in itertools.combinations(src, 3)] if len(src) > 3 else [src]
    subsets += [src[:k] for k in range(4, len(src) + 1)]
    return [_cls("combos", "+".join(s.name for s in sub), _sources_override(sub),
                 sources="+".join(s.name for s in sub), k=len(sub)) for sub in subsets]


def archs(ctx: StudyContext) -> list[Cell]:
    """Table 3: architectures (presets in configs/model/)."""
    names = (["convnext_atto_1_10", "resnet18", "vit_tiny", "alexnet"] if ctx.tiny
             else ["alexnet", "vgg16", "resnet50", "vit_small", "convnext_tiny"])
    # AlexNet's stem needs >= 63 px: the tiny preset's 32 px would not fit it.
    size = {"alexnet": ["data.image_size=64"]} if ctx.tiny else {}
    return [_cls("archs", n, f"model={n}", *size.get(n, []), arch=n) for n in names]


def model_size(ctx: StudyContext) -> list[Cell]:
    """Fig 2: the ConvNeXt ladder from ~7K parameters (x = parameter count, filled in from the run)."""
    names = ["convnext_atto_1_10_uniform", "convnext_atto_1_10", "convnext_atto_1_20", "convnext_atto_2_20"]
    if not ctx.tiny:
        names += ["convnext_atto", "convnext_femto", "convnext_pico", "convnext_nano", "convnext_tiny"]
    return [_cls("model_size", n, f"model={n}", arch=n) for n in names]


def data_size(ctx: StudyContext) -> list[Cell]:
    """Fig 3 / Table 4 rows: train images per source (x), val fixed."""
    sizes = [30, 120, 480] if ctx.tiny else [1_000, 10_000, 100_000, 1_000_000]
    val = 60 if ctx.tiny else 10_000
    return [_cls("data_size", f"n{n}", f"data.per_source={{train: {n}, val: {val}}}", x=n) for n in sizes]


def augment(ctx: StudyContext) -> list[Cell]:
    """Table 4: augmentation levels (presets in configs/augment/)."""
    return [_cls("augment", a, f"method.supervised.augment={a}", augment=a)
            for a in ["none", "crop", "crop_randaug", "full"]]


def corrupt(ctx: StudyContext) -> list[Cell]:
    """Table 5: fixed corruptions of train and val (presets in configs/corrupt/)."""
    names = ["none", "color_jitter_1.0", "color_jitter_2.0", "noise_0.2", "noise_0.3", "blur_3", "blur_5",
             "downsample_64", "downsample_32"]
    if ctx.tiny:
        names = ["none", "color_jitter_1.0", "noise_0.2", "blur_3"]
    return [_cls("corrupt", n, f"method.supervised.corrupt={n}", corruption=n) for n in names]


def pseudo(ctx: StudyContext) -> list[Cell]:
    """Table 6: K disjoint random splits of the first source, with and without augmentation."""
    sizes = [10, 40] if ctx.tiny else [100, 1_000, 10_000, 100_000]
    first = ctx.sources[0]
    cells = []
    for n, aug in itertools.product(sizes, (False, True)):
        # A large val set: at chance the CI must be narrow enough to tell "chance" from "memorised and leaked".
        val = 150 if ctx.tiny else 10_000
        over = [_sources_override([first]), "data.pseudo=3", f"data.per_source={{train: {n}, val: {val}}}",
                f"method.supervised.augment={'full' if aug else 'none'}"]
        if ctx.tiny:  # memorising needs passes over few images: keep the samples-seen budget of the preset
            over.append(f"train.batch_size={min(3 * n, 48)}")
        cells.append(_cls("pseudo", f"n{n}-{'aug' if aug else 'noaug'}", *over, x=n, augment=aug,
                          sources=f"{first.name} x3 (pseudo)"))
    return cells


def ssl(ctx: StudyContext) -> list[Cell]:
    """Table 7: MAE and MoCo v3 features probed (linear, kNN) next to the end-to-end classifier."""
    cells = [Cell("ssl", f"ssl-{m}", "ssl", (f"method={m}", "model=vit_tiny"), {"method": m, "transform": "none",
                                                                                   "label": m})
             for m in ("mae", "mocov3")]
    cells.append(_cls("ssl", "supervised", "model=vit_tiny", arch="vit_tiny"))
    return cells


def anatomy(ctx: StudyContext) -> list[Cell]:
    """Zeng, Yin & Liu: the classifier retrained on images that keep one kind of information (data.transform)."""
    names = ["", "grayscale", "mean_rgb", "lpf", "hpf", "pixel_shuffle_random", "pixel_shuffle_fixed",
             "patch_shuffle_random", "patch_shuffle_fixed", "canny", "hog", "jpeg", "downup", "canonical"]
    # Tiny: toy sources that differ ONLY by a colour cast, so what must fall to chance is known in advance.
    data = ["data=toy_color"] if ctx.tiny else []
    if ctx.tiny:
        names = ["", "grayscale", "mean_rgb", "lpf", "hpf", "patch_shuffle_fixed", "canny", "canonical"]
    return [_cls("anatomy", n or "reference", *data, f"data.transform={n}" if n else "data.transform=''",
                 transform=n or "reference") for n in names]


STUDIES: dict[str, Callable[[StudyContext], list[Cell]]] = {
    "combos": combos, "archs": archs, "model_size": model_size, "data_size": data_size, "augment": augment,
    "corrupt": corrupt, "pseudo": pseudo, "ssl": ssl, "anatomy": anatomy,
}


def build_cells(name: str, ctx: StudyContext) -> list[Cell]:
    """The cells of study ``name`` (``all`` = every study)."""
    if name == "all":
        return [c for n in STUDIES for c in STUDIES[n](ctx)]
    if name not in STUDIES:
        raise ValueError(f"--study {name}: unknown; known: {', '.join([*STUDIES, 'all'])}")
    return STUDIES[name](ctx)


# ----------------------------------------------------------------------------------------------------------
# Running
# ----------------------------------------------------------------------------------------------------------


def run_dir(out: Path, cell: Cell, seed: int) -> Path:
    return out / "runs" / f"{cell.key}-s{seed}"


def is_complete(cell: Cell, rdir: Path) -> bool:
    """A classifier run is complete with its metrics.json; a pretraining run with both probe files."""
    if cell.kind == "classify":
        return (rdir / "metrics.json").is_file()
    return all((rdir / "features" / f"probe_{p}.json").is_file() for p in ("linear", "knn"))


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
    tiny_over = list(TINY_SSL) if tiny else []
    py = [sys.executable]
    return [[*launcher, str(REPO / "ssl" / "pretrain.py"), "--out", str(rdir),
             *_order([*base, *cell.overrides], tiny_over), *seeds],
            [*py, str(REPO / "probe" / "linear.py"), "--features", str(rdir)],
            [*py, str(REPO / "probe" / "knn.py"), "--features", str(rdir)]]


def execute(cmd: list[str], logf: Any) -> int:
    """Run one command from the repo root, output to the run's study.log; returns the exit code."""
    return subprocess.run(cmd, stdout=logf, stderr=subprocess.STDOUT, cwd=REPO).returncode


def run_study(
    name: str, out: Path, cfg: Config, base: list[str], seeds: int = 1, tiny: bool = False,
    launcher: str = "", echo: Callable[[str], None] = print, baselines: bool = True,
) -> list[dict[str, Any]]:
    """Run (or resume) every cell x seed of a study, then collect the result rows.

    Args:
        name: Study name (or ``all``).
        out: Study directory.
        cfg: The resolved base config (its data sources define the study's sources).
        base: Overrides passed to every run (the user's ``--config``/overrides, as given).
        seeds: Repeats per cell with seeds 0..N-1 (data resample + init).
        tiny: Use the tiny CPU preset.
        launcher: Command prefix for training runs (default: this Python; e.g. ``accelerate launch``).
        echo: Where the live progress lines go.
        baselines: Also score the shortcut baselines (metadata-only, tiny image) on every run's data.
    """
    cells = build_cells(name, StudyContext(cfg.data.sources, tiny))
    launch = shlex.split(launcher) if launcher else [sys.executable]
    jobs = [(c, s) for c in cells for s in range(seeds)]
    todo = [(c, s) for c, s in jobs if not is_complete(c, run_dir(out, c, s))]
    echo(f"study {name}: {len(jobs)} runs ({len(jobs) - len(todo)} already complete) -> {out}")
    t0, done_times = time.perf_counter(), []
    for i, (cell, seed) in enumerate(todo, 1):
        rdir = run_dir(out, cell, seed)
        rdir.mkdir(parents=True, exist_ok=True)
        t = time.perf_counter()
        eta = (sum(done_times) / len(done_times) * (len(todo) - i + 1)) if done_times else None
        echo(f"[{i}/{len(todo)}] {cell.key} seed {seed} ..." + (f" (ETA {eta / 60:.1f} min)" if eta else ""))
        with open(rdir / "study.log", "a") as logf:
            for cmd in commands(cell, rdir, seed, base, launch, tiny):
                logf.write("$ " + shlex.join(cmd) + "\n")
                logf.flush()
                code = execute(cmd, logf)
                if code != 0:
                    raise RuntimeError(f"{cell.key} seed {seed}: `{shlex.join(cmd[:4])} ...` failed "
                                       f"(exit {code}); see {rdir / 'study.log'}")
        done_times.append(time.perf_counter() - t)
        echo(f"      done in {done_times[-1]:.0f}s")
    if baselines:
        run_baselines_for(cells, out, seeds, echo)
    rows = collect(name, cells, out, seeds)
    echo(f"study {name}: {len(todo)} runs in {(time.perf_counter() - t0) / 60:.1f} min, {len(rows)} result rows")
    return rows


# ----------------------------------------------------------------------------------------------------------
# Collecting
# ----------------------------------------------------------------------------------------------------------


def _row(cell: Cell, rdir: Path, seed: int, probe: str, res: dict[str, Any], cfg: Config) -> dict[str, Any]:
    lo, hi = res["ci95"]
    return {
        "study": cell.study, "run": rdir.name, "cell": cell.key, "label": cell.labels.get("label", cell.key),
        "sources": cell.labels.get("sources", "+".join(res["sources"])), "method": cell.labels.get("method"),
        "probe": probe, "transform": cell.labels.get("transform", "none"), "seed": seed,
        "top1": res["top1"], "ci_low": lo, "ci_high": hi, "chance": res["chance"],
        "majority": res.get("majority"), "train_top1": res.get("train_top1"), "n_val": res.get("n_val", res.get("n")),
        "x": cell.labels.get("x"), "n_train": cfg.data.per_source.train, "arch": cfg.model.name,
        "params": res.get("params"),
        "per_source": json.dumps(res.get("per_source")), "confusion": json.dumps(res.get("confusion")),
        "source_names": json.dumps(res["sources"]), "loss_decreased": res.get("loss_decreased"),
    }


def run_baselines_for(cells: list[Cell], out: Path, seeds: int, echo: Callable[[str], None]) -> None:
    """Metadata-only and tiny-image baselines on each run's manifest (``baselines.json``, skipped if present)."""
    from dsbias.anatomy.baselines import run_baselines
    from dsbias.data.manifest import Manifest
    from dsbias.runs import write_json

    for cell, seed in ((c, s) for c in cells for s in range(seeds)):
        rdir = run_dir(out, cell, seed)
        if (rdir / "baselines.json").is_file() or not (rdir / "manifest.jsonl").is_file():
            continue
        cfg = load_config(rdir / "config.yaml")
        # Baselines read the images as stored: the transformation under study is not applied to them.
        res = run_baselines(Manifest.load(rdir / "manifest.jsonl"), cfg.data, max_train=10_000, seed=seed)
        write_json(rdir / "baselines.json", res)
        echo(f"      baselines {rdir.name}: metadata {100 * res['metadata']['top1']:.1f}%, "
             f"tiny image {100 * res['tiny']['top1']:.1f}%")


def collect(name: str, cells: list[Cell], out: Path, seeds: int) -> list[dict[str, Any]]:
    """One row per (run, probe) from the run dirs' ``metrics.json`` / ``probe_*.json``."""
    rows = []
    baselines_seen: set[str] = set()  # baselines read the stored images: one row set per distinct manifest
    for cell, seed in ((c, s) for c in cells for s in range(seeds)):
        rdir = run_dir(out, cell, seed)
        if not is_complete(cell, rdir):
            continue
        cfg = load_config(rdir / "config.yaml")
        if cell.kind == "classify":
            rows.append(_row(cell, rdir, seed, "end-to-end", json.loads((rdir / "metrics.json").read_text()), cfg))
        else:
            for probe in ("linear", "knn"):
                res = json.loads((rdir / "features" / f"probe_{probe}.json").read_text())
                rows.append(_row(cell, rdir, seed, probe, res, cfg))
        summary = rdir / "manifest.json"
        sha = json.loads(summary.read_text()).get("sha256") if summary.is_file() else None
        if (rdir / "baselines.json").is_file() and (sha is None or sha not in baselines_seen):
            baselines_seen.add(sha or rdir.name)
            b = json.loads((rdir / "baselines.json").read_text())
            for probe, key in (("metadata baseline", "metadata"), ("tiny-image baseline", "tiny")):
                if key in b:
                    rows.append(_row(cell, rdir, seed, probe, {**b[key], "n_val": b[key].get("n")}, cfg))
    return rows


def main(argv: list[str] | None = None) -> Path:
    """``tools/study.py``: run a named study and write its report."""
    import argparse

    from dsbias.config import find_preset
    from dsbias.log import setup_logging
    from dsbias.report import write_report

    parser = argparse.ArgumentParser(description="Run a study (a grid of runs) and write report.md + results.csv")
    parser.add_argument("--study", required=True, help=f"one of {', '.join([*STUDIES, 'all'])}")
    parser.add_argument("--tiny", action="store_true", help="the CPU preset: toy sources, small runs")
    parser.add_argument("--seeds", type=int, default=1, help="repeats per cell (data resample + init)")
    parser.add_argument("--out", default=None, help="study directory (default: out/study-<name>)")
    parser.add_argument("--config", default=None, help="base config file passed to every run")
    parser.add_argument("--launcher", default="", help="training command prefix, e.g. 'accelerate launch'")
    parser.add_argument("--no-baselines", action="store_true", help="skip the metadata / tiny-image baselines")
    parser.add_argument("overrides", nargs="*", help="key=value or group=name, passed to every run")
    args = parser.parse_args(argv)
    setup_logging()
    base = list(args.overrides)
    if args.tiny and not any(o.startswith("data=") or o.startswith("data.sources") for o in base):
        base.insert(0, "data=toy4")
    if args.config:
        base = ["--config", args.config, *base]
    cfg = load_config(args.config or find_preset("classify/default"), [o for o in base if "=" in o])
    out = Path(args.out or f"out/study-{args.study}")
    rows = run_study(args.study, out, cfg, base, seeds=args.seeds, tiny=args.tiny, launcher=args.launcher,
                     baselines=not args.no_baselines)
    command = shlex.join(["python", "tools/study.py", *(argv if argv is not None else sys.argv[1:])])
    report = write_report(args.study, rows, out, command)
    print(f"report: {report}\nresults: {out / 'results.csv'}")
    return report

"""The study catalogue: each study is one :class:`Study` object with its runs, its paper values and its own
part of the report. Adding a study is one entry in :data:`STUDIES`.

A study is a list of :class:`Cell` s (one run each: a dataset classifier, or a pretraining run with its
probes) built from the user's data config; :mod:`dsbias.studies.runner` runs them and
:mod:`dsbias.studies.report` writes the report.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dsbias.data.config import SourceConfig
from dsbias.errors import UserError
from dsbias.studies import backbones, paper
from dsbias.studies.figures import plot_curve

Row = dict[str, Any]


@dataclass(frozen=True)
class Cell:
    """One run of a study.

    Attributes:
        study: Study name.
        key: Unique, file-system-safe run name.
        kind: ``classify`` (end-to-end source classifier), ``ssl`` (pretraining + the feature probes) or ``extract``
            (a frozen backbone's features + the feature probes).
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
    """What study builders see: the user's sources, whether the tiny (CPU) preset is on, and the frozen backbones
    to compare (``backbones=[...]``, :func:`dsbias.studies.backbones.parse_backbones`)."""

    sources: list[SourceConfig]
    tiny: bool
    backbones: tuple[dict[str, Any], ...] = ()


TINY_CLASSIFY = ("data.per_source={train: 120, val: 60}", "data.image_size=32", "train.samples=4800",
                 "train.batch_size=48", "train.log_every=10")


TINY_SSL = ("data.per_source={train: 120, val: 60}", "data.image_size=32", "train.samples=2400",
            "train.batch_size=48", "train.log_every=10", "model.kwargs={patch_size: 8}")


TINY_EXTRACT = ("data.per_source={train: 120, val: 60}", "data.image_size=32", "extract.batch_size=32")


def _sources_override(sources: list[SourceConfig]) -> str:
    flow = yaml.safe_dump([dataclasses.asdict(s) for s in sources], default_flow_style=True, width=10_000)
    return "data.sources=" + flow.strip()


def _cls(study: str, key: str, *over: str, **labels: Any) -> Cell:
    return Cell(study, f"{study}-{key}", "classify", tuple(over),
                {"method": "supervised", "probe": "end-to-end", "transform": "none", "label": key, **labels})


def combos_cells(ctx: StudyContext) -> list[Cell]:
    """Table 2: every 3-way combination of the sources, then every larger prefix (4, 5, 6-way rows)."""
    src = ctx.sources
    if len(src) < 3:
        raise UserError(f"study combos: needs >= 3 sources, the data config has {len(src)}")
    subsets = [list(c) for c in itertools.combinations(src, 3)] if len(src) > 3 else [src]
    subsets += [src[:k] for k in range(4, len(src) + 1)]
    return [_cls("combos", "+".join(s.name for s in sub), _sources_override(sub),
                 sources="+".join(s.name for s in sub), k=len(sub)) for sub in subsets]


def archs_cells(ctx: StudyContext) -> list[Cell]:
    """Table 3: architectures (presets in configs/model/)."""
    names = (["convnext_atto_1_10", "resnet18", "vit_tiny", "alexnet"] if ctx.tiny
             else ["alexnet", "vgg16", "resnet50", "vit_small", "convnext_tiny"])
    # AlexNet's stem needs >= 63 px: the tiny preset's 32 px would not fit it.
    size = {"alexnet": ["data.image_size=64"]} if ctx.tiny else {}
    return [_cls("archs", n, f"model={n}", *size.get(n, []), arch=n) for n in names]


def model_size_cells(ctx: StudyContext) -> list[Cell]:
    """Fig 2: the ConvNeXt ladder from ~7K parameters (x = parameter count, filled in from the run)."""
    names = ["convnext_atto_1_10_uniform", "convnext_atto_1_10", "convnext_atto_1_20", "convnext_atto_2_20"]
    if not ctx.tiny:
        names += ["convnext_atto", "convnext_femto", "convnext_pico", "convnext_nano", "convnext_tiny"]
    return [_cls("model_size", n, f"model={n}", arch=n) for n in names]


def data_size_cells(ctx: StudyContext) -> list[Cell]:
    """Fig 3 / Table 4 rows: train images per source (x), val fixed."""
    sizes = [30, 120, 480] if ctx.tiny else [1_000, 10_000, 100_000, 1_000_000]
    val = 60 if ctx.tiny else 10_000
    return [_cls("data_size", f"n{n}", f"data.per_source={{train: {n}, val: {val}}}", x=n) for n in sizes]


def augment_cells(ctx: StudyContext) -> list[Cell]:
    """Table 4: augmentation levels (presets in configs/augment/)."""
    return [_cls("augment", a, f"method.supervised.augment={a}", augment=a)
            for a in ["none", "crop", "crop_randaug", "full"]]


def corrupt_cells(ctx: StudyContext) -> list[Cell]:
    """Table 5: fixed corruptions of train and val (presets in configs/corrupt/)."""
    names = ["none", "color_jitter_1.0", "color_jitter_2.0", "noise_0.2", "noise_0.3", "blur_3", "blur_5",
             "downsample_64", "downsample_32"]
    if ctx.tiny:
        names = ["none", "color_jitter_1.0", "noise_0.2", "blur_3"]
    return [_cls("corrupt", n, f"method.supervised.corrupt={n}", corruption=n) for n in names]


def pseudo_cells(ctx: StudyContext) -> list[Cell]:
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


def ssl_cells(ctx: StudyContext) -> list[Cell]:
    """Table 7: MAE and MoCo v3 features probed (linear, kNN) next to the end-to-end classifier."""
    cells = [Cell("ssl", f"ssl-{m}", "ssl", (f"method={m}", "model=vit_tiny"), {"method": m, "transform": "none",
                                                                                   "label": m})
             for m in ("mae", "mocov3")]
    cells.append(_cls("ssl", "supervised", "model=vit_tiny", arch="vit_tiny"))
    return cells


def backbones_cells(ctx: StudyContext) -> list[Cell]:
    """Frozen backbones (``backbones=[...]``), each with its weights and at a random init, probed."""
    if not ctx.backbones:
        raise UserError(f"study backbones: name the backbones to compare, e.g. {backbones.EXAMPLE}")
    return [Cell("backbones", f"backbones-{key}", "extract", over, labels)
            for key, over, labels in backbones.backbone_runs(ctx.backbones)]


def anatomy_cells(ctx: StudyContext) -> list[Cell]:
    """Zeng, Yin & Liu: the classifier retrained on images that keep one kind of information (data.transform)."""
    names = ["", "grayscale", "mean_rgb", "lpf", "hpf", "pixel_shuffle_random", "pixel_shuffle_fixed",
             "patch_shuffle_random", "patch_shuffle_fixed", "canny", "hog", "jpeg", "downup", "canonical"]
    # Tiny: toy sources that differ ONLY by a colour cast, so what must fall to chance is known in advance.
    data = ["data=toy_color"] if ctx.tiny else []
    if ctx.tiny:
        names = ["", "grayscale", "mean_rgb", "lpf", "hpf", "patch_shuffle_fixed", "canny", "hog", "canonical"]
    return [_cls("anatomy", n or "reference", *data, f"data.transform={n}" if n else "data.transform=''",
                 transform=n or "reference") for n in names]


# ----------------------------------------------------------------------------------------------------------
# Paper values: the published number for one row of a study (None where the paper has none)
# ----------------------------------------------------------------------------------------------------------


def _ycd(fn: Callable[[Row], float | None]) -> Callable[[Row], float | None]:
    """Only where the row's sources are exactly YFCC, CC and DataComp (the setting of Tables 3-7)."""
    return lambda row: fn(row) if paper.is_ycd(json.loads(row["source_names"])) else None


def _combos_paper(row: Row) -> float | None:
    return paper.COMBOS.get(paper.combo_key(json.loads(row["source_names"])) or "")


def _anatomy_paper(row: Row) -> float | None:
    hit = paper.ZYL_YCD.get("" if row["transform"] == "reference" else row["transform"])
    return hit[0] if hit else None


# ----------------------------------------------------------------------------------------------------------
# Study-specific report parts: Markdown lines (and figures) after the study's table
# ----------------------------------------------------------------------------------------------------------


def _curve_section(xkey: str, xlabel: str, stem: str) -> Callable[[list[Row], Path], list[str]]:
    def section(entries: list[Row], fig_dir: Path) -> list[str]:
        if not any(e.get(xkey) for e in entries):
            return []
        plot_curve(entries, xkey, xlabel, fig_dir / f"{stem}.png")
        return [f"![accuracy vs {xlabel}](figures/{stem}.png)", ""]
    return section


def _pseudo_section(entries: list[Row], fig_dir: Path) -> list[str]:
    del fig_dir
    flagged = [e["label"] for e in entries if e.get("loss_decreased") is False]
    known = ", ".join(f"{n} {'with' if aug else 'without'} augmentation: {v if v is not None else 'fail'}"
                      for (n, aug), v in paper.PSEUDO_TRAIN.items())
    return [f"Runs whose training loss did not decrease (the paper's 'fail'): {', '.join(flagged) or 'none'}.", "",
            f"Liu & He Table 6 gives TRAIN accuracy per pseudo-dataset size ({known}); val is at chance there.", ""]


@dataclass(frozen=True)
class Study:
    """One named study.

    Attributes:
        name: ``--study`` name.
        paper: Where its numbers come from.
        varies: What it varies, in words.
        cells: Its runs for a data config (and the tiny preset).
        paper_value: The published top-1 (percent) for a result row, or None.
        section: Extra report lines and figures after its table (data and model size curves...).
    """

    name: str
    paper: str
    varies: str
    cells: Callable[[StudyContext], list[Cell]]
    paper_value: Callable[[Row], float | None] = lambda row: None
    section: Callable[[list[Row], Path], list[str]] = lambda entries, fig_dir: []


STUDIES: dict[str, Study] = {s.name: s for s in [
    Study("combos", "Liu & He Table 2", "every 3-way combination of the sources, then the 4/5/6-way rows",
          combos_cells, _combos_paper),
    Study("archs", "Liu & He Table 3", "architectures (AlexNet, VGG-16, ResNet-50, ViT-S, ConvNeXt-T)", archs_cells,
          _ycd(lambda r: paper.ARCHS.get(r["arch"]))),
    Study("model_size", "Liu & He Fig. 2", "the ConvNeXt ladder from 7.4K parameters", model_size_cells,
          _ycd(lambda r: paper.MODEL_SIZE.get(r["arch"])), _curve_section("params", "parameters", "model_size")),
    Study("data_size", "Liu & He Fig. 3, Table 4", "train images per source", data_size_cells,
          _ycd(lambda r: paper.AUGMENT.get(("full", r["n_train"]))),
          _curve_section("x", "train images per source", "data_size")),
    Study("augment", "Liu & He Table 4", "augmentation levels none / crop / crop+RandAug / full", augment_cells,
          _ycd(lambda r: paper.AUGMENT.get((r["label"], r["n_train"])))),
    Study("corrupt", "Liu & He Table 5", "fixed corruptions of train and val", corrupt_cells,
          _ycd(lambda r: paper.CORRUPT.get(r["label"]))),
    Study("pseudo", "Liu & He Table 6", "K random splits of one source, with and without augmentation", pseudo_cells,
          section=_pseudo_section),
    Study("ssl", "Liu & He Table 7", "MAE and MoCo v3 features probed next to the end-to-end classifier", ssl_cells,
          _ycd(lambda r: paper.SSL.get((r["method"], r["probe"])))),
    Study("anatomy", "Zeng, Yin & Liu Table 1", "the classifier retrained per bias-anatomy transformation",
          anatomy_cells, _ycd(_anatomy_paper)),
    Study("backbones", "Saleknia & Sabokrou; FD-DINOv2", "frozen backbones (backbones=[...]) vs the same architecture "
          "at random init", backbones_cells, section=backbones.backbones_section),
]}


def build_cells(name: str, ctx: StudyContext, only: list[str] | None = None) -> list[Cell]:
    """The cells of study ``name`` (``all`` = every study; ``backbones`` only when backbones are given), or only
    those whose row label is in ``only``."""
    if name == "all":
        cells = [c for s in STUDIES.values() if s.name != "backbones" or ctx.backbones for c in s.cells(ctx)]
    elif name not in STUDIES:
        raise UserError(f"--study {name}: unknown; known: {', '.join([*STUDIES, 'all'])}")
    else:
        cells = STUDIES[name].cells(ctx)
    if only:
        labels = [c.labels.get("label", c.key) for c in cells]
        unknown = [o for o in only if o not in labels]
        if unknown:
            raise UserError(f"--only {','.join(unknown)}: no such row in study {name}; rows: {', '.join(labels)}")
        cells = [c for c, label in zip(cells, labels) if label in only]
    return cells


def paper_value(row: Row) -> float | None:
    """The published accuracy (percent) for a result row; None for baselines and settings the paper lacks."""
    if "baseline" in str(row["probe"]) or row["study"] not in STUDIES:
        return None
    return STUDIES[row["study"]].paper_value(row)

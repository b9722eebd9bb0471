"""Typed configuration: dataclasses loaded from YAML, with ``a.b=value`` and ``group=name`` overrides.

A config is a tree of dataclasses (:class:`Config` at the root). It is built in layers, each one a YAML
mapping merged onto the current tree:

1. the dataclass defaults,
2. the script's default file (e.g. ``configs/pretrain.yaml``) or ``--config FILE``,
3. command-line overrides, in order.

Inside any layer, a *string* where a section (a dataclass) is expected names a group file:
``data: toy`` loads ``configs/data/toy.yaml`` into ``data``; ``data: my/data.yaml`` loads that file.
On the command line ``data=toy`` does the same and ``optim.blr=1e-3`` sets one value (parsed as YAML).

Every key is checked against the dataclass fields and every value against the field's type; an error names
the key and the file (or ``command line``) it came from, in one line. The resolved tree is written to the run
dir as ``config.yaml`` and loads back to an equal object (:func:`load_config`).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

logger = logging.getLogger(__name__)


class ConfigError(ValueError):
    """A config key or value is wrong; the message names the key and where it came from."""


# ----------------------------------------------------------------------------------------------------------
# Sections
# ----------------------------------------------------------------------------------------------------------


@dataclass
class SourceConfig:
    """One named image collection.

    Attributes:
        name: Source name, shown in every table (e.g. ``yfcc``). An ``imagefolder`` or ``list`` entry that
            expands to several sources names each one after its subfolder or ``source`` column value.
        kind: ``folder`` (all images under ``path``, recursively), ``imagefolder`` (``path/{train,val}/<source>/``:
            one entry gives every source and the official split), ``webdataset`` (``.tar`` shards),
            ``list`` (a ``.txt``/``.csv``/``.parquet`` file of image paths) or ``toy`` (procedural, no files).
        path: ``folder``/``imagefolder``: root directory. ``webdataset``: shard pattern with braces or globs
            (``/data/cc/{00000..00099}.tar``, ``/data/cc/*.tar``). ``list``: the list file.
        select: ``imagefolder``/``list``: only these sources (subfolders / ``source`` column values); empty means
            all found, sorted. An entry selecting exactly one keeps its own ``name``.
        root: ``list``: directory that relative paths in the file are joined to (default: the file's folder).
        path_column: ``list`` (csv/parquet): column holding the image path.
        source_column: ``list`` (csv/parquet): column holding the source name; used when the file has it.
        bias: Toy only: strength of this source's capture signature; 0 makes all toy sources identical.
        signature: Toy only: which capture effects carry the signature
            (``color``, ``noise``, ``blur``, ``jpeg``, ``size``).
        signature_id: Toy only: which signature this source gets; default = its rank among toy sources.
        native_size: Toy only: side of the rendered image in pixels; 0 means ``data.image_size``.
    """

    name: str = ""
    kind: str = "folder"
    path: str | None = None
    select: list[str] = field(default_factory=list)
    root: str | None = None
    path_column: str = "path"
    source_column: str = "source"
    bias: float = 0.5
    signature: list[str] = field(default_factory=lambda: ["color", "noise", "blur", "jpeg"])
    signature_id: int | None = None
    native_size: int = 0


@dataclass
class SplitCounts:
    """Images per source in each split."""

    train: int = 1000
    val: int = 100


@dataclass
class AnatomyConfig:
    """Parameters of the bias-anatomy transformations (``data.transform``; see :mod:`dsbias.anatomy`).

    Attributes:
        freq_threshold: Low/high-pass cut-off radius in FFT bins *at* ``freq_ref_size`` (Zeng et al. use 40 at
            224 px); the radius used is ``freq_threshold * image_size / freq_ref_size``, so the same fraction
            of the spectrum is kept at any input size.
        freq_ref_size: Input side at which ``freq_threshold`` is given.
        filter: ``ideal`` (a hard disc) or ``butterworth`` (smooth, of order ``filter_order``).
        filter_order: Butterworth order.
        patch_size: Patch shuffle: patch side in network-input pixels (must divide ``image_size``).
        shuffle_seed: Seed of the fixed pixel/patch permutation (the same for every image, never cached on disk).
        canny_low: Canny hysteresis thresholds on the 0-255 gradient magnitude (Zeng et al.: 85 / 255).
        canny_high: See ``canny_low``.
        hog_cell: HOG cell side in native pixels.
        hog_orientations: HOG orientation bins.
        downup_size: ``downup``: shorter side the image is reduced to before going back to its native size.
        jpeg_quality: ``jpeg``: quality of the JPEG round trip.
        canonical_size: ``canonical``: every image becomes this square size (shorter side resized, center crop).
        canonical_format: ``canonical``: the one codec every image is re-encoded with.
        canonical_quality: ``canonical``: JPEG/WebP quality.
        model_path: Model-based transformations (segmentation, depth, captions...): local weights; nothing downloads.
    """

    freq_threshold: float = 40.0
    freq_ref_size: int = 224
    filter: Literal["ideal", "butterworth"] = "ideal"
    filter_order: int = 2
    patch_size: int = 16
    shuffle_seed: int = 0
    canny_low: float = 85.0
    canny_high: float = 255.0
    hog_cell: int = 8
    hog_orientations: int = 9
    downup_size: int = 32
    jpeg_quality: int = 75
    canonical_size: int = 256
    canonical_format: Literal["JPEG", "PNG", "WEBP"] = "JPEG"
    canonical_quality: int = 90
    model_path: str | None = None


@dataclass
class DataConfig:
    """A mix of sources with a seeded, balanced, disjoint train/val split.

    Attributes:
        sources: The sources; their order gives the source ids (0..S-1).
        per_source: Images drawn per source and split (equal by default, so chance = 1/S).
        image_size: Side of the square network input.
        crop_pct: Eval transform: resize the shorter side to ``image_size / crop_pct``, then center-crop.
        seed: Seed of the sampling and of the train/val split.
        pseudo: If K > 0, the single source is cut into K disjoint random pseudo-sources (Liu & He Table 6).
        allow_fewer: A source with fewer usable images than asked gives all it has (and says so)
            instead of stopping the run.
        max_pixels: Images with more pixels are skipped as decompression bombs.
        num_workers: DataLoader worker processes per training process.
        manifest: A manifest written by ``tools/manifest.py`` (``.../manifest.jsonl``): runs read exactly its rows
            instead of sampling; its sources must match ``sources``.
        dedup: Exact (content-hash) duplicates among the sampled images: ``drop`` removes cross-source copies
            (all of them) and cross-split copies (the val one) and draws replacements so counts stay balanced;
            ``report`` only counts them; ``ignore`` skips the check (not ``off``: YAML reads that as false).
            Within-source, same-split copies are reported.
        official_split: Sources with an official split (``imagefolder`` with ``train/`` and ``val/``) give train
            rows from train and val rows from val; false pools both and splits at random.
        transform: Bias-anatomy transformation(s) applied to train AND val images, ``+``-joined
            (``grayscale``, ``lpf``, ``patch_shuffle_fixed``, ``canonical``, ``grayscale+lpf``...; empty: none).
            See :mod:`dsbias.anatomy.transforms` for the list and where each applies.
        anatomy: Parameters of those transformations.
    """

    sources: list[SourceConfig] = field(default_factory=list)
    per_source: SplitCounts = field(default_factory=SplitCounts)
    image_size: int = 64
    crop_pct: float = 0.875
    seed: int = 0
    pseudo: int = 0
    allow_fewer: bool = False
    max_pixels: int = 100_000_000
    num_workers: int = 2
    manifest: str | None = None
    dedup: Literal["drop", "report", "ignore"] = "drop"
    official_split: bool = True
    transform: str = ""
    anatomy: AnatomyConfig = field(default_factory=AnatomyConfig)


@dataclass
class ModelConfig:
    """The backbone: a stock timm (or torchvision) model.

    Attributes:
        name: timm model name (or ``torchvision.<name>``).
        kwargs: Extra keyword arguments for ``timm.create_model`` (e.g. ``img_size``, ``patch_size``).
        pool: timm ``global_pool`` (``token`` = cls token, ``avg``...); empty keeps the model default.
        weights: Optional local weights file to initialise from (never downloaded).
    """

    name: str = "vit_tiny_patch16_224"
    kwargs: dict[str, Any] = field(default_factory=dict)
    pool: str = ""
    weights: str | None = None


@dataclass
class MAEConfig:
    """Masked autoencoder (He et al. 2022).

    Attributes:
        mask_ratio: Fraction of patches masked per image (0.75 in MAE).
        norm_pix_loss: Targets are per-patch normalised pixels (mean/var of each patch, eps 1e-6).
        decoder_dim: Decoder width (MAE ViT-B: 512).
        decoder_depth: Decoder blocks (MAE: 8; 1-2 are enough for linear-probe features at small scale).
        decoder_heads: Decoder attention heads.
        min_scale: Lower bound of the RandomResizedCrop area scale (MAE: 0.2).
    """

    mask_ratio: float = 0.75
    norm_pix_loss: bool = True
    decoder_dim: int = 128
    decoder_depth: int = 2
    decoder_heads: int = 4
    min_scale: float = 0.2


@dataclass
class MoCoV3Config:
    """MoCo v3 (Chen, Xie & He 2021).

    Attributes:
        temperature: InfoNCE temperature T (the loss is scaled by 2T).
        momentum: Start of the cosine momentum schedule (rises to 1 at the last step).
        proj_hidden_dim: Projector hidden width (v3: 4096).
        proj_dim: Output width of projector and predictor (v3: 256).
        pred_hidden_dim: Predictor hidden width (v3: 4096).
        min_scale: Lower bound of the RandomResizedCrop area scale (v3: 0.08).
        stop_grad_conv1: ViT only: keep the random patch projection frozen (v3's ``--stop-grad-conv1``).
    """

    temperature: float = 0.2
    momentum: float = 0.99
    proj_hidden_dim: int = 1024
    proj_dim: int = 256
    pred_hidden_dim: int = 1024
    min_scale: float = 0.08
    stop_grad_conv1: bool = True


@dataclass
class AugmentConfig:
    """Training augmentation of the supervised classifier (timm's ``create_transform`` and ``Mixup``).

    The defaults are Liu & He's recipe (Table 9). The levels of their augmentation ablation (Table 4) are
    presets: ``method.supervised.augment=none|crop|crop_randaug|full`` (``configs/augment/``).

    Attributes:
        crop: RandomResizedCrop (+ flip); off: the eval view (resize + center crop) for training too.
        scale: RandomResizedCrop area range.
        hflip: Horizontal flip probability (with ``crop``).
        color_jitter: timm colour jitter strength (0: off; timm ignores it while RandAugment is on).
        randaug: timm RandAugment string (``rand-m9-mstd0.5-inc1`` = magnitude 9, std 0.5, 2 ops); empty: off.
        interpolation: Resampling of the random crop (and RandAugment).
        reprob: Random erasing probability (the paper: 0).
        mixup: Mixup alpha (0: off).
        cutmix: CutMix alpha (0: off).
        mixup_prob: Probability of mixing a batch (or element) at all.
        switch_prob: Probability of CutMix instead of Mixup when both are on.
        mode: Mixup mode: ``batch`` (ConvNeXt default), ``pair`` or ``elem`` (the follow-up's code).
    """

    crop: bool = True
    scale: list[float] = field(default_factory=lambda: [0.08, 1.0])
    hflip: float = 0.5
    color_jitter: float = 0.0
    randaug: str = "rand-m9-mstd0.5-inc1"
    interpolation: str = "bicubic"
    reprob: float = 0.0
    mixup: float = 0.8
    cutmix: float = 1.0
    mixup_prob: float = 1.0
    switch_prob: float = 0.5
    mode: Literal["batch", "pair", "elem"] = "batch"


@dataclass
class CorruptConfig:
    """A fixed corruption applied to every train AND val image (Liu & He Table 5; presets ``configs/corrupt/``).

    Applied to the network-size image after cropping/RandAugment and before normalisation, seeded by the
    image content, so a val image always gets the same corruption.

    Attributes:
        kind: ``none``, ``color_jitter`` (SimCLR-style strength s: brightness/contrast/saturation 0.8 s,
            hue 0.2 s), ``noise`` (Gaussian, std in [0, 1] pixel units), ``blur`` (Gaussian, radius in pixels)
            or ``downsample`` (to strength x strength pixels, bicubic, then back up to the input size).
        strength: The parameter of ``kind`` (see above).
    """

    kind: Literal["none", "color_jitter", "noise", "blur", "downsample"] = "none"
    strength: float = 0.0


@dataclass
class SupervisedConfig:
    """End-to-end source classification (the paper's headline experiment).

    Attributes:
        label_smoothing: Label smoothing of the cross-entropy (also inside Mixup's soft targets).
        augment: Training augmentation (Table 4 levels as presets).
        corrupt: Fixed corruption of train and val images (Table 5).
    """

    label_smoothing: float = 0.1
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    corrupt: CorruptConfig = field(default_factory=CorruptConfig)


@dataclass
class MethodConfig:
    """Which method trains the backbone, and each method's settings."""

    name: Literal["mae", "mocov3", "supervised"] = "mae"
    mae: MAEConfig = field(default_factory=MAEConfig)
    mocov3: MoCoV3Config = field(default_factory=MoCoV3Config)
    supervised: SupervisedConfig = field(default_factory=SupervisedConfig)


@dataclass
class OptimConfig:
    """Optimiser and learning-rate schedule.

    Attributes:
        name: ``adamw`` (the only one the recipes use).
        blr: Base learning rate; the used lr is ``blr * global_batch / 256`` unless ``lr`` is set.
        lr: Absolute learning rate (overrides ``blr``).
        betas: AdamW betas.
        weight_decay: Applied to weights only (no decay on norms, biases, tokens, position embeddings).
        warmup_samples: Linear warmup length in samples seen.
        min_lr: Floor of the cosine decay.
        clip_grad: Max gradient norm (0 disables clipping).
    """

    name: str = "adamw"
    blr: float = 1.5e-4
    lr: float | None = None
    betas: list[float] = field(default_factory=lambda: [0.9, 0.95])
    weight_decay: float = 0.05
    warmup_samples: int = 0
    min_lr: float = 0.0
    clip_grad: float = 0.0


@dataclass
class TrainConfig:
    """Training length, batch and devices.

    Attributes:
        samples: Training length in samples seen (independent of the data size, as in Liu & He).
        batch_size: Global batch per optimiser step (split over processes, reached with accumulation).
        grad_accum: Gradient accumulation steps per optimiser step.
        mixed_precision: ``no``, ``bf16`` or ``fp16`` (Accelerate).
        seed: Seed of model init and augmentation.
        log_every: Steps between log lines.
        save_every: Steps between resumable checkpoints (0: only at the end).
        compile: ``torch.compile`` the model (off: costly on small CPUs).
        log_with: Accelerate trackers (TensorBoard by default, skipped with a warning if not installed).
        extract: Write features to ``<run>/features`` at the end of training.
        stop_after: Stop after this many steps as if killed (no final checkpoint); 0 = off. For resume tests
            and time-boxed jobs: rerunning into the run dir continues from the last checkpoint.
    """

    samples: int = 30_000
    batch_size: int = 128
    grad_accum: int = 1
    mixed_precision: str = "no"
    seed: int = 0
    log_every: int = 10
    save_every: int = 0
    compile: bool = False
    log_with: list[str] = field(default_factory=lambda: ["tensorboard"])
    extract: bool = True
    stop_after: int = 0


@dataclass
class ClassifyConfig:
    """The dataset-classification run (``probe/classify.py``) around the supervised method.

    Attributes:
        init: Pretraining run dir whose ``backbone.safetensors`` initialises the backbone (fine-tuning); the
            run's ``backbone.json`` must name the same model and kwargs as ``model``.
        eval_every: Optimiser steps between val evaluations during training (0: only at the end).
        eval_batch_size: Images per forward at evaluation (eval mode: no batch statistics, so any size).
        train_top1: Also evaluate the final model on the train split (the memorisation number).
        loss_window: Fraction of the logged steps at each end whose mean losses are compared.
        loss_drop: Minimum relative drop of the mean loss from the start (the first window, or ``ln S`` if
            higher) to the last window; a smaller drop flags the run (``loss_decreased: false``), the
            pseudo-dataset "fail" of Liu & He Table 6.
    """

    init: str | None = None
    eval_every: int = 0
    eval_batch_size: int = 256
    train_top1: bool = True
    loss_window: float = 0.1
    loss_drop: float = 0.02


@dataclass
class Config:
    """The whole run: data, backbone, method, optimiser and training length."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    classify: ClassifyConfig = field(default_factory=ClassifyConfig)
    out: str = "out"


# ----------------------------------------------------------------------------------------------------------
# Group files
# ----------------------------------------------------------------------------------------------------------


def config_dirs() -> list[Path]:
    """Where group files (``configs/<group>/<name>.yaml``) are looked up, in order.

    ``$DSBIAS_CONFIGS`` first, then ``./configs``, then the ``configs/`` beside the installed package
    (a source checkout).
    """
    dirs = []
    if os.environ.get("DSBIAS_CONFIGS"):
        dirs.append(Path(os.environ["DSBIAS_CONFIGS"]))
    dirs.append(Path.cwd() / "configs")
    dirs.append(Path(__file__).resolve().parent.parent / "configs")
    return dirs


def resolve_group_file(group: str, name: str) -> Path:
    """Find the YAML file a ``group=name`` selects.

    Args:
        group: Dotted section name (``data``, ``method``...); its last part is the folder under ``configs/``.
        name: A preset name (``toy``) or a path to a YAML file.

    Returns:
        The path of the file.

    Raises:
        ConfigError: No such preset or file.
    """
    if name.endswith((".yaml", ".yml")) or os.sep in name:
        path = Path(name).expanduser()
        if not path.is_file():
            raise ConfigError(f"{group}={name}: no such file")
        return path
    folder = group.split(".")[-1]
    for d in config_dirs():
        path = d / folder / f"{name}.yaml"
        if path.is_file():
            return path
    tried = ", ".join(str(d / folder) for d in config_dirs())
    raise ConfigError(f"{group}={name}: no preset '{name}.yaml' in {tried}")


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping; an empty file is an empty mapping."""
    try:
        with open(path) as f:
            data = yaml.safe_load(f)
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read ({e.strerror})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top, got {type(data).__name__}")
    return data


# ----------------------------------------------------------------------------------------------------------
# Typed merge
# ----------------------------------------------------------------------------------------------------------


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, key: str, origin: str) -> Any:
    """Check ``value`` against the annotation ``tp`` and convert where lossless (int -> float, list -> tuple)."""
    o = typing.get_origin(tp)
    args = typing.get_args(tp)

    def fail() -> ConfigError:
        return ConfigError(
            f"{key}: expected {_type_name(tp)}, got {type(value).__name__} {value!r} (from {origin})"
        )

    if tp is Any:
        return value
    if o in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, key, origin)
            except ConfigError:
                continue
        raise fail()
    if o is Literal:
        if value not in args:
            raise ConfigError(f"{key}: expected one of {list(args)}, got {value!r} (from {origin})")
        return value
    if o is list:
        if not isinstance(value, list | tuple):
            raise fail()
        return [_coerce(v, args[0], f"{key}[{i}]", origin) for i, v in enumerate(value)]
    if o is dict:
        if not isinstance(value, dict):
            raise fail()
        return {str(k): _coerce(v, args[1], f"{key}.{k}", origin) for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise fail()
        return merge(tp(), value, origin, prefix=key)
    if tp is bool:
        if not isinstance(value, bool):
            raise fail()
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise fail()
        return value
    if tp is float:
        if isinstance(value, str):
            try:  # PyYAML (YAML 1.1) reads `3e-3` as text: accept any float literal for a float field
                return float(value)
            except ValueError:
                raise fail() from None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise fail()
        return float(value)
    if tp is str:
        if origin == "command line" and isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)  # `out=2024` on a command line means the text
        if not isinstance(value, str):
            raise fail()
        return value
    raise ConfigError(f"{key}: unsupported field type {tp}")


def merge(obj: Any, data: dict[str, Any], origin: str, prefix: str = "") -> Any:
    """Return a copy of dataclass ``obj`` with the mapping ``data`` merged in, checked against its types.

    Nested sections merge key by key; a string given for a section loads that group's preset file.

    Args:
        obj: A dataclass instance (not modified).
        data: Mapping of field names to values.
        origin: Where ``data`` came from, for error messages (a file path or ``command line``).
        prefix: Dotted key of ``obj`` inside the root config.

    Raises:
        ConfigError: An unknown key, a wrong type, or a missing preset.
    """
    hints = typing.get_type_hints(type(obj))
    names = {f.name for f in dataclasses.fields(obj)}
    changes = {}
    for k, v in data.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if k not in names:
            raise ConfigError(f"unknown key '{key}' (from {origin}); known: {', '.join(sorted(names))}")
        tp = hints[k]
        current = getattr(obj, k)
        if dataclasses.is_dataclass(tp):
            if isinstance(v, str):
                path = resolve_group_file(key, v)
                changes[k] = merge(current, read_yaml(path), str(path), prefix=key)
            elif isinstance(v, dict):
                changes[k] = merge(current, v, origin, prefix=key)
            else:
                raise ConfigError(
                    f"{key}: expected a mapping or a preset name, got {type(v).__name__} (from {origin})"
                )
        else:
            changes[k] = _coerce(v, tp, key, origin)
    return dataclasses.replace(obj, **changes)


def apply_override(cfg: Config, override: str) -> Config:
    """Apply one command-line override: ``a.b=value`` (value parsed as YAML) or ``group=name``."""
    if "=" not in override:
        raise ConfigError(f"override '{override}': expected key=value")
    key, raw = override.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"override '{override}': empty key")
    try:
        value = yaml.safe_load(raw) if raw != "" else ""
    except yaml.YAMLError:
        value = raw  # e.g. a path with a colon: keep it as text
    # Build the nested mapping {a: {b: value}} and merge it like a file.
    data: dict[str, Any] = {}
    node = data
    parts = key.split(".")
    for p in parts[:-1]:
        node = node.setdefault(p, {})
    node[parts[-1]] = value
    return merge(cfg, data, "command line")


def load_config(
    path: str | Path | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    base: Config | None = None,
) -> Config:
    """Build a config from defaults, an optional YAML file and overrides.

    Args:
        path: YAML file with any of the sections (a section may be a preset name).
        overrides: ``a.b=value`` or ``group=name`` strings, applied in order.
        base: Start from this config instead of the defaults.

    Returns:
        The resolved, type-checked :class:`Config`.
    """
    cfg = base if base is not None else Config()
    if path is not None:
        cfg = merge(cfg, read_yaml(path), str(path))
    for o in overrides:
        cfg = apply_override(cfg, o)
    validate(cfg)
    return cfg


def validate(cfg: Config) -> None:
    """Cross-field checks that types alone cannot express."""
    d = cfg.data
    if not d.sources:
        raise ConfigError("data.sources: no sources given (use data=toy or a data config file)")
    names = [s.name for s in d.sources]
    for i, s in enumerate(d.sources):
        if not s.name:
            raise ConfigError(f"data.sources[{i}].name: empty")
        if s.kind in FILE_KINDS and not s.path:
            raise ConfigError(f"data.sources[{i}].path: a {s.kind} source needs a path")
    if len(set(names)) != len(names):
        raise ConfigError(f"data.sources: duplicate names {names}")
    if d.pseudo == 1 or d.pseudo < 0:
        raise ConfigError(f"data.pseudo={d.pseudo}: use 0 (off) or K >= 2")
    # An imagefolder/list entry may stand for several sources: the count is checked again once the files
    # have been looked at (dsbias.data.sources.expand_sources).
    if not any(s.kind in EXPANDING_KINDS for s in d.sources):
        check_source_count(d.pseudo, len(d.sources))
    if d.per_source.train < 1 or d.per_source.val < 0:
        raise ConfigError("data.per_source: train must be >= 1 and val >= 0")
    if d.image_size < 8:
        raise ConfigError(f"data.image_size={d.image_size}: too small")
    if not 0 < d.crop_pct <= 1:
        raise ConfigError(f"data.crop_pct={d.crop_pct}: must be in (0, 1]")
    if d.transform:
        from dsbias.anatomy.transforms import create_anatomy_transforms  # late: dsbias.anatomy imports this module

        try:
            create_anatomy_transforms(d)  # unknown names and bad parameters fail here, not mid-training
        except ValueError as e:
            raise ConfigError(str(e)) from None
    if cfg.train.batch_size < 1 or cfg.train.grad_accum < 1:
        raise ConfigError("train.batch_size and train.grad_accum must be >= 1")
    if cfg.train.mixed_precision not in ("no", "bf16", "fp16"):
        raise ConfigError(f"train.mixed_precision={cfg.train.mixed_precision!r}: use no, bf16 or fp16")
    aug = cfg.method.supervised.augment
    if len(aug.scale) != 2 or not 0 < aug.scale[0] <= aug.scale[1] <= 1:
        raise ConfigError(f"method.supervised.augment.scale={aug.scale}: need [low, high] with 0 < low <= high <= 1")
    c = cfg.classify
    if not 0 < c.loss_window <= 0.5:
        raise ConfigError(f"classify.loss_window={c.loss_window}: must be in (0, 0.5]")
    if c.eval_batch_size < 1 or c.eval_every < 0:
        raise ConfigError("classify.eval_batch_size must be >= 1 and classify.eval_every >= 0")


FILE_KINDS = ("folder", "imagefolder", "webdataset", "list")
EXPANDING_KINDS = ("imagefolder", "list")


def check_source_count(pseudo: int, n: int) -> None:
    """``pseudo`` needs exactly one source; otherwise at least two are needed."""
    if pseudo and n != 1:
        raise ConfigError(f"data.pseudo={pseudo}: needs exactly one source, got {n}")
    if not pseudo and n < 2:
        raise ConfigError(f"data.sources: need at least two sources (or data.pseudo >= 2), got {n}")


def diff_keys(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two plain config dicts (``to_dict`` output), sorted."""
    if isinstance(old, dict) and isinstance(new, dict):
        return sorted(d for k in new.keys() | old.keys()
                      for d in diff_keys(old.get(k), new.get(k), f"{prefix}.{k}" if prefix else k))
    return [] if old == new else [prefix]


def to_dict(cfg: Any) -> dict[str, Any]:
    """The config as plain YAML-safe data (what ``config.yaml`` holds)."""
    return dataclasses.asdict(cfg)


def dump_yaml(cfg: Any) -> str:
    """The config as YAML text, keys in declaration order."""
    return yaml.safe_dump(to_dict(cfg), sort_keys=False, default_flow_style=None, width=110)


def config_from_cli(
    argv: list[str] | None = None,
    default_config: str | Path | None = None,
    description: str = "",
    add_arguments: typing.Callable[[typing.Any], None] | None = None,
) -> tuple[Config, typing.Any]:
    """Parse ``[--config FILE] [--out DIR] [overrides...]`` into a :class:`Config`.

    Args:
        argv: Arguments (default ``sys.argv[1:]``).
        default_config: Preset file used when ``--config`` is not given: a path, or a name looked up with
            :func:`resolve_group_file` as ``<group>/<name>`` (e.g. ``"pretrain"`` -> ``configs/pretrain.yaml``).
        description: Shown by ``--help``.
        add_arguments: Adds script-specific flags to the parser.

    Returns:
        The config and the parsed argparse namespace (for script-specific flags).
    """
    import argparse
    import sys

    parser = argparse.ArgumentParser(
        description=description,
        epilog="overrides: a.b=value (YAML value) or group=name (configs/<group>/<name>.yaml or a file)",
    )
    parser.add_argument("--config", help="YAML config file (default: %(default)s)", default=None)
    parser.add_argument("--out", help="run directory (overrides the config's 'out')", default=None)
    if add_arguments is not None:
        add_arguments(parser)
    parser.add_argument("overrides", nargs="*", help="key=value or group=name")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    path = args.config
    if path is None and default_config is not None:
        path = find_preset(default_config)
    overrides = list(args.overrides)
    if args.out is not None:
        overrides.append(f"out={args.out}")
    try:
        cfg = load_config(path, overrides)
    except ConfigError as e:
        parser.exit(2, f"config error: {e}\n")
    return cfg, args


def find_preset(name: str | Path) -> Path:
    """A top-level preset (``configs/<name>.yaml``) or an existing file path."""
    p = Path(name)
    if p.suffix in (".yaml", ".yml") and p.is_file():
        return p
    for d in config_dirs():
        cand = d / f"{name}.yaml"
        if cand.is_file():
            return cand
    raise ConfigError(f"preset '{name}': not found in {', '.join(map(str, config_dirs()))}")

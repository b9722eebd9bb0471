"""``run:RUN_DIR``: a dsbias run's exported backbone (``backbone.json`` + ``backbone.safetensors``), with dsbias's
eval view at the size and normalisation it was trained with (the caller builds it from the record)."""

from __future__ import annotations

from dsbias.errors import UserError
from dsbias.models.backbones import load_backbone
from dsbias.models.frozen_base import FrozenBackbone, FrozenSettings, block_index, probe_dim, weights_record
from dsbias.models.frozen_timm import TIMM_POOL, TimmBlock, pool_name
from dsbias.models.spec import BackboneSpec
from dsbias.runs import RunDir


def load_run(spec: BackboneSpec, s: FrozenSettings) -> FrozenBackbone:
    """``run:RUN_DIR`` (see the module docstring)."""
    what = f"--backbone {spec}"
    run = RunDir.at(spec.name)
    if not run.backbone_meta.is_file():
        raise UserError(f"{what}: {run.backbone_meta} not found (a dsbias run dir whose training finished)")
    if s.weights:
        raise UserError(f"{what}: a run dir carries its own weights; drop --weights")
    pretrained = s.init == "pretrained"
    net, meta = load_backbone(run.root, weights=pretrained)
    index = block_index(s.layer)
    if meta["library"] != "timm" and (s.pool != "default" or index is not None):
        raise UserError(f"{what}: pool and layer apply to timm backbones; this one is {meta['library']}")
    if s.pool != "default":
        try:
            net.reset_classifier(0, global_pool=TIMM_POOL[s.pool])
        except (AssertionError, ValueError, TypeError) as e:
            raise UserError(f"{what}: pool={s.pool} is not possible for this model ({e})") from None
    module = net if index is None else TimmBlock(net, index, s.pool, what)
    size = int(meta["image_size"])
    dim = probe_dim(module, (size, size), what)
    prefix = getattr(net, "num_prefix_tokens", 0) > 0
    pooling = (pool_name(net) if meta["library"] == "timm" else "avg") if index is None else (
        s.pool if s.pool != "default" else "cls" if prefix else "avg")
    view = {"library": "dsbias", "image_size": size, "crop_pct": meta["crop_pct"], "interpolation": "bicubic",
            "mean": list(meta["mean"]), "std": list(meta["std"])}
    return FrozenBackbone(module, None, {
        "library": meta["library"], "name": meta["name"], "kwargs": meta["kwargs"], "method": meta.get("method"),
        "run": str(run.root), **weights_record(run.backbone_weights if pretrained else None), "pooling": pooling,
        "dim": dim, "image_size": size, "crop_pct": meta["crop_pct"], "mean": view["mean"], "std": view["std"],
        "preprocess": view})

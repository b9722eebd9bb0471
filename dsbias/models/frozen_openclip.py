"""``open_clip:ARCH``: the image tower of an open_clip model and open_clip's own eval preprocessing
(``create_model_and_transforms``). Needs the ``clip`` extra.

``ARCH`` is a built-in architecture (``ViT-B-32``) or a model-config ``.json`` file (open_clip's
``model_configs`` format) with ``--weights`` = a local file or a pretrained tag; or ``local-dir:PATH`` (a folder
with ``open_clip_config.json`` and the weights: preprocessing and weights travel together, open_clip #1069); or
``hf-hub:ORG/REPO``. A weights *file* carries no preprocessing, and open_clip's defaults for an architecture are
not always those of its published weights (SigLIP: mean 0.5, squash; open_clip #1068): with a file, dsbias uses
the preprocessing of the architecture's published tags when they all agree, and stops when they do not.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import open_clip
import torch
from open_clip.pretrained import download_pretrained, get_pretrained_cfg
from torch import nn

from dsbias.errors import UserError
from dsbias.models.frozen_base import (
    FrozenBackbone,
    FrozenSettings,
    block_index,
    local_file,
    offline_hint,
    probe_dim,
    weights_record,
)
from dsbias.models.pooling import pool_map
from dsbias.models.preprocess import from_torchvision
from dsbias.models.spec import BackboneSpec

PREPROCESS_KEYS = ("mean", "std", "interpolation", "resize_mode")
OPENCLIP_POOL = {"cls": "tok", "avg": "avg"}
TIMM_POOL = {"cls": "token", "avg": "avg"}


class OpenClipBlock(nn.Module):
    """The output of block ``index`` of an open_clip image tower, pooled: ``[B, 3, H, W] -> [B, C]``."""

    def __init__(self, visual: nn.Module, index: int, pool: str, what: str) -> None:
        super().__init__()
        if not hasattr(visual, "forward_intermediates"):
            raise UserError(f"{what}: this image tower has no forward_intermediates; use extract.layer=final")
        self.visual, self.index, self.pool, self.what = visual, index, pool, what

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.visual.forward_intermediates(x, indices=[self.index], intermediates_only=True,
                                                output_extra_tokens=True)
        prefix = out.get("image_intermediates_prefix", [None])[0]  # [B, P, C]
        return pool_map(out["image_intermediates"][0], prefix, self.pool, self.what)  # from [B, C, H, W]


def _tag_preprocess(arch: str, what: str) -> tuple[dict[str, Any], str]:
    """The preprocessing the published tags of ``arch`` agree on (empty if it has none)."""
    tags = open_clip.list_pretrained_tags_by_model(arch)
    seen = {t: {k: get_pretrained_cfg(arch, t).get(k) for k in PREPROCESS_KEYS} for t in tags}
    distinct = {repr(v) for v in seen.values()}
    if len(distinct) > 1:
        listing = "; ".join(f"{t}: {v}" for t, v in seen.items())[:400]
        raise UserError(f"{what}: the published weights of {arch} use different preprocessing ({listing}); a "
                        "weights file does not say which applies: pass the tag as --weights, or use "
                        "open_clip:local-dir:DIR with an open_clip_config.json that holds its preprocess_cfg")
    if not seen:
        return {}, f"open_clip defaults for {arch}"
    return {k: v for k, v in next(iter(seen.values())).items() if v is not None}, f"the published tags of {arch}"


def _resolve(spec: BackboneSpec, s: FrozenSettings, what: str) -> tuple[str, dict[str, Any], Path | None, str]:
    """open_clip's model name, its create_model arguments, the weights file (for the record) and the preprocessing
    source, for each kind of ARCH."""
    name, pretrained = spec.name, s.init == "pretrained"
    if name.startswith("local-dir:"):
        root = Path(name[len("local-dir:"):]).expanduser()
        if not (root / "open_clip_config.json").is_file():
            raise UserError(f"{what}: {root / 'open_clip_config.json'} not found (local-dir: needs the folder "
                            "holding open_clip_config.json and the weights)")
        if s.weights:
            raise UserError(f"{what}: a local-dir carries its own weights; drop --weights")
        return f"local-dir:{root}", {"load_weights": pretrained}, root if pretrained else None, f"{root}"
    if name.startswith("hf-hub:"):
        if s.weights:
            raise UserError(f"{what}: a hub repo carries its own weights; drop --weights")
        return name, {"load_weights": pretrained}, None, name
    arch = name.replace("/", "-")  # open_clip's own spelling: ViT-B/32 is ViT-B-32
    if name.endswith(".json"):
        cfg_file = local_file(name, what)
        open_clip.add_model_config(cfg_file)  # registered under the file's stem
        arch = cfg_file.stem
    if arch not in open_clip.list_models():
        raise UserError(f"{what}: unknown open_clip architecture {arch!r} (open_clip.list_models() lists them; a "
                        "custom one: give its model-config .json)")
    if not pretrained:
        return arch, {}, None, f"open_clip defaults for {arch}"
    tags = open_clip.list_pretrained_tags_by_model(arch)
    listed = ", ".join(tags[:6]) + (f" and {len(tags) - 6} more" if len(tags) > 6 else "") if tags else "none"
    if not s.weights:
        raise UserError(f"{what}: give --weights FILE or one of its tags ({listed}), or use open_clip:local-dir:DIR")
    if s.weights in tags:
        try:
            path = Path(download_pretrained(get_pretrained_cfg(arch, s.weights)))
        except Exception as e:  # huggingface_hub / urllib errors when offline or unreachable
            raise offline_hint(e, what, "give --weights FILE or open_clip:local-dir:DIR") from None
        return arch, {"pretrained": s.weights}, path, f"tag {s.weights}"
    path = local_file(s.weights, f"{what} --weights (not a file, nor a tag: {listed})")
    overlay, source = _tag_preprocess(arch, what)
    force = {f"image_{k}": overlay[k] for k in overlay}
    return arch, {"pretrained": str(path), **force}, path, source


def _pool(visual: nn.Module, pool: str, what: str) -> str:
    """Apply ``pool`` to the tower's final pooling; return what it pools with."""
    trunk = getattr(visual, "trunk", None)
    if trunk is not None:  # a timm tower
        if pool != "default":
            trunk.reset_classifier(0, global_pool=TIMM_POOL[pool])
        gp = trunk.global_pool
        name = gp if isinstance(gp, str) else getattr(gp, "pool_type", "unknown")
        return {"token": "cls"}.get(name, name)
    if getattr(visual, "attn_pool", None) is not None:
        if pool != "default":
            raise UserError(f"{what}: this tower pools with attention; pool={pool} needs extract.layer=-1")
        return "attentional"
    if pool != "default":
        visual.pool_type = OPENCLIP_POOL[pool]
    return {"tok": "cls"}.get(visual.pool_type, visual.pool_type)


def load_openclip(spec: BackboneSpec, s: FrozenSettings) -> FrozenBackbone:
    """``open_clip:ARCH`` (see the module docstring)."""
    what = f"--backbone {spec}"
    model_name, kwargs, path, source = _resolve(spec, s, what)
    try:
        # pretrained_text=False: only the image tower is used; a random init must not fetch a text tower's weights.
        model, _, preprocess = open_clip.create_model_and_transforms(model_name, pretrained_text=False, **kwargs)
    except OSError as e:  # a Hugging Face text tower's config or tokenizer, fetched even for a random init
        raise offline_hint(e, what, "run it once on a connected machine, or use open_clip:local-dir:DIR") from None
    except RuntimeError as e:
        if spec.name.startswith("hf-hub:"):
            raise offline_hint(e, what, "download the repo on a connected machine, or save it as a folder and use "
                                        "open_clip:local-dir:DIR") from None
        raise UserError(f"{what}: {str(e).strip().splitlines()[0][:300]}") from None
    visual = model.visual
    index = block_index(s.layer)
    pooling = _pool(visual, s.pool, what) if index is None else None
    module = visual if index is None else OpenClipBlock(visual, index, s.pool, what)
    cfg = {k: list(v) if isinstance(v, tuple) else v for k, v in visual.preprocess_cfg.items()}
    size = tuple(cfg["size"]) if isinstance(cfg["size"], list) else (cfg["size"], cfg["size"])
    dim = probe_dim(module, size, what)
    if index is not None:
        pooling = s.pool if s.pool != "default" else "cls"  # open_clip towers keep their class token
    pre = from_torchvision(preprocess, {"library": "open_clip", **cfg, "source": source})
    return FrozenBackbone(module, pre, {
        "library": "open_clip", "name": spec.name, **weights_record(path),
        "pooling": pooling, "output": "image embedding (after the projection)" if index is None else "block output",
        "dim": dim, "image_size": int(size[-1]), "mean": cfg["mean"], "std": cfg["std"], "preprocess": pre.record})

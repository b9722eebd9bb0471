"""``hf:PATH_OR_ID``: a Hugging Face ``transformers`` vision model (``AutoModel``) with its own image processor
(``AutoImageProcessor``), from a folder saved with ``save_pretrained`` or a hub id (downloaded only when online
and the library's cache rules allow). Needs the ``hf`` extra.

Features: models with an image embedding (CLIP, SigLIP, ALIGN: ``get_image_features``) give it; others their
``pooler_output`` when the checkpoint holds the pooler's weights, else the pooled last hidden state. Any
checkpoint key the model misses (other than an absent pooler) stops the extraction: a half-loaded backbone is
never used.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch import nn

from dsbias.errors import UserError
from dsbias.models.frozen_base import (
    FrozenBackbone,
    FrozenSettings,
    block_index,
    offline_hint,
    probe_dim,
    weights_record,
)
from dsbias.models.pooling import pool_map, pool_tokens
from dsbias.models.preprocess import from_processor
from dsbias.models.spec import BackboneSpec

logger = logging.getLogger(__name__)


class HFEncoder(nn.Module):
    """A ``transformers`` vision model as ``[B, 3, H, W] -> [B, D]`` (see the module docstring).

    Args:
        model: The ``AutoModel``.
        index: Block index (None: the final embedding).
        pool: ``default``, ``cls`` or ``avg``.
        use_pooler: Return ``pooler_output`` at the final layer (``default`` pooling, pooler weights loaded).
        what: The spec, for error messages.
    """

    def __init__(self, model: nn.Module, index: int | None, pool: str, use_pooler: bool, what: str) -> None:
        super().__init__()
        self.model, self.index, self.pool, self.use_pooler, self.what = model, index, pool, use_pooler, what
        self.image_features = index is None and hasattr(model, "get_image_features")
        # Blocks of a vision-language model (CLIP, SigLIP): its vision tower alone (the text tower needs text).
        self.tower = getattr(model, "vision_model", model) if hasattr(model, "get_image_features") else model
        cfg = getattr(model.config, "vision_config", model.config)
        p = getattr(cfg, "patch_size", None)
        self.patch = (p, p) if isinstance(p, int) else tuple(p) if p else None
        self.prefix = 0  # class/register tokens seen in the last pooled forward (for the record)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.image_features:
            out = self.model.get_image_features(pixel_values=x)
            return out if isinstance(out, torch.Tensor) else out.pooler_output  # [B, D]
        out = self.tower(pixel_values=x, output_hidden_states=self.index is not None)
        if self.index is None:
            if self.use_pooler:
                return out.pooler_output.flatten(1)  # CNNs give [B, C, 1, 1]
            h = out.last_hidden_state
        else:  # hidden_states[0] is the embedding, [k + 1] the output of block k
            h = out.hidden_states[self.index + 1 if self.index >= 0 else self.index]
        if h.ndim == 4:  # a CNN's feature map [B, C, H, W]
            return pool_map(h, None, self.pool, self.what)
        grid = (x.shape[2] // self.patch[0]) * (x.shape[3] // self.patch[1]) if self.patch else h.shape[1]
        self.prefix = h.shape[1] - grid
        return pool_tokens(h, self.prefix, self.pool, self.what)  # [B, L, C], class/register tokens first


def _load(src: str, pretrained: bool, what: str, local: bool) -> tuple[Any, nn.Module, set[str]]:
    from transformers import AutoConfig, AutoImageProcessor, AutoModel

    try:
        processor = AutoImageProcessor.from_pretrained(src)
        if not pretrained:
            return processor, AutoModel.from_config(AutoConfig.from_pretrained(src)), set()
        model, info = AutoModel.from_pretrained(src, output_loading_info=True)
    except (OSError, ValueError) as e:
        if local:
            raise UserError(f"{what}: {str(e).strip().splitlines()[0][:300]}") from None
        raise offline_hint(e, what, f"download {src} on a connected machine into the cache, or give a folder saved "
                                    "with save_pretrained (config.json, the weights, preprocessor_config.json) as "
                                    "hf:/path/to/folder") from None
    if info.get("mismatched_keys") or [k for k in info["missing_keys"] if not k.startswith("pooler.")]:
        missing = sorted(k for k in info["missing_keys"] if not k.startswith("pooler."))
        raise UserError(f"{what}: the checkpoint does not fit {type(model).__name__}: missing {missing[:5]}, "
                        f"mismatched {sorted(map(str, info.get('mismatched_keys', [])))[:5]}")
    if info["unexpected_keys"]:
        logger.info("%s: checkpoint keys not used by %s (a task head): %s", what, type(model).__name__,
                    sorted(info["unexpected_keys"])[:5])
    return processor, model, {k for k in info["missing_keys"] if k.startswith("pooler.")}


def _weights(src: str, local: bool) -> dict[str, Any]:
    if local:
        return weights_record(src)
    from huggingface_hub import try_to_load_from_cache

    for filename in ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin"):
        hit = try_to_load_from_cache(src, filename)
        if isinstance(hit, str):
            return {**weights_record(Path(hit).parent), "weights_source": f"hf-hub:{src}"}
    return {"weights": None, "checkpoint_sha256": None, "weights_source": f"hf-hub:{src}"}


def load_hf(spec: BackboneSpec, s: FrozenSettings) -> FrozenBackbone:
    """``hf:PATH_OR_ID`` (see the module docstring)."""
    what = f"--backbone {spec}"
    if s.weights:
        raise UserError(f"{what}: a model folder or hub id carries its own weights; drop --weights")
    local = Path(spec.name).expanduser().is_dir()
    src = str(Path(spec.name).expanduser()) if local else spec.name
    pretrained = s.init == "pretrained"
    processor, model, missing_pooler = _load(src, pretrained, what, local)
    index = block_index(s.layer)
    if index is None and s.pool != "default" and hasattr(model, "get_image_features"):
        raise UserError(f"{what}: the image embedding has the model's own pooling; for pool={s.pool} use "
                        "extract.layer=-1 (the last block's tokens)")
    pre = from_processor(processor, {"library": "transformers", "processor": type(processor).__name__,
                                     **json.loads(json.dumps(processor.to_dict(), default=str))})
    size = tuple(pre.full(Image.new("RGB", (64, 64))).shape[1:])
    with torch.no_grad():
        out = model.eval()(pixel_values=torch.zeros(1, 3, *size)) if not hasattr(model, "get_image_features") else {}
    has_pooler = getattr(out, "pooler_output", None) is not None and not missing_pooler
    use_pooler = index is None and s.pool == "default" and has_pooler
    module = HFEncoder(model, index, s.pool, use_pooler, what)
    dim = probe_dim(module, size, what)
    pooling = ("image embedding" if module.image_features else "pooler_output" if use_pooler
               else s.pool if s.pool != "default" else "cls" if module.prefix > 0 else "avg")
    return FrozenBackbone(module, pre, {
        "library": "transformers", "name": spec.name, "class": type(model).__name__,
        **(_weights(src, local) if pretrained else {"weights": None, "checkpoint_sha256": None}),
        "pooling": pooling, "dim": dim, "image_size": int(size[-1]), "mean": pre.record["mean"],
        "std": pre.record["std"], "preprocess": pre.record})

"""``timm:NAME``: a timm model with a local weights file (``--weights``), timm's published weights (fetched through
the Hugging Face hub cache) or a random init, and timm's own eval preprocessing
(``resolve_data_config`` + ``create_transform``).

Weights load the way timm loads them (``load_state_dict``, the model's ``checkpoint_filter_fn`` that converts
original DINOv2 / OpenAI CLIP / MAE checkpoints and resamples position embeddings), but strictly: only the
classifier may be absent or extra, every other missing or unexpected key is an error.
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path
from typing import Any

import timm
import torch
from timm.data import create_transform, resolve_data_config
from torch import nn

from dsbias.errors import UserError
from dsbias.models import convnext_tiny  # noqa: F401  (registers dsbias's tiny ConvNeXts with timm)
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

TIMM_POOL = {"cls": "token", "avg": "avg"}


class TimmBlock(nn.Module):
    """The output of block ``index`` of a timm model (``forward_intermediates``), pooled: ``[B, 3, H, W] -> [B, C]``."""

    def __init__(self, net: nn.Module, index: int, pool: str, what: str) -> None:
        super().__init__()
        if not hasattr(net, "forward_intermediates"):
            raise UserError(f"{what}: this timm model has no forward_intermediates; use extract.layer=final")
        self.net, self.index, self.pool, self.what = net, index, pool, what
        self.prefix = "return_prefix_tokens" in inspect.signature(net.forward_intermediates).parameters

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kw = {"return_prefix_tokens": True} if self.prefix else {}
        out = self.net.forward_intermediates(x, indices=[self.index], intermediates_only=True, **kw)[0]
        fmap, prefix = out if self.prefix else (out, None)  # [B, C, H, W], [B, P, C]
        return pool_map(fmap, prefix, self.pool, self.what)


def hub_weights(name: str, what: str) -> tuple[Path, str]:
    """timm's published weights for ``name`` as a local file, through the Hugging Face hub cache (downloaded only
    when online and the cache rules allow). Returns the file and where it came from.

    Raises:
        UserError: No weights on the hub for this name, or offline without them in the cache.
    """
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

    cfg = timm.models.get_pretrained_cfg(name)
    if cfg is None or not cfg.hf_hub_id:
        url = f" (they are at {cfg.url})" if cfg is not None and cfg.url else ""
        raise UserError(f"{what}: timm publishes no hub weights for this name{url}; give --weights FILE, or "
                        "extract.init=random")
    last: Exception | None = None
    for filename in ([cfg.hf_hub_filename] if cfg.hf_hub_filename else ["model.safetensors", "pytorch_model.bin"]):
        try:
            return Path(hf_hub_download(cfg.hf_hub_id, filename)), f"hf-hub:{cfg.hf_hub_id}/{filename}"
        except LocalEntryNotFoundError as e:  # offline or unreachable (a subclass of EntryNotFoundError)
            raise offline_hint(e, what, f"download {cfg.hf_hub_id} on a connected machine into the cache, or give "
                                        "--weights FILE") from None
        except EntryNotFoundError as e:
            last = e
        except OSError as e:
            raise offline_hint(e, what, "give --weights FILE") from None
    raise UserError(f"{what}: no weights file in hub repo {cfg.hf_hub_id} ({str(last).splitlines()[0]})")


def load_weights_strict(net: nn.Module, path: Path, what: str) -> None:
    """Load a ``.safetensors`` / timm checkpoint (``.pth``, ``.pth.tar``; the plain ``state_dict``, not EMA) or a
    big_vision ``.npz`` into ``net`` with timm's conversion, strictly but for the classifier.

    Raises:
        UserError: Unreadable, or missing / unexpected keys (the first five of each are named).
    """
    if path.suffix == ".npz" and hasattr(net, "load_pretrained"):
        net.load_pretrained(str(path))  # big_vision checkpoints: timm's own loader
        return
    try:
        state = timm.models.load_state_dict(str(path), use_ema=False, weights_only=True)
    except Exception as e:  # a corrupt file or a pickle with code in it: say which file
        first = str(e).strip().splitlines()[0][:150] if str(e).strip() else ""
        raise UserError(f"{what}: cannot read weights {path} ({type(e).__name__}: {first}); a checkpoint that "
                        "pickles more than tensors does not load safely: re-save its state_dict, e.g. as "
                        ".safetensors") from None
    filter_fn = getattr(sys.modules[type(net).__module__], "checkpoint_filter_fn", None)
    if filter_fn is not None:
        state = filter_fn(state, net)
    classifier = net.pretrained_cfg.get("classifier") or ()
    heads = tuple(f"{c}." for c in ([classifier] if isinstance(classifier, str) else classifier))
    state = {k: v for k, v in state.items() if not (heads and k.startswith(heads))}
    result = net.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if not (heads and k.startswith(heads))]
    if missing or result.unexpected_keys:
        raise UserError(f"{what}: weights {path} do not fit this architecture: missing keys {missing[:5]}, "
                        f"unexpected keys {result.unexpected_keys[:5]} (another model name or extract.kwargs?)")


def pool_name(net: nn.Module) -> str:
    gp = getattr(net, "global_pool", None)
    if gp is None and hasattr(net, "head"):
        gp = getattr(net.head, "global_pool", None)
    name = gp if isinstance(gp, str) else getattr(gp, "pool_type", "unknown")
    return {"token": "cls"}.get(name, name)


def _preprocess_config(net: nn.Module) -> dict[str, Any]:
    """timm's eval data config for the model, with the input size the model was built at (``img_size``)."""
    cfg = dict(resolve_data_config({}, model=net))
    img_size = getattr(getattr(net, "patch_embed", None), "img_size", None)
    dynamic = getattr(net, "dynamic_img_size", False)
    if img_size is not None and not dynamic and tuple(cfg["input_size"][1:]) != tuple(img_size):
        cfg["input_size"] = (3, *img_size)  # built with img_size=...: pretrained_cfg still says its default
    return cfg


def load_timm(spec: BackboneSpec, s: FrozenSettings) -> FrozenBackbone:
    """``timm:NAME`` (see the module docstring)."""
    what = f"--backbone {spec}"
    try:
        net = timm.create_model(spec.name, pretrained=False, num_classes=0, **s.kwargs)
    except RuntimeError as e:
        raise UserError(f"{what}: {e} (timm.list_models('*pattern*') lists the names)") from None
    except TypeError as e:
        raise UserError(f"{what}: extract.kwargs {s.kwargs}: {e}") from None
    source = None
    path = None
    if s.init == "pretrained":
        if s.weights:
            path = local_file(s.weights, f"{what} --weights")
        else:
            path, source = hub_weights(spec.name, what)
        load_weights_strict(net, path, what)
    if s.pool != "default":
        try:
            net.reset_classifier(0, global_pool=TIMM_POOL[s.pool])
        except (AssertionError, ValueError, TypeError) as e:
            raise UserError(f"{what}: pool={s.pool} is not possible for this model ({e}); use default or avg") from None
    cfg = _preprocess_config(net)
    index = block_index(s.layer)
    module = net if index is None else TimmBlock(net, index, s.pool, what)
    dim = probe_dim(module, tuple(cfg["input_size"][1:]), what)
    prefix = getattr(net, "num_prefix_tokens", 0) > 0
    pooling = pool_name(net) if index is None else (s.pool if s.pool != "default" else "cls" if prefix else "avg")
    plain = {k: list(v) if isinstance(v, tuple) else v for k, v in cfg.items()}
    preprocess = from_torchvision(create_transform(**cfg, is_training=False), {"library": "timm", **plain})
    return FrozenBackbone(module, preprocess, {
        "library": "timm", "name": spec.name, "kwargs": dict(s.kwargs), **weights_record(path),
        **({"weights_source": source} if source else {}), "pooling": pooling, "dim": dim,
        "image_size": int(cfg["input_size"][-1]), "crop_pct": cfg["crop_pct"], "mean": plain["mean"],
        "std": plain["std"], "preprocess": preprocess.record})

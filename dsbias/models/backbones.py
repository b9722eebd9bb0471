"""Backbones: stock timm (or torchvision) models that map images ``[B, 3, H, W]`` to features ``[B, D]``.

A trained backbone is exported as two files: ``backbone.safetensors`` (the plain ``state_dict``, no pickle)
and ``backbone.json`` (how to rebuild it: library, name, kwargs, pooling, input size, normalisation, source
names). :func:`load_backbone` rebuilds the model from the JSON and loads the weights strictly, so a key
that is missing or unexpected is an error, never silently ignored.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import safetensors
import safetensors.torch
import timm
import torch
from torch import nn

from dsbias.errors import MissingFileError, UserError
from dsbias.models import convnext_tiny  # noqa: F401  (registers the tiny ConvNeXt ladder with timm)
from dsbias.models.config import ModelConfig
from dsbias.runs import RunDir, atomic_path, read_json, write_json
from dsbias.typedconfig import ConfigError

logger = logging.getLogger(__name__)
BACKBONE_FORMAT_VERSION = 1


def _timm_kwargs(model: ModelConfig, image_size: int) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"num_classes": 0, **model.kwargs}
    if model.pool:
        kwargs["global_pool"] = model.pool
    return kwargs


def create_backbone(model: ModelConfig, image_size: int) -> nn.Module:
    """Build a randomly initialised backbone whose forward returns pooled features ``[B, D]``.

    ViT-style timm models get ``img_size=image_size`` unless the config sets it. Nothing is downloaded:
    ``pretrained=False``; ``model.weights`` (a local file) is loaded strictly when given.

    Args:
        model: Model config (timm name, kwargs, pooling, optional local weights).
        image_size: Network input side.

    Returns:
        The backbone, with ``num_features`` (D) and ``dsbias_spec`` (what :func:`save_backbone` records).
    """
    if model.name.startswith("torchvision."):
        from dsbias.models.torchvision_backbones import create_torchvision_backbone

        net, spec = create_torchvision_backbone(model, image_size)
    else:
        if ":" not in model.name and not timm.is_model(model.name):  # hf-hub:, local-dir: are timm's to check
            raise ConfigError(f"model.name={model.name}: not a timm model (timm.list_models('*{model.name[:8]}*') "
                              "lists the near ones; torchvision models are torchvision.<builder>)")
        kwargs = _timm_kwargs(model, image_size)
        try:
            if "img_size" not in kwargs:
                try:
                    net = timm.create_model(model.name, pretrained=False, img_size=image_size, **kwargs)
                    kwargs["img_size"] = image_size
                except TypeError:  # a model without an input-size argument (CNNs): any size works
                    net = timm.create_model(model.name, pretrained=False, **kwargs)
            else:
                net = timm.create_model(model.name, pretrained=False, **kwargs)
        except (TypeError, AssertionError, ValueError) as e:  # timm's own checks of the model's arguments
            raise ConfigError(f"model.kwargs={dict(model.kwargs)}: {model.name} cannot be built with them "
                              f"({type(e).__name__}: {e}) (fix or drop the kwargs)") from None
        spec = {"library": "timm", "name": model.name, "kwargs": kwargs}
    _check_input_size(net, model.name, image_size)
    if model.weights:
        load_weights(net, model.weights)
    net.dsbias_spec = spec  # type: ignore[assignment]
    return net


def _check_input_size(net: nn.Module, name: str, image_size: int) -> None:
    """Stop at build time, not at the first training step, when ``image_size`` is too small for ``net``.

    Only an input smaller than the network's total stride can fail (a ConvNeXt's 2x2 downsampling of a 1-pixel
    map); such an input is tried once (one tiny image: no cost), so a network that copes with it still builds.

    Raises:
        ConfigError: The network cannot take the input (names the size it needs).
    """
    info = getattr(net, "feature_info", None)
    reduction = info[-1].get("reduction", 1) if isinstance(info, list) and info else 1
    if image_size >= reduction:
        return
    was_training = net.training
    try:
        with torch.no_grad():
            out = net.eval()(torch.zeros(1, 3, image_size, image_size))
        ok = out.numel() > 0 and bool(torch.isfinite(out).all())
    except (RuntimeError, ValueError, AssertionError):
        ok = False
    finally:
        net.train(was_training)
    if not ok:
        raise ConfigError(f"data.image_size={image_size}: too small for model.name={name} (it downsamples by "
                          f"{reduction}) (use data.image_size >= {reduction}, or a model that downsamples less)")


def read_safetensors(path: str | Path, what: str) -> dict[str, torch.Tensor]:
    """A ``.safetensors`` file's tensors.

    Raises:
        UserError: The file is truncated or not a safetensors file (names it and ``what`` reads it).
    """
    try:
        return safetensors.torch.load_file(str(path))
    except (safetensors.SafetensorError, OSError) as e:
        raise UserError(f"{what}: {path} is not a readable safetensors file ({e}) (truncated or overwritten? "
                        "re-export it by rerunning the run that wrote it, or give another file)") from None


def load_weights(net: nn.Module, path: str | Path) -> None:
    """Load a local ``.safetensors`` (or weights-only ``.pth``) file strictly into ``net``.

    Raises:
        MissingFileError: No such file.
        UserError: Unreadable; missing or unexpected keys (listed, at most 5 each).
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise MissingFileError(f"model.weights: {path} does not exist (fix the path)")
    if path.suffix == ".safetensors":
        state = read_safetensors(path, "model.weights")
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
        for key in ("model", "state_dict"):  # common wrappers (MAE: "model"; MoCo: "state_dict")
            if isinstance(state, dict) and key in state and isinstance(state[key], dict):
                state = state[key]
    result = net.load_state_dict(state, strict=False)
    # Only the classifier may be absent: num_classes=0 removes it, so its keys are unexpected here.
    unexpected = [k for k in result.unexpected_keys if not k.startswith(("head.", "fc.", "classifier."))]
    if result.missing_keys or unexpected:
        raise ConfigError(f"model.weights: {path} does not fit model.name: missing keys {result.missing_keys[:5]}, "
                          f"unexpected keys {unexpected[:5]} (give weights of this architecture)")


def save_backbone(run_root: str | Path, net: nn.Module, meta: dict[str, Any]) -> None:
    """Write ``backbone.safetensors`` and ``backbone.json`` (JSON last: it marks the export complete).

    Args:
        run_root: Run directory.
        net: The backbone (unwrapped: no DDP/compile prefixes).
        meta: Extra fields for the JSON (image_size, mean, std, crop_pct, sources, method...).
    """
    run = RunDir.at(run_root)
    state = {k: v.detach().cpu().contiguous().clone() for k, v in net.state_dict().items()}
    with atomic_path(run.backbone_weights, suffix=".safetensors") as tmp:
        safetensors.torch.save_file(state, str(tmp))
    spec = getattr(net, "dsbias_spec", None)
    assert spec is not None, "backbone was not built by create_backbone"
    dim = int(getattr(net, "num_features", 0)) or None
    write_json(run.backbone_meta,
               {"format_version": BACKBONE_FORMAT_VERSION, **spec, "dim": dim, **meta})


def load_backbone(path: str | Path, weights: bool = True) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a backbone from a run dir (or a ``backbone.json`` path) and load its weights strictly.

    Args:
        path: Run dir or ``backbone.json``.
        weights: False leaves the rebuilt architecture at its (seeded) random init.

    Returns:
        The backbone in eval mode and its ``backbone.json`` contents.
    """
    path = Path(path)
    meta_path = path if path.suffix == ".json" else RunDir.at(path).backbone_meta
    if not meta_path.is_file():
        raise MissingFileError(f"{meta_path}: no exported backbone (did training finish? rerun it to export)")
    try:
        meta = read_json(meta_path)
        library, name, kwargs = meta["library"], meta["name"], meta["kwargs"]
    except (ValueError, KeyError, TypeError) as e:
        raise UserError(f"{meta_path}: not a backbone record ({type(e).__name__}: {e}) (rerun the run that wrote "
                        "it to export it again)") from None
    if library == "timm":
        net = timm.create_model(name, pretrained=False, **kwargs)
    else:
        from dsbias.models.torchvision_backbones import rebuild_torchvision_backbone

        net = rebuild_torchvision_backbone(meta)
    if weights:
        state = read_safetensors(RunDir.at(meta_path.parent).backbone_weights, "backbone")
        try:
            net.load_state_dict(state, strict=True)
        except RuntimeError as e:  # missing / unexpected keys or shapes: the two files are not one export
            first = str(e).strip().splitlines()[0]
            raise UserError(f"{meta_path.parent}: backbone.safetensors does not match backbone.json ({first}) "
                            "(rerun the run that wrote them to export both again)") from None
    net.dsbias_spec = {k: meta[k] for k in ("library", "name", "kwargs")}  # type: ignore[assignment]
    return net.eval(), meta

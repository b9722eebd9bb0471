"""Tiny stand-ins for hub backbones, saved the way users get the real ones: a timm ViT as a ``.safetensors`` file,
an open_clip CLIP as a model-config ``.json`` + weights file and as a ``local-dir`` (with its own preprocessing),
a ``transformers`` ViT with ``save_pretrained``. For trying ``--backbone`` offline and for the tests: nothing is
downloaded, and each comes back as an ``extract`` entry (``backbone``, ``weights``, ``kwargs``). Their weights are
random too, drawn with seed 1 by default: not ``train.seed``'s 0, or ``extract.init=random`` would rebuild the
very same weights.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import safetensors.torch
import timm
import torch

# 32-px inputs, 8-px patches, 2 blocks: a forward of a toy batch takes milliseconds on a CPU.
TIMM_KWARGS = {"img_size": 32, "patch_size": 8, "depth": 2, "embed_dim": 48, "num_heads": 3}
OPENCLIP_CFG = {"embed_dim": 24, "vision_cfg": {"image_size": 32, "layers": 2, "width": 48, "patch_size": 8,
                                                "head_width": 16},
                "text_cfg": {"context_length": 8, "vocab_size": 64, "width": 16, "heads": 2, "layers": 1}}
# Deliberately not open_clip's defaults (OpenAI mean/std, bicubic, shortest side): a local-dir must carry them.
OPENCLIP_PREPROCESS = {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "interpolation": "bilinear",
                       "resize_mode": "squash"}


def save_tiny_timm(folder: str | Path, seed: int = 1) -> dict[str, Any]:
    """A ViT (``vit_tiny_patch16_224`` at 32 px, classifier included) saved to ``folder/timm_vit.safetensors``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    net = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=10, **TIMM_KWARGS)
    path = folder / "timm_vit.safetensors"
    safetensors.torch.save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
    return {"backbone": "timm:vit_tiny_patch16_224", "weights": str(path), "kwargs": dict(TIMM_KWARGS)}


def save_tiny_openclip(folder: str | Path, seed: int = 1) -> list[dict[str, Any]]:
    """A CLIP from a tiny model config: ``folder/tiny-clip.json`` + ``tiny-clip.safetensors`` (open_clip's default
    preprocessing) and ``folder/local-dir/`` (the same weights with :data:`OPENCLIP_PREPROCESS`)."""
    import open_clip

    folder = Path(folder)
    (folder / "local-dir").mkdir(parents=True, exist_ok=True)
    cfg_file = folder / "tiny-clip.json"
    cfg_file.write_text(json.dumps(OPENCLIP_CFG))
    open_clip.add_model_config(cfg_file)
    torch.manual_seed(seed)
    model = open_clip.create_model("tiny-clip")
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    safetensors.torch.save_file(state, str(folder / "tiny-clip.safetensors"))
    safetensors.torch.save_file(state, str(folder / "local-dir" / "open_clip_model.safetensors"))
    (folder / "local-dir" / "open_clip_config.json").write_text(
        json.dumps({"model_cfg": OPENCLIP_CFG, "preprocess_cfg": OPENCLIP_PREPROCESS}))
    return [{"backbone": f"open_clip:{cfg_file}", "weights": str(folder / "tiny-clip.safetensors")},
            {"backbone": f"open_clip:local-dir:{folder / 'local-dir'}"}]


def save_tiny_hf(folder: str | Path, seed: int = 1) -> dict[str, Any]:
    """A ``transformers`` ViT (no pooler) and its image processor, ``save_pretrained`` into ``folder``."""
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    torch.manual_seed(seed)
    cfg = ViTConfig(image_size=32, patch_size=8, hidden_size=48, num_hidden_layers=2, num_attention_heads=3,
                    intermediate_size=96)
    ViTModel(cfg, add_pooling_layer=False).save_pretrained(folder)
    ViTImageProcessor(size={"height": 32, "width": 32}, image_mean=[0.45, 0.45, 0.45],
                      image_std=[0.25, 0.25, 0.25]).save_pretrained(folder)
    return {"backbone": f"hf:{folder}"}


def save_tiny_backbones(folder: str | Path, seed: int = 1) -> list[dict[str, Any]]:
    """All of the above under ``folder`` (the kinds whose extra is installed); their ``extract`` entries."""
    import importlib.util

    folder = Path(folder)
    entries = [save_tiny_timm(folder / "timm", seed)]
    if importlib.util.find_spec("open_clip") is not None:
        entries += save_tiny_openclip(folder / "open_clip", seed)
    if importlib.util.find_spec("transformers") is not None:
        entries.append(save_tiny_hf(folder / "hf_vit", seed))
    return entries

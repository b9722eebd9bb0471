"""Frozen backbones from a spec (:mod:`dsbias.models.spec`): any timm, open_clip or Hugging Face vision model, or
a dsbias run's export, as a module ``[B, 3, H, W] -> [B, D]`` with its own preprocessing and a record of what it
is (spec, weights and their sha256, pooling, layer, preprocessing) for ``meta.json``.

One loader per library (:mod:`.frozen_timm`, :mod:`.frozen_openclip`, :mod:`.frozen_hf`), imported only when
its spec is used, so a missing optional extra is one line (:func:`dsbias.models.spec.require_extra`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import torch

from dsbias.models.frozen_base import FrozenBackbone, FrozenSettings
from dsbias.models.spec import BackboneSpec, parse_spec, require_extra

logger = logging.getLogger(__name__)


def _loader(kind: str) -> Callable[[BackboneSpec, FrozenSettings], FrozenBackbone]:
    if kind == "run":
        from dsbias.models.frozen_run import load_run
        return load_run
    if kind == "timm":
        from dsbias.models.frozen_timm import load_timm
        return load_timm
    if kind == "open_clip":
        from dsbias.models.frozen_openclip import load_openclip
        return load_openclip
    from dsbias.models.frozen_hf import load_hf
    return load_hf


def load_frozen(settings: FrozenSettings, seed: int = 0) -> FrozenBackbone:
    """Build the backbone ``settings.backbone`` names, frozen, with its preprocessing and record.

    Args:
        settings: The ``extract`` section (spec, weights, init, pool, layer, kwargs).
        seed: Seeds a random init (``init=random``), so every process and every rerun builds the same weights.

    Raises:
        UserError: A missing extra, a missing file, an offline hub model, weights that do not fit the
            architecture, or a pooling / layer the model does not have.
    """
    spec = parse_spec(settings.backbone)
    require_extra(spec)
    torch.manual_seed(seed)  # only a random init draws from it; a loaded model ends up the same either way
    fb = _loader(spec.kind)(spec, settings)
    fb.module.eval().requires_grad_(False)
    fb.record = {"backbone": str(spec), "init": settings.init, **({"init_seed": seed} if settings.init == "random"
                                                                   else {}),
                 "pool": settings.pool, "layer": settings.layer, **fb.record}
    logger.info("backbone %s (%s init): pooling %s, layer %s, weights %s", spec, settings.init,
                fb.record.get("pooling"), settings.layer, fb.record.get("weights"))
    return fb

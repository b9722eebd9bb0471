"""The tiny ConvNeXt ladder of Liu & He's model-size study (Fig. 2), registered as timm models.

The follow-up's code (``boyazeng/understand_bias/models/convnext.py``) adds four variants below timm's
``convnext_atto``; the smallest has about 7K parameters and still names YFCC/CC/DataComp at 72.4%. They are
plain timm :class:`~timm.models.convnext.ConvNeXt` networks with other depths and widths, so importing this
module makes ``timm.create_model("convnext_atto_1_10_uniform", num_classes=3)`` work like any timm name.

Parameters with a 3-class head (notes §2.2): 7.4K, 125K, 471K, 872K.
"""

from __future__ import annotations

from typing import Any

from timm.models import generate_default_cfgs, register_model
from timm.models.convnext import ConvNeXt, _cfg, _create_convnext

from dsbias.typedconfig import ConfigError

# name -> (depths, dims); the official ConvNeXt block (Linear MLP, layer scale 1e-6), as in the follow-up.
TINY_CONVNEXTS: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "convnext_atto_1_10_uniform": ((1, 1, 1, 1), (10, 10, 10, 10)),
    "convnext_atto_1_10": ((1, 1, 3, 1), (10, 20, 40, 80)),
    "convnext_atto_1_20": ((1, 1, 3, 1), (20, 40, 80, 160)),
    "convnext_atto_2_20": ((2, 2, 6, 2), (20, 40, 80, 160)),
}

# timm reads a module-level ``default_cfgs`` when registering (input size, crop_pct, mean/std; no weights URL).
default_cfgs = generate_default_cfgs({name: _cfg() for name in TINY_CONVNEXTS})


def _create(name: str, pretrained: bool, **kwargs: Any) -> ConvNeXt:
    if pretrained:
        raise ConfigError(f"{name}: no pretrained weights exist (use model.weights=FILE)")
    depths, dims = TINY_CONVNEXTS[name]
    return _create_convnext(name, pretrained=False, **dict(dict(depths=depths, dims=dims), **kwargs))


@register_model
def convnext_atto_1_10_uniform(pretrained: bool = False, **kwargs: Any) -> ConvNeXt:
    """ConvNeXt, depths 1-1-1-1, width 10 in every stage (~7.4K parameters with 3 classes)."""
    return _create("convnext_atto_1_10_uniform", pretrained, **kwargs)


@register_model
def convnext_atto_1_10(pretrained: bool = False, **kwargs: Any) -> ConvNeXt:
    """ConvNeXt, depths 1-1-3-1, widths 10-20-40-80 (~125K parameters)."""
    return _create("convnext_atto_1_10", pretrained, **kwargs)


@register_model
def convnext_atto_1_20(pretrained: bool = False, **kwargs: Any) -> ConvNeXt:
    """ConvNeXt, depths 1-1-3-1, widths 20-40-80-160 (~471K parameters)."""
    return _create("convnext_atto_1_20", pretrained, **kwargs)


@register_model
def convnext_atto_2_20(pretrained: bool = False, **kwargs: Any) -> ConvNeXt:
    """ConvNeXt, depths 2-2-6-2, widths 20-40-80-160 (~872K parameters)."""
    return _create("convnext_atto_2_20", pretrained, **kwargs)

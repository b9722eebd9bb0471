"""Pooling a block's output into one vector per image, the same way for timm, open_clip and Hugging Face models.

A block gives either tokens ``[B, L, C]`` (a ViT: ``P`` prefix tokens, class token first, then the patch tokens)
or a feature map ``[B, C, H, W]`` (a CNN, or a ViT's patch tokens laid out as a grid, with the prefix tokens
``[B, P, C]`` beside it). ``cls`` takes the class token; ``avg`` the mean over patch tokens or positions;
``default`` the class token when there is one, else the mean.
"""

from __future__ import annotations

import torch

from dsbias.errors import UserError

POOLS = ("default", "cls", "avg")


def pool_tokens(tokens: torch.Tensor, prefix: int, pool: str, what: str) -> torch.Tensor:
    """``[B, L, C]`` tokens (the first ``prefix`` of them class/register tokens) -> ``[B, C]``.

    Raises:
        UserError: ``cls`` on a model without a class token.
    """
    if pool == "cls" or (pool == "default" and prefix > 0):
        if prefix < 1:
            raise UserError(f"{what}: pool=cls, but this model has no class token; use pool=avg")
        return tokens[:, 0]
    return tokens[:, prefix:].mean(dim=1)


def pool_map(fmap: torch.Tensor, prefix_tokens: torch.Tensor | None, pool: str, what: str) -> torch.Tensor:
    """A feature map ``[B, C, H, W]`` (with optional prefix tokens ``[B, P, C]``) -> ``[B, C]``.

    Raises:
        UserError: ``cls`` without prefix tokens.
    """
    has_prefix = prefix_tokens is not None and prefix_tokens.shape[1] > 0
    if pool == "cls" or (pool == "default" and has_prefix):
        if not has_prefix:
            raise UserError(f"{what}: pool=cls, but this layer has no class token; use pool=avg")
        return prefix_tokens[:, 0]
    return fmap.mean(dim=(2, 3))

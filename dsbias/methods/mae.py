"""Masked autoencoder (He et al., "Masked Autoencoders Are Scalable Vision Learners", 2022).

Reads top to bottom like the official ``models_mae.py``: mask, encode the visible patches, decode all
patches, pixel loss on the masked ones. The encoder is the stock timm ViT from
:func:`dsbias.models.create_backbone`, wrapped (not copied) by lightly's ``MaskedVisionTransformerTIMM``,
so ``self.backbone`` exports plain timm keys. The decoder blocks are lightly's
``MaskedVisionTransformerDecoderTIMM``; the decoder embedding and the pixel head live here, as in lightly's
MAE example. ``norm_pix_loss`` is ours (lightly's examples use raw-pixel MSE).

Shapes: ``B`` images, ``N`` patches of ``p x p`` pixels, ``P`` prefix tokens (the cls token), ``K`` kept and
``M`` masked patches (``K + M = N``), ``D`` encoder and ``E`` decoder width.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from lightly.models import utils
from lightly.models.modules import MaskedVisionTransformerDecoderTIMM, MaskedVisionTransformerTIMM
from lightly.models.modules.masked_vision_transformer_timm import init_weights
from torch import nn
from torchvision import transforms as T

from dsbias.data.views import to_normalized_tensor
from dsbias.methods.base import MethodBase, MethodSettings
from dsbias.methods.config import MAEConfig
from dsbias.models.backbones import create_backbone
from dsbias.typedconfig import ConfigError


class MAE(MethodBase):
    """MAE around a timm ViT.

    Args:
        vit: A timm ``VisionTransformer`` (``num_classes=0``) with a class token.
        mae: The MAE settings (mask ratio, loss, decoder size).
        image_size: Training input side (a multiple of the patch size).
        fresh: The ViT is newly initialised: apply MAE's init (xavier, fixed 2D sin-cos position
            embedding). False when ``model.weights`` were loaded: those weights are kept as they are.
    """

    def __init__(self, vit: nn.Module, mae: MAEConfig, image_size: int, fresh: bool = True) -> None:
        super().__init__()
        if not hasattr(vit, "patch_embed") or not getattr(vit, "has_class_token", False):
            raise ConfigError(f"method=mae: model '{type(vit).__name__}' is not a timm ViT with a class token")
        if getattr(vit, "no_embed_class", False) or getattr(vit, "dynamic_img_size", False):
            raise ConfigError("method=mae: ViTs with no_embed_class or dynamic_img_size are not supported")
        self.patch_size = int(vit.patch_embed.patch_size[0])
        if image_size % self.patch_size:
            raise ConfigError(f"data.image_size={image_size}: not a multiple of the patch size {self.patch_size}")
        self.mask_ratio = mae.mask_ratio
        self.norm_pix_loss = mae.norm_pix_loss
        self.image_size = image_size
        self.min_scale = mae.min_scale
        num_patches = vit.patch_embed.num_patches  # N
        self.num_prefix = vit.num_prefix_tokens  # P

        # --------------------------------------------------------------------------------------------------
        # MAE encoder: the timm ViT itself; lightly adds masking (its blocks, norm and tokens are the ViT's).
        self.encoder = MaskedVisionTransformerTIMM(
            vit=vit,
            weight_initialization="" if fresh else "skip",
            pos_embed_initialization="sincos" if fresh else "skip",  # sincos: fixed (requires_grad=False)
        )
        # Parameters the masked encoder never uses get no gradient; DDP (without find_unused_parameters)
        # would stop on them, so freeze them. They stay at init, as in MAE's released checkpoints.
        unused = [self.encoder.mask_token] + [
            p for name in ("fc_norm", "attn_pool", "head") if getattr(vit, name, None) is not None
            for p in getattr(vit, name).parameters()
        ]
        for p in unused:
            p.requires_grad_(False)

        # --------------------------------------------------------------------------------------------------
        # MAE decoder: embed -> mask tokens + fixed sin-cos pos-embed + blocks + norm (lightly) -> pixels.
        self.decoder_embed = nn.Linear(vit.embed_dim, mae.decoder_dim)  # D -> E
        self.decoder = MaskedVisionTransformerDecoderTIMM(
            num_patches=num_patches,
            embed_dim=mae.decoder_dim,
            depth=mae.decoder_depth,
            num_heads=mae.decoder_heads,
            num_prefix_tokens=self.num_prefix,
        )
        self.decoder_pred = nn.Linear(mae.decoder_dim, self.patch_size**2 * 3)  # E -> p*p*3
        # lightly leaves these two Linear layers to the user; MAE inits them like the rest (xavier, bias 0).
        self.decoder_embed.apply(init_weights)
        self.decoder_pred.apply(init_weights)

    @property
    def backbone(self) -> nn.Module:
        """The timm ViT (exported and probed). A property, so its weights are held once in the state dict."""
        return self.encoder.vit

    # ------------------------------------------------------------------------------------------------------

    def random_masking(self, batch_size: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-sample random masking of patch tokens; prefix tokens are always kept.

        Returns:
            ``idx_keep`` ``[B, P + K]`` and ``idx_mask`` ``[B, M]``: token indices (prefix tokens first).
        """
        num_patches = self.decoder.num_patches
        keep, mask = utils.random_token_mask(  # over patches only: [B, K], [B, M]
            (batch_size, num_patches), mask_ratio=self.mask_ratio, mask_class_token=True, device=device
        )
        prefix = torch.arange(self.num_prefix, device=device).expand(batch_size, -1)  # [B, P]
        return torch.cat([prefix, keep + self.num_prefix], dim=1), mask + self.num_prefix

    def forward_encoder(self, images: torch.Tensor, idx_keep: torch.Tensor) -> torch.Tensor:
        """Encode the visible tokens: ``[B, 3, H, W] -> [B, P + K, D]``."""
        return self.encoder.encode(images, idx_keep=idx_keep)

    def forward_decoder(self, latent: torch.Tensor, idx_keep: torch.Tensor, idx_mask: torch.Tensor) -> torch.Tensor:
        """Decode the full sequence, predict the pixels of the masked patches: ``-> [B, M, p*p*3]``."""
        x = self.decoder_embed(latent)  # [B, P + K, E]
        batch, length = x.shape[0], self.decoder.sequence_length
        full = x.new_zeros(batch, length, x.shape[-1])  # [B, P + N, E]
        full = utils.set_at_index(full, idx_keep, x)  # visible tokens in place; the rest become mask tokens
        x = self.decoder(full, idx_mask=idx_mask)  # [B, P + N, E]
        x = utils.get_at_index(x, idx_mask)  # [B, M, E]
        return self.decoder_pred(x)  # [B, M, p*p*3]

    def forward_loss(self, images: torch.Tensor, pred: torch.Tensor, idx_mask: torch.Tensor) -> torch.Tensor:
        """Mean squared error on the masked patches (per-patch normalised targets if ``norm_pix_loss``)."""
        target = self.target(images, idx_mask)  # [B, M, p*p*3]
        return ((pred - target) ** 2).mean()

    def target(self, images: torch.Tensor, idx_mask: torch.Tensor) -> torch.Tensor:
        """The pixels of the masked patches, ``[B, M, p*p*3]``, normalised per patch if ``norm_pix_loss``."""
        patches = utils.patchify(images, self.patch_size)  # [B, N, p*p*3]
        target = utils.get_at_index(patches, idx_mask - self.num_prefix)  # [B, M, p*p*3]
        if self.norm_pix_loss:  # MAE: per-patch mean/var (unbiased var, as torch.var), eps 1e-6
            mean = target.mean(dim=-1, keepdim=True)
            var = target.var(dim=-1, keepdim=True)
            target = (target - mean) / (var + 1.0e-6) ** 0.5
        return target

    def forward(self, batch: Any) -> dict[str, torch.Tensor]:
        """``batch = (images [B, 3, H, W], source_id, index)``; source labels are never used."""
        images = batch[0]  # [B, 3, H, W]
        idx_keep, idx_mask = self.random_masking(images.shape[0], images.device)  # [B, P + K], [B, M]
        latent = self.forward_encoder(images, idx_keep)  # [B, P + K, D]
        pred = self.forward_decoder(latent, idx_keep, idx_mask)  # [B, M, p*p*3]
        return {"loss": self.forward_loss(images, pred, idx_mask)}

    def create_train_transform(self) -> Callable[[Any], torch.Tensor]:
        """MAE's augmentation: RandomResizedCrop(scale=(min_scale, 1), bicubic) + flip; PIL -> ``[3, H, W]``."""
        return T.Compose([
            T.RandomResizedCrop(self.image_size, scale=(self.min_scale, 1.0),
                                interpolation=T.InterpolationMode.BICUBIC),
            T.RandomHorizontalFlip(),
            to_normalized_tensor(),
        ])


def create_mae(cfg: MethodSettings, num_sources: int) -> MAE:
    """Build MAE around a fresh ``cfg.model`` ViT (source labels unused: ``num_sources`` is ignored)."""
    del num_sources
    vit = create_backbone(cfg.model, cfg.data.image_size)
    return MAE(vit, cfg.method.mae, cfg.data.image_size, fresh=cfg.model.weights is None)

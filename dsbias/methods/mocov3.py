"""MoCo v3 (Chen, Xie & He, "An Empirical Study of Training Self-Supervised Vision Transformers", 2021).

Follows the official ``moco/builder.py``: a base encoder (backbone + projector) and a predictor; a momentum
encoder (a copy of backbone + projector, no gradients) updated by EMA with a cosine momentum schedule
(0.99 -> 1); two asymmetric views (BYOL's augmentations); the InfoNCE of each query against the keys of the
other view gathered from all processes (no queue), scaled by ``2T`` and symmetrised.

lightly provides the views, the MLP blocks, the EMA and the schedule; lightly has no MoCo v3 loss (its
``NTXentLoss`` is SimCLR's), so :func:`mocov3_loss` is written here. lightly's ``MoCoProjectionHead`` ends in
an *affine* BN, v3 in ``BatchNorm1d(affine=False)``: :func:`create_mlp` builds v3's exact MLPs from lightly's
``ProjectionHead`` blocks.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from lightly.models.modules.heads import ProjectionHead
from lightly.models.utils import deactivate_requires_grad, initialize_2d_sine_cosine_positional_embedding
from lightly.models.utils import update_momentum as ema_update
from lightly.transforms import BYOLTransform, BYOLView1Transform, BYOLView2Transform
from lightly.utils.scheduler import cosine_schedule
from torch import nn

from dsbias.data.views import IMAGENET_MEAN, IMAGENET_STD
from dsbias.methods.base import MethodBase, MethodSettings
from dsbias.methods.config import MoCoV3Config
from dsbias.models.backbones import create_backbone


def create_mlp(num_layers: int, in_dim: int, hidden_dim: int, out_dim: int, last_bn: bool = True) -> nn.Module:
    """v3's ``_build_mlp``: Linear (no bias) + BN + ReLU blocks, the last one Linear + BN(affine=False)."""
    blocks: list[tuple] = []
    for i in range(num_layers):
        d_in = in_dim if i == 0 else hidden_dim
        if i < num_layers - 1:
            blocks.append((d_in, hidden_dim, nn.BatchNorm1d(hidden_dim), nn.ReLU(inplace=True)))
        else:  # "follow SimCLR's design": a parameter-free BN on the output
            bn = nn.BatchNorm1d(out_dim, affine=False) if last_bn else None
            blocks.append((d_in, out_dim, bn, None, False))
    return ProjectionHead(blocks)


def gather_keys(k: torch.Tensor) -> tuple[torch.Tensor, int]:
    """All processes' keys ``[W * B, C]`` (no gradient: ``all_gather`` has none) and this process's rank."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return k, 0
    parts = [torch.empty_like(k) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, k.contiguous())
    return torch.cat(parts), dist.get_rank()


def mocov3_loss(q: torch.Tensor, k_all: torch.Tensor, temperature: float, rank: int = 0) -> tuple[torch.Tensor, ...]:
    """MoCo v3's ``contrastive_loss``: InfoNCE of the local queries against all keys, times ``2T``.

    Args:
        q: Queries (predictor outputs) of this process, ``[B, C]``.
        k_all: Keys (momentum outputs) of every process, ``[W * B, C]``, this process's at ``rank * B``.
        temperature: Softmax temperature ``T``.
        rank: This process's rank: the positive of query i is key ``rank * B + i``.

    Returns:
        The loss (scalar) and the contrastive top-1 accuracy (scalar, for monitoring).
    """
    # In fp32 even under autocast: at T = 0.2 the logits span [-5, 5], where bf16 (8 significant bits) rounds to
    # steps of 0.03 and blurs the near-ties between the positive and the hardest negatives.
    with torch.autocast(device_type=q.device.type, enabled=False):
        q, k_all = F.normalize(q.float(), dim=1), F.normalize(k_all.float(), dim=1)
        logits = q @ k_all.T / temperature  # [B, W * B] float32
        labels = torch.arange(q.shape[0], device=q.device) + rank * q.shape[0]  # [B]
        loss = F.cross_entropy(logits, labels) * (2 * temperature)
        acc = (logits.argmax(dim=1) == labels).float().mean()
    return loss, acc


class MoCoV3(MethodBase):
    """MoCo v3 around any backbone with ``num_features`` (a timm ViT or a CNN).

    ViT: 3-layer projector, predictor with the final BN, fixed 2D sin-cos position embedding and a frozen
    random patch projection (``stop_grad_conv1``) when the backbone is fresh. CNN (v3's ResNet recipe):
    2-layer projector, predictor without the final BN.

    Args:
        backbone: Stock backbone, forward ``[B, 3, H, W] -> [B, D]``.
        moco: MoCo v3 settings.
        image_size: Training input side.
        fresh: The backbone is newly initialised (apply the ViT init above); False with ``model.weights``.
    """

    def __init__(self, backbone: nn.Module, moco: MoCoV3Config, image_size: int, fresh: bool = True) -> None:
        super().__init__()
        self.moco = moco
        self.image_size = image_size
        dim = int(backbone.num_features)  # D
        is_vit = hasattr(backbone, "patch_embed")
        if is_vit and fresh and not getattr(backbone, "no_embed_class", False):
            initialize_2d_sine_cosine_positional_embedding(backbone.pos_embed,
                                                           num_prefix_tokens=backbone.num_prefix_tokens)
        if is_vit and moco.stop_grad_conv1:  # v3 Sec. 4.2: a random patch projection stabilises training
            deactivate_requires_grad(backbone.patch_embed)

        # ============ base encoder (backbone + projector) and predictor ============
        self.backbone = backbone
        self.projector = create_mlp(3 if is_vit else 2, dim, moco.proj_hidden_dim, moco.proj_dim)  # D -> C
        self.predictor = create_mlp(2, moco.proj_dim, moco.pred_hidden_dim, moco.proj_dim, last_bn=is_vit)  # C -> C

        # ============ momentum encoder: a copy, updated only by EMA ============
        self.momentum_backbone = copy.deepcopy(backbone)
        self.momentum_projector = copy.deepcopy(self.projector)
        deactivate_requires_grad(self.momentum_backbone)
        deactivate_requires_grad(self.momentum_projector)

    def momentum_at(self, step: int, total_steps: int) -> float:
        """v3's cosine momentum ``1 - (1 - m0)(1 + cos(pi t / T)) / 2`` at ``t = step``, ``T = total_steps``.

        lightly's ``cosine_schedule`` reaches its end value at ``max_steps - 1``, hence ``total_steps + 1``.
        """
        return cosine_schedule(min(step, total_steps), total_steps + 1, self.moco.momentum, 1.0)

    @torch.no_grad()
    def after_step(self, step: int, total_steps: int) -> None:
        """EMA update after optimiser step ``step`` (0-based), with the momentum of step ``step + 1``.

        v3 updates at the start of each step ``t`` with ``m(t)`` before computing keys; updating at the end of
        step ``t - 1`` is the same (its step-0 update is a no-op: the copies are equal).
        """
        m = self.momentum_at(step + 1, total_steps)
        ema_update(self.backbone, self.momentum_backbone, m)
        ema_update(self.projector, self.momentum_projector, m)

    def forward(self, batch: Any) -> dict[str, torch.Tensor]:
        """``batch = ([view1, view2] each [B, 3, H, W], source_id, index)``; source labels are never used."""
        x1, x2 = batch[0]
        q1 = self.predictor(self.projector(self.backbone(x1)))  # [B, C]
        q2 = self.predictor(self.projector(self.backbone(x2)))  # [B, C]
        with torch.no_grad():
            k1, rank = gather_keys(self.momentum_projector(self.momentum_backbone(x1)))  # [W * B, C]
            k2, _ = gather_keys(self.momentum_projector(self.momentum_backbone(x2)))  # [W * B, C]
        loss1, acc1 = mocov3_loss(q1, k2, self.moco.temperature, rank)
        loss2, acc2 = mocov3_loss(q2, k1, self.moco.temperature, rank)
        return {"loss": loss1 + loss2, "acc": (acc1 + acc2) / 2}

    def create_train_transform(self) -> Callable[[Any], list[torch.Tensor]]:
        """BYOL's asymmetric pair (v3's recipe): PIL -> ``[view1 [3, H, W], view2 [3, H, W]]``."""
        normalize = {"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)}
        size, scale = self.image_size, self.moco.min_scale
        return BYOLTransform(
            view_1_transform=BYOLView1Transform(input_size=size, min_scale=scale, normalize=normalize),
            view_2_transform=BYOLView2Transform(input_size=size, min_scale=scale, normalize=normalize),
        )


def create_mocov3(cfg: MethodSettings, num_sources: int) -> MoCoV3:
    """Build MoCo v3 around a fresh ``cfg.model`` backbone (``num_sources`` is ignored: no labels used).

    BatchNorm becomes SyncBatchNorm only on CUDA with a process group (as v3); on CPU it stays plain BN.
    """
    del num_sources
    backbone = create_backbone(cfg.model, cfg.data.image_size)
    method = MoCoV3(backbone, cfg.method.mocov3, cfg.data.image_size, fresh=cfg.model.weights is None)
    if torch.cuda.is_available() and dist.is_available() and dist.is_initialized():
        method = nn.SyncBatchNorm.convert_sync_batchnorm(method)
    return method

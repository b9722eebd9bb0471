"""The ``method`` section: which method trains the backbone, and each method's settings (:mod:`dsbias.methods`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from dsbias.typedconfig import ConfigError


@dataclass
class MAEConfig:
    """Masked autoencoder (He et al. 2022).

    Attributes:
        mask_ratio: Fraction of patches masked per image (0.75 in MAE).
        norm_pix_loss: Targets are per-patch normalised pixels (mean/var of each patch, eps 1e-6).
        decoder_dim: Decoder width (MAE ViT-B: 512).
        decoder_depth: Decoder blocks (MAE: 8; 1-2 are enough for linear-probe features at small scale).
        decoder_heads: Decoder attention heads.
        min_scale: Lower bound of the RandomResizedCrop area scale (MAE: 0.2).
    """

    mask_ratio: float = 0.75
    norm_pix_loss: bool = True
    decoder_dim: int = 128
    decoder_depth: int = 2
    decoder_heads: int = 4
    min_scale: float = 0.2


@dataclass
class MoCoV3Config:
    """MoCo v3 (Chen, Xie & He 2021).

    Attributes:
        temperature: InfoNCE temperature T (the loss is scaled by 2T).
        momentum: Start of the cosine momentum schedule (rises to 1 at the last step).
        proj_hidden_dim: Projector hidden width (v3: 4096).
        proj_dim: Output width of projector and predictor (v3: 256).
        pred_hidden_dim: Predictor hidden width (v3: 4096).
        min_scale: Lower bound of the RandomResizedCrop area scale (v3: 0.08).
        stop_grad_conv1: ViT only: keep the random patch projection frozen (v3's ``--stop-grad-conv1``).
    """

    temperature: float = 0.2
    momentum: float = 0.99
    proj_hidden_dim: int = 1024
    proj_dim: int = 256
    pred_hidden_dim: int = 1024
    min_scale: float = 0.08
    stop_grad_conv1: bool = True


@dataclass
class AugmentConfig:
    """Training augmentation of the supervised classifier (timm's ``create_transform`` and ``Mixup``).

    The defaults are Liu & He's recipe (Table 9). The levels of their augmentation ablation (Table 4) are
    presets: ``method.supervised.augment=none|crop|crop_randaug|full`` (``configs/augment/``).

    Attributes:
        crop: RandomResizedCrop (+ flip); off: the eval view (resize + center crop) for training too.
        scale: RandomResizedCrop area range.
        hflip: Horizontal flip probability (with ``crop``).
        color_jitter: timm colour jitter strength (0: off; timm ignores it while RandAugment is on).
        randaug: timm RandAugment string (``rand-m9-mstd0.5-inc1`` = magnitude 9, std 0.5, 2 ops); empty: off.
        interpolation: Resampling of the random crop (and RandAugment).
        reprob: Random erasing probability (the paper: 0).
        mixup: Mixup alpha (0: off).
        cutmix: CutMix alpha (0: off).
        mixup_prob: Probability of mixing a batch (or element) at all.
        switch_prob: Probability of CutMix instead of Mixup when both are on.
        mode: Mixup mode: ``batch`` (ConvNeXt default), ``pair`` or ``elem`` (the follow-up's code).
    """

    crop: bool = True
    scale: list[float] = field(default_factory=lambda: [0.08, 1.0])
    hflip: float = 0.5
    color_jitter: float = 0.0
    randaug: str = "rand-m9-mstd0.5-inc1"
    interpolation: str = "bicubic"
    reprob: float = 0.0
    mixup: float = 0.8
    cutmix: float = 1.0
    mixup_prob: float = 1.0
    switch_prob: float = 0.5
    mode: Literal["batch", "pair", "elem"] = "batch"

    def check(self) -> None:
        """Cross-field checks."""
        if len(self.scale) != 2 or not 0 < self.scale[0] <= self.scale[1] <= 1:
            raise ConfigError(f"method.supervised.augment.scale={self.scale}: need [low, high] with "
                              "0 < low <= high <= 1")


@dataclass
class CorruptConfig:
    """A fixed corruption applied to every train AND val image (Liu & He Table 5; presets ``configs/corrupt/``).

    Applied to the network-size image after cropping/RandAugment and before normalisation, seeded by the
    image content, so a val image always gets the same corruption.

    Attributes:
        kind: ``none``, ``color_jitter`` (SimCLR-style strength s: brightness/contrast/saturation 0.8 s,
            hue 0.2 s), ``noise`` (Gaussian, std in [0, 1] pixel units), ``blur`` (Gaussian, radius in pixels)
            or ``downsample`` (to strength x strength pixels, bicubic, then back up to the input size).
        strength: The parameter of ``kind`` (see above).
    """

    kind: Literal["none", "color_jitter", "noise", "blur", "downsample"] = "none"
    strength: float = 0.0


@dataclass
class SupervisedConfig:
    """End-to-end source classification (the paper's headline experiment).

    Attributes:
        label_smoothing: Label smoothing of the cross-entropy (also inside Mixup's soft targets).
        augment: Training augmentation (Table 4 levels as presets).
        corrupt: Fixed corruption of train and val images (Table 5).
    """

    label_smoothing: float = 0.1
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    corrupt: CorruptConfig = field(default_factory=CorruptConfig)


@dataclass
class MethodConfig:
    """Which method trains the backbone, and each method's settings."""

    name: Literal["mae", "mocov3", "supervised"] = "mae"
    mae: MAEConfig = field(default_factory=MAEConfig)
    mocov3: MoCoV3Config = field(default_factory=MoCoV3Config)
    supervised: SupervisedConfig = field(default_factory=SupervisedConfig)


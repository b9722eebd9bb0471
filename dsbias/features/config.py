"""The ``extract`` section: which frozen backbone ``ssl/extract.py`` applies, and how the extraction is cut into
resumable blocks (:mod:`dsbias.features.extract`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from dsbias.typedconfig import ConfigError


@dataclass
class ExtractConfig:
    """Feature extraction with a frozen backbone.

    Attributes:
        backbone: ``run:RUN_DIR`` (a dsbias run's exported backbone), ``timm:NAME``, ``open_clip:ARCH`` (a
            built-in name, a model-config ``.json``, ``local-dir:PATH`` or ``hf-hub:ORG/REPO``) or
            ``hf:PATH_OR_ID`` (``transformers`` ``AutoModel``); empty: the config's ``model`` (see
            :mod:`dsbias.models.frozen`).
        weights: ``timm:``: a local ``.safetensors`` or timm checkpoint file. ``open_clip:``: a local file or a
            pretrained tag of ``ARCH``. Empty: the library's published weights for the name (downloaded only when
            online and the library's cache rules allow).
        init: ``pretrained`` (the weights) or ``random`` (the same architecture at a seeded random init,
            ``train.seed``: the control every backbone is read against).
        pool: ``default`` (the model's own), ``cls`` (the class token) or ``avg`` (the mean of the patch
            tokens, or of the feature map).
        layer: ``final`` (the model's own embedding) or a block index K (0-based; -1 = the last block), whose
            output is pooled by ``pool`` before any final norm or projection.
        kwargs: ``timm:`` only: extra ``timm.create_model`` arguments (``img_size``, ``dynamic_img_size``...).
        batch_size: Images per forward pass per process.
        block_batches: Batches per block (``batch_size * block_batches`` rows): each block is written once, as its
            own part file, by one process; a rerun skips the blocks already written. Whole batches, so a batch
            never straddles two blocks and a resumed extraction gives the same bytes as an uninterrupted one.
        stop_after: Stop after this many blocks per process, as if killed (no ``meta.json``); 0 = off. For
            resume tests and time-boxed jobs: rerunning into the same dir continues.
    """

    backbone: str = ""
    weights: str | None = None
    init: Literal["pretrained", "random"] = "pretrained"
    pool: Literal["default", "cls", "avg"] = "default"
    layer: int | str = "final"
    kwargs: dict[str, Any] = field(default_factory=dict)
    batch_size: int = 256
    block_batches: int = 16
    stop_after: int = 0

    @property
    def block_rows(self) -> int:
        """Rows per block."""
        return self.batch_size * self.block_batches

    def check(self) -> None:
        """Cross-field checks (the backbone spec's own checks run when it loads)."""
        from dsbias.models.spec import parse_spec

        if self.backbone:
            parse_spec(self.backbone)
        elif self.weights or self.pool != "default" or self.layer != "final":
            raise ConfigError("extract.weights, extract.pool and extract.layer apply to extract.backbone; for the "
                              "config's own model use model.weights and model.pool")
        if isinstance(self.layer, str) and self.layer != "final":
            raise ConfigError(f"extract.layer={self.layer!r}: use final or a block index (0, 5, -1...)")
        if self.batch_size < 1 or self.block_batches < 1:
            raise ConfigError("extract.batch_size and extract.block_batches must be >= 1")
        if self.stop_after < 0:
            raise ConfigError("extract.stop_after must be >= 0")
        if self.init == "random" and self.weights:
            raise ConfigError("extract.init=random with extract.weights: a random init loads no weights; drop one")
        if self.kwargs and not self.backbone.startswith("timm:"):
            raise ConfigError("extract.kwargs: only timm: backbones take create_model arguments")

"""The ``optim`` and ``train`` sections: optimiser, schedule, length, batch and devices (:mod:`dsbias.engine`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from dsbias.typedconfig import ConfigError


@dataclass
class OptimConfig:
    """Optimiser and learning-rate schedule.

    Attributes:
        name: ``adamw`` (the only one the recipes use).
        blr: Base learning rate; the used lr is ``blr * global_batch / 256`` unless ``lr`` is set.
        lr: Absolute learning rate (overrides ``blr``).
        betas: AdamW betas.
        weight_decay: Applied to weights only (no decay on norms, biases, tokens, position embeddings).
        warmup_samples: Linear warmup length in samples seen.
        min_lr: Floor of the cosine decay.
        clip_grad: Max gradient norm (0 disables clipping).
    """

    name: str = "adamw"
    blr: float = 1.5e-4
    lr: float | None = None
    betas: list[float] = field(default_factory=lambda: [0.9, 0.95])
    weight_decay: float = 0.05
    warmup_samples: int = 0
    min_lr: float = 0.0
    clip_grad: float = 0.0


@dataclass
class TrainConfig:
    """Training length, batch and devices.

    Attributes:
        samples: Training length in samples seen (independent of the data size, as in Liu & He).
        batch_size: Global batch per optimiser step (split over processes, reached with accumulation).
        grad_accum: Gradient accumulation steps per optimiser step.
        mixed_precision: ``no``, ``bf16`` or ``fp16`` (Accelerate).
        seed: Seed of model init and augmentation.
        log_every: Steps between log lines.
        save_every: Steps between resumable checkpoints (0: only at the end).
        compile: ``torch.compile`` the method's forward (off: costly on small CPUs; on a GPU it pays off after
            a few hundred steps). Checkpoints and the exported backbone keep plain keys.
        tf32: On CUDA, TF32 matmuls and convolutions in fp32 (Ampere and later; the paper-era default).
            ``false`` gives strict fp32.
        channels_last: Model and image batches in channels-last memory (faster convolutions under bf16/fp16 on
            tensor cores; no effect on ViTs' speed).
        log_with: Accelerate trackers (TensorBoard by default, skipped with a warning if not installed).
        extract: Write features to ``<run>/features`` at the end of training.
        stop_after: Stop after this many steps as if killed (no final checkpoint); 0 = off. For resume tests
            and time-boxed jobs: rerunning into the run dir continues from the last checkpoint.
    """

    samples: int = 30_000
    batch_size: int = 128
    grad_accum: int = 1
    mixed_precision: str = "no"
    seed: int = 0
    log_every: int = 10
    save_every: int = 0
    compile: bool = False
    tf32: bool = True
    channels_last: bool = False
    log_with: list[str] = field(default_factory=lambda: ["tensorboard"])
    extract: bool = True
    stop_after: int = 0

    def check(self) -> None:
        """Cross-field checks."""
        if self.batch_size < 1 or self.grad_accum < 1:
            raise ConfigError("train.batch_size and train.grad_accum must be >= 1")
        if self.mixed_precision not in ("no", "bf16", "fp16"):
            raise ConfigError(f"train.mixed_precision={self.mixed_precision!r}: use no, bf16 or fp16")


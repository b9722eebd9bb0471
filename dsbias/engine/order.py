"""The data order, a pure function of the step: which images each process reads at every micro-step.

Epoch ``e`` is a seeded permutation of the train rows, cut into global batches; step ``s`` reads global batch
``s mod steps_per_epoch`` of epoch ``s div steps_per_epoch``, and inside it each process reads a fixed slice
per micro-batch (:class:`StepBatches`). Resuming at step ``s`` starts the sampler there. Augmentation
randomness is seeded per sample from ``(seed, epoch, manifest index)`` (:class:`SeededItems`), so neither the
worker count nor the resume point changes what a sample looks like.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from dsbias.engine.config import TrainConfig
from dsbias.seeds import stable_seed
from dsbias.typedconfig import ConfigError


@dataclass(frozen=True)
class Plan:
    """How ``train.samples`` maps onto steps, epochs and per-process batches."""

    total_steps: int
    steps_per_epoch: int
    per_process_batch: int
    world: int
    accum: int
    batch: int

    @classmethod
    def make(cls, train: TrainConfig, n_train: int, world: int) -> Plan:
        batch, accum = train.batch_size, train.grad_accum
        if batch % (world * accum):
            raise ConfigError(f"train.batch_size={batch}: not divisible by processes ({world}) x "
                              f"train.grad_accum ({accum}) (use a multiple of {world * accum})")
        if n_train < batch:
            raise ConfigError(f"train.batch_size={batch}: larger than the {n_train} train images (lower "
                              "train.batch_size or raise data.per_source.train)")
        return cls(total_steps=max(1, math.ceil(train.samples / batch)), steps_per_epoch=n_train // batch,
                    per_process_batch=batch // (world * accum), world=world, accum=accum, batch=batch)


class StepBatches:
    """Batch sampler: this process's micro-batches of ``(epoch, position)`` pairs, from ``start_step`` on."""

    def __init__(self, plan: Plan, n: int, seed: int, rank: int, start_step: int) -> None:
        self.plan, self.n, self.seed, self.rank, self.start = plan, n, seed, rank, start_step
        self._orders: dict[int, np.ndarray] = {}

    def order(self, epoch: int) -> np.ndarray:
        if epoch not in self._orders:
            self._orders = {epoch: np.random.default_rng(stable_seed("order", self.seed, epoch)).permutation(self.n)}
        return self._orders[epoch]

    def __len__(self) -> int:
        return (self.plan.total_steps - self.start) * self.plan.accum

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        p = self.plan
        for step in range(self.start, p.total_steps):
            epoch, k = divmod(step, p.steps_per_epoch)
            order = self.order(epoch)
            for micro in range(p.accum):
                lo = k * p.batch + (micro * p.world + self.rank) * p.per_process_batch
                yield [(epoch, int(i)) for i in order[lo:lo + p.per_process_batch]]


class SeededItems(Dataset):
    """Reads ``dataset[position]`` with python/numpy/torch seeded from ``(seed, epoch, manifest index)``."""

    def __init__(self, dataset: Any, seed: int) -> None:
        self.dataset, self.seed = dataset, seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> Any:
        epoch, pos = key
        s = stable_seed("sample", self.seed, epoch, int(self.dataset.index[pos]))
        random.seed(s)
        np.random.seed(s % 2**32)
        # The CPU generator only, which is all a transform draws from: torch.manual_seed would also queue a
        # lazy seed for every CUDA device (with a captured stack, ~100 us, as much as decoding a 64-px PNG).
        # The model's own randomness is reseeded per micro-batch by the loop, after the batch is read.
        torch.default_generator.manual_seed(s)
        return self.dataset[pos]


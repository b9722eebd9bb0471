"""DataLoader defaults that keep the accelerator fed: enough workers, pinned memory on CUDA, workers kept
alive between epochs, a seeded shuffle and per-worker seeds."""

from __future__ import annotations

import os
import random
from collections.abc import Callable

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

MAX_WORKERS = 10  # Liu & He's (ConvNeXt's) num_workers; more rarely helps one GPU and costs host memory


def default_workers() -> int:
    """Worker processes per training process: this process's CPUs shared among the processes of this machine
    (``LOCAL_WORLD_SIZE``, set by ``accelerate launch``), at least 1, at most :data:`MAX_WORKERS`.

    8 processes with 10 workers each on a 32-core box would run 80 decoders on 32 cores (and hold 80 x
    ``prefetch_factor`` batches in ``/dev/shm``); sharing the cores keeps both in bounds.
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    local = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    return max(1, min(MAX_WORKERS, cpus // local))


def _seed_worker(worker_id: int) -> None:
    # torch seeds each worker from the loader's generator; numpy and random must follow it, or every worker
    # draws the same "random" augmentations.
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def create_loader(
    dataset: Dataset,
    batch_size: int,
    shuffle: bool = False,
    seed: int = 0,
    num_workers: int | None = None,
    drop_last: bool = False,
    sampler: Sampler | None = None,
    collate_fn: Callable | None = None,
    prefetch_factor: int = 2,
) -> DataLoader:
    """A DataLoader with throughput defaults.

    Args:
        dataset: A map-style dataset (e.g. :class:`~dsbias.data.dataset.MixedDataset`).
        batch_size: Per-process batch size.
        shuffle: Shuffle with a generator seeded by ``seed`` (ignored when ``sampler`` is given).
        seed: Seeds the shuffle and the workers' augmentation RNGs.
        num_workers: Worker processes; None means :func:`default_workers`; 0 loads in this process.
        drop_last: Drop a last incomplete batch.
        sampler: E.g. a ``DistributedSampler`` (then ``shuffle`` is the sampler's business).
        collate_fn: Batch collation (default: torch's).
        prefetch_factor: Batches each worker prepares ahead.

    Returns:
        The loader; ``pin_memory`` is on when CUDA is available, workers persist across epochs.
    """
    workers = default_workers() if num_workers is None else num_workers
    generator = torch.Generator().manual_seed(seed)
    extra = {"prefetch_factor": prefetch_factor, "persistent_workers": True} if workers > 0 else {}
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle and sampler is None,
        sampler=sampler,
        num_workers=workers,
        pin_memory=torch.cuda.is_available(),
        drop_last=drop_last,
        collate_fn=collate_fn,
        generator=generator,
        worker_init_fn=_seed_worker if workers > 0 else None,
        **extra,
    )


def process_block(n: int, rank: int, world: int) -> range:
    """This process's contiguous block of ``n`` rows for a pass over every row exactly once (extraction,
    evaluation): no padding, so nothing is duplicated and rows come back in order when blocks are joined."""
    return range(rank * n // world, (rank + 1) * n // world)

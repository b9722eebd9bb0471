"""The engine's overhead: its logged training throughput next to a bare PyTorch loop on the same method.

The bare loop is what the engine adds nothing to: one fixed batch already in memory (no data loading, no
Accelerate, no logging or checkpoints), ``forward -> backward -> AdamW step -> after_step``. The ratio
``engine / bare`` is the fraction of pure compute speed the full pipeline keeps (data loading, augmentation
and the per-step seeding included).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import default_collate

from dsbias.bench.timer import Timing, time_it
from dsbias.config import Config
from dsbias.data.dataset import MixedDataset
from dsbias.data.loader import create_loader
from dsbias.data.manifest import Manifest
from dsbias.engine.optim import learning_rate
from dsbias.methods.registry import create_method
from dsbias.pipelines.pretrain import pretrain
from dsbias.runs import JsonlLog, RunDir


def bare_loop(cfg: Config, manifest: Manifest, steps: int, warmup: int = 3, device: str | None = None) -> Timing:
    """Seconds per step of a plain AdamW loop over one real batch of ``cfg.train.batch_size`` views.

    Args:
        cfg: The run config (method, model, batch size, learning rate, mixed precision).
        manifest: Where the batch's images come from (the first rows of the train split).
        steps: Timed optimiser steps.
        warmup: Untimed steps first (allocator, cuDNN autotuner and thread-pool warm-up).
        device: ``cuda`` or ``cpu``; default: the engine's choice (CUDA when available), so both loops run on
            the same device. On CUDA the timer synchronises at the end of each step.
    """
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(cfg.train.seed)
    method = create_method(cfg, len(manifest.sources)).to(device)
    data = MixedDataset.from_config(manifest, "train", method.create_train_transform(), cfg.data)
    batch = _to(default_collate([data[i % len(data)] for i in range(cfg.train.batch_size)]), device)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(cfg.train.mixed_precision)
    optimizer = torch.optim.AdamW([p for p in method.parameters() if p.requires_grad],
                                  lr=learning_rate(cfg.optim, cfg.train), betas=tuple(cfg.optim.betas),
                                  weight_decay=cfg.optim.weight_decay)
    method.train()
    step = 0

    def one_step() -> torch.Tensor:
        nonlocal step
        with torch.autocast(device, dtype=dtype or torch.float32, enabled=dtype is not None):
            loss = method(batch)["loss"]
        loss.backward()  # fp16 without a loss scaler: a speed reference, not a recipe
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        method.after_step(step, warmup + steps)
        step += 1
        if device == "cuda":
            torch.cuda.synchronize()  # the timer measures finished steps, not queued kernels
        return loss

    timing, loss = time_it(one_step, repeat=steps, warmup=warmup)
    assert torch.isfinite(loss), f"bare loop: loss {loss.item()}"
    return timing


def _to(batch: Any, device: str) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, list | tuple):
        return type(batch)(_to(b, device) for b in batch)
    return batch


def bench_engine(cfg: Config, steps: int, workdir: str | Path) -> dict[str, Any]:
    """Train ``steps`` steps with the engine into ``workdir``, then the bare loop; return both throughputs.

    The engine's figure is the median of its logged ``img_per_s`` after the first log interval (which holds
    the DataLoader start-up); its whole-run figure is reported too.
    """
    train = dataclasses.replace(cfg.train, samples=steps * cfg.train.batch_size, extract=False, save_every=0,
                                log_every=max(1, steps // 10), log_with=[], stop_after=0)
    cfg = dataclasses.replace(cfg, train=train, out=str(workdir))
    summary = pretrain(cfg)
    run = RunDir.at(workdir)
    logged = [r["img_per_s"] for r in JsonlLog(run.log).read() if "img_per_s" in r]
    engine = Timing.of([cfg.train.batch_size / r for r in (logged[1:] or logged)])  # seconds per step
    bare = bare_loop(cfg, Manifest.load(run.manifest), steps)
    b = cfg.train.batch_size
    return {"method": cfg.method.name, "model": cfg.model.name, "batch": b, "steps": steps,
            "engine_img_per_s": engine.rate(b), "engine_whole_run_img_per_s": summary["img_per_s"],
            "bare_img_per_s": bare.rate(b), "bare_step_s": dataclasses.asdict(bare),
            "ratio": engine.rate(b) / bare.rate(b), "torch_threads": torch.get_num_threads(),
            "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"}


def make_pngs(root: Path, n: int, size: int = 64, seed: int = 0) -> str:
    """``n`` PNG crops of ``size`` px (smooth random content plus noise) in two source folders; the
    ``data.sources`` YAML for them."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    for i in range(n):
        name = "ab"[i % 2]
        small = rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)
        img = np.asarray(Image.fromarray(small).resize((size, size), Image.Resampling.BICUBIC), dtype=np.int16)
        img = np.clip(img + rng.integers(-12 if name == "a" else -4, 13 if name == "a" else 5, img.shape), 0, 255)
        (root / name).mkdir(parents=True, exist_ok=True)
        Image.fromarray(img.astype(np.uint8)).save(root / name / f"{i:06d}.png")
    return "[" + ", ".join(f"{{name: {s}, kind: folder, path: '{root / s}'}}" for s in "ab") + "]"


class _Decoded(torch.utils.data.Dataset):
    """The plain loop's data: every train image decoded once into memory, augmented per sample."""

    def __init__(self, data: MixedDataset) -> None:
        self.images = [data.decode_row(row) for row in data.rows]
        self.labels, self.transform = data.labels, data.transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[Any, torch.Tensor, torch.Tensor]:
        return self.transform(self.images[i]), torch.tensor(self.labels[i]), torch.tensor(i)


def bare_file_loop(cfg: Config, manifest: Manifest, steps: int, interval: int = 1) -> Timing:
    """Seconds per ``interval`` steps of a plain loop over file data: images decoded once into memory, the
    method's own augmentation per sample in a DataLoader (same workers and batch), ``forward -> backward ->
    AdamW``. Timed over whole intervals, as the engine logs its rate, so that waits for data count in both."""
    torch.manual_seed(cfg.train.seed)
    method = create_method(cfg, len(manifest.sources))
    data = _Decoded(MixedDataset.from_config(manifest, "train", method.create_train_transform(), cfg.data,
                                             cache=False))  # _Decoded decodes every image itself
    loader = create_loader(data, cfg.train.batch_size, shuffle=True, seed=cfg.train.seed,
                           num_workers=cfg.data.loader_workers(), drop_last=True)
    optimizer = torch.optim.AdamW([p for p in method.parameters() if p.requires_grad],
                                  lr=learning_rate(cfg.optim, cfg.train), betas=tuple(cfg.optim.betas),
                                  weight_decay=cfg.optim.weight_decay)
    method.train()
    batches = iter(())

    def one_step() -> torch.Tensor:
        nonlocal batches
        batch = next(batches, None)
        if batch is None:
            batches = iter(loader)
            batch = next(batches)
        loss = method(batch)["loss"]
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss

    def steps_of_one_interval() -> torch.Tensor:
        return [one_step() for _ in range(interval)][-1]

    # The first interval is untimed, as the engine's first logged one is left out (worker start-up).
    timing, loss = time_it(steps_of_one_interval, repeat=max(1, steps // interval - 1), warmup=1)
    assert torch.isfinite(loss), f"bare file loop: loss {loss.item()}"
    return timing


def loader_costs(cfg: Config, manifest: Manifest, n: int = 500) -> dict[str, float]:
    """Milliseconds per image of each part of a loader worker's work, in this process, on one thread: decode
    (:meth:`MixedDataset.decode_row`), the method's train augmentation, the per-sample seeding of
    :class:`~dsbias.engine.order.SeededItems`, and ``torch.manual_seed`` (what that seeding would cost)."""
    import random

    import numpy as np

    from dsbias.seeds import stable_seed

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in a DataLoader worker
    try:
        method = create_method(cfg, len(manifest.sources))
        data = MixedDataset.from_config(manifest, "train", method.create_train_transform(), cfg.data, cache=False)
        rows = [data.row(i % len(data)) for i in range(n)]
        images = [data.decode_row(r) for r in rows]  # warm the file cache

        def seed_like_seeded_items() -> None:
            for i in range(n):
                s = stable_seed("sample", 0, 1, i)
                random.seed(s)
                np.random.seed(s % 2**32)
                torch.default_generator.manual_seed(s)

        parts = {"decode": lambda: [data.decode_row(r) for r in rows],
                 "augment": lambda: [data.transform(img) for img in images],
                 "seed": seed_like_seeded_items,
                 "torch.manual_seed": lambda: [torch.manual_seed(i) for i in range(n)]}
        return {name: time_it(fn, repeat=3)[0].median * 1000 / n for name, fn in parts.items()}
    finally:
        torch.set_num_threads(threads)


def bench_engine_files(cfg: Config, steps: int, workdir: str | Path) -> dict[str, Any]:
    """The engine on file data, without and with ``data.cache_decoded``, next to :func:`bare_file_loop`."""
    b = cfg.train.batch_size
    out: dict[str, Any] = {"method": cfg.method.name, "model": cfg.model.name, "batch": b, "steps": steps}
    for cache in (False, True):
        c = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, cache_decoded=cache))
        r = bench_engine_only(c, steps, Path(workdir) / f"cache-{cache}")
        out[f"engine{'_cached' if cache else ''}_img_per_s"] = r
    interval = max(1, steps // 10)  # the engine's log interval (bench_engine_only)
    manifest = Manifest.load(RunDir.at(Path(workdir) / "cache-False").manifest)
    bare = bare_file_loop(cfg, manifest, steps, interval)
    out["bare_img_per_s"] = bare.rate(b * interval)
    out["ratio"] = out["engine_img_per_s"] / out["bare_img_per_s"]
    out["ratio_cached"] = out["engine_cached_img_per_s"] / out["bare_img_per_s"]
    out["worker_ms_per_image"] = loader_costs(cfg, manifest)
    return out


def bench_engine_only(cfg: Config, steps: int, workdir: Path) -> float:
    """The engine's img/s over ``steps`` steps: the median logged rate after the first log interval."""
    train = dataclasses.replace(cfg.train, samples=steps * cfg.train.batch_size, extract=False, save_every=0,
                                log_every=max(1, steps // 10), log_with=[], stop_after=0)
    pretrain(dataclasses.replace(cfg, train=train, out=str(workdir)))
    logged = [r["img_per_s"] for r in JsonlLog(RunDir.at(workdir).log).read() if "img_per_s" in r]
    return Timing.of([cfg.train.batch_size / r for r in (logged[1:] or logged)]).rate(cfg.train.batch_size)

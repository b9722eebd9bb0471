"""The one training loop every method uses: Accelerate for devices, precision and processes.

Exact resume is designed in, not bolted on. Everything random is a function of a step or a sample:

- data order and augmentation: :mod:`dsbias.engine.order`;
- model randomness (masking, dropout): torch is seeded per micro-batch from ``(seed, step, micro, rank)``;
- weights and optimiser moments: :mod:`dsbias.engine.checkpoint`; the learning rate is a pure function of
  the step (:mod:`dsbias.engine.optim`), so there is no scheduler state to lose.

So a run killed at any point and resumed from its last checkpoint ends with the same weights and the same
loss curve as an uninterrupted run (tested on CPU).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
from collections.abc import Callable
from typing import Any, Protocol

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch import nn
from torch.utils.data import DataLoader

from dsbias.data.config import DataConfig
from dsbias.engine.checkpoint import latest_checkpoint, save_checkpoint
from dsbias.engine.config import OptimConfig, TrainConfig
from dsbias.engine.optim import create_optimizer, learning_rate, lr_at
from dsbias.engine.order import Plan, SeededItems, StepBatches
from dsbias.log import progress
from dsbias.methods.config import MethodConfig
from dsbias.runs import JsonlLog, RunDir, write_text
from dsbias.seeds import stable_seed
from dsbias.typedconfig import to_dict

logger = logging.getLogger(__name__)


class EngineConfig(Protocol):
    """What the engine reads of a run's config (:class:`dsbias.config.Config` has it all)."""

    data: DataConfig
    method: MethodConfig
    optim: OptimConfig
    train: TrainConfig


def create_accelerator(train: TrainConfig, run: RunDir) -> Accelerator:
    """An Accelerator for this machine: GPUs when present, else CPU (also under ``--multi_gpu`` on CPU).

    Trackers in ``train.log_with`` that are not installed are skipped with a warning.
    """
    trackers = []
    for name in train.log_with:
        if name == "tensorboard":
            try:
                import tensorboard  # noqa: F401
            except ImportError:
                logger.warning("train.log_with: tensorboard is not installed; skipping it")
                continue
        trackers.append(name)
    # Accumulation is done by the engine (it owns the micro-batch loop), so Accelerate's stays at 1.
    return Accelerator(
        cpu=not torch.cuda.is_available(),
        mixed_precision=train.mixed_precision,
        log_with=trackers or None,
        project_dir=str(run.root),
    )


def _to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, list | tuple):
        return type(batch)(_to_device(b, device) for b in batch)
    return batch


def train(
    cfg: EngineConfig,
    method: nn.Module,
    dataset: Any,
    run: RunDir,
    accelerator: Accelerator,
    eval_fn: Callable[[nn.Module, int], dict[str, float]] | None = None,
    eval_every: int = 0,
) -> dict[str, Any]:
    """Train ``method`` on ``dataset`` for ``cfg.train.samples`` samples, resuming from ``run/state``.

    Args:
        cfg: Run config (train, optim sections).
        method: A :class:`~dsbias.methods.base.Method`: forward(batch) returns a dict with "loss".
        dataset: Map-style dataset with an ``index`` array (manifest rows), e.g. MixedDataset.
        run: Run directory (state/ and log.jsonl are written here).
        accelerator: From :func:`create_accelerator`.
        eval_fn: Called on every process as ``eval_fn(unwrapped_method, step)`` every ``eval_every`` steps and
            at the end; its scalars are logged.
        eval_every: Steps between evaluations (0: only at the end).

    Returns:
        Summary: steps, samples, final loss, wall time, images/s, last eval.
    """
    tc = cfg.train
    plan = Plan.make(tc, len(dataset), accelerator.num_processes)
    set_seed(tc.seed)  # the same init on every process
    optimizer = create_optimizer(cfg.optim, tc, method)
    model, optimizer = accelerator.prepare(method, optimizer)
    unwrapped = accelerator.unwrap_model(model)
    peak, warmup = learning_rate(cfg.optim, tc), math.ceil(cfg.optim.warmup_samples / tc.batch_size)
    log = JsonlLog(run.log, enabled=accelerator.is_main_process)

    # ============ resume ============
    start = 0
    ckpt = latest_checkpoint(run)
    if ckpt is not None:
        accelerator.load_state(str(run.state / ckpt["dir"]))
        start = int(ckpt["step"])
        if accelerator.is_main_process:  # drop log lines from after the checkpoint: they will be redone
            kept = [r for r in log.read() if r.get("step", -1) <= start or "step" not in r]
            write_text(run.log, "".join(json.dumps(r) + "\n" for r in kept))
        logger.info("resumed from %s (step %d of %d)", ckpt["dir"], start, plan.total_steps)
    if start >= plan.total_steps:
        return _finished(unwrapped, model, plan, run, accelerator, log, eval_fn)
    if accelerator.is_main_process:
        accelerator.init_trackers("dsbias", config=_flat(to_dict(cfg)))
        log.write(event="start", step=start, total_steps=plan.total_steps, peak_lr=peak, warmup_steps=warmup,
                  per_process_batch=plan.per_process_batch, processes=plan.world, grad_accum=plan.accum)

    # ============ data ============
    sampler = StepBatches(plan, len(dataset), tc.seed, accelerator.process_index, start)
    loader = DataLoader(SeededItems(dataset, tc.seed), batch_sampler=sampler, num_workers=cfg.data.num_workers,
                        pin_memory=accelerator.device.type == "cuda", persistent_workers=False,
                        prefetch_factor=4 if cfg.data.num_workers else None)
    batches = iter(loader)

    # ============ loop ============
    model.train()
    bar = progress(total=plan.total_steps, initial=start, disable=not accelerator.is_local_main_process,
                   desc=f"train {cfg.method.name}", unit="step")
    t0 = t_log = time.perf_counter()
    seen_since_log = 0
    last: dict[str, float] = {}
    last_eval: dict[str, float] = {}
    step = start
    for step in range(start, plan.total_steps):
        lr = lr_at(step, plan.total_steps, peak, warmup, cfg.optim.min_lr)
        for group in optimizer.param_groups:
            group["lr"] = lr
        scalars: dict[str, torch.Tensor] = {}
        for micro in range(plan.accum):
            batch = _to_device(next(batches), accelerator.device)
            torch.manual_seed(stable_seed("step", tc.seed, step, micro, accelerator.process_index))
            sync = micro == plan.accum - 1
            with contextlib.ExitStack() as stack:
                if not sync:
                    stack.enter_context(accelerator.no_sync(model))
                with accelerator.autocast():
                    out = model(batch)
                loss = out["loss"]
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"step {step}: loss is {loss.item()} (lr {lr:.3g}); stopping")
                accelerator.backward(loss / plan.accum)
            for k, v in out.items():
                if isinstance(v, torch.Tensor) and v.ndim == 0:
                    scalars[k] = scalars.get(k, 0) + v.detach().float() / plan.accum
        if cfg.optim.clip_grad > 0:
            accelerator.clip_grad_norm_(model.parameters(), cfg.optim.clip_grad)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        unwrapped.after_step(step, plan.total_steps)
        seen_since_log += plan.batch
        bar.update(1)

        done = step + 1
        if done % tc.log_every == 0 or done == plan.total_steps:
            reduced = {k: accelerator.reduce(v, "mean").item() for k, v in sorted(scalars.items())}
            now = time.perf_counter()
            last = {**reduced, "lr": lr, "img_per_s": seen_since_log / max(now - t_log, 1e-9)}
            seen_since_log, t_log = 0, now
            if accelerator.is_main_process:
                log.write(step=done, samples=done * plan.batch, epoch=done / plan.steps_per_epoch, **last)
                accelerator.log(last, step=done)
            bar.set_postfix(loss=f"{last['loss']:.4f}", lr=f"{lr:.2e}")
        if eval_fn is not None and ((eval_every and done % eval_every == 0) or done == plan.total_steps):
            last_eval = _evaluate(eval_fn, unwrapped, model, done, accelerator, log)
        if tc.save_every and done % tc.save_every == 0 and done < plan.total_steps:
            save_checkpoint(accelerator, run, done, done * plan.batch)
        if tc.stop_after and done >= tc.stop_after and done < plan.total_steps:
            bar.close()
            logger.warning("train.stop_after=%d: stopping early, as if killed (no final checkpoint)", tc.stop_after)
            return {"steps": done, "stopped_early": True}
    bar.close()
    wall = time.perf_counter() - t0
    save_checkpoint(accelerator, run, plan.total_steps, plan.total_steps * plan.batch)
    trained = plan.total_steps - start
    summary = {"steps": plan.total_steps, "samples": plan.total_steps * plan.batch, "resumed_at": start,
               "final": last, "wall_s": wall, "img_per_s": trained * plan.batch / max(wall, 1e-9), "eval": last_eval}
    if accelerator.is_main_process:
        log.write(event="end", **{k: v for k, v in summary.items() if k != "final"})
    # Not accelerator.end_training(): it also destroys the process group, which export and extraction still use.
    for tracker in accelerator.trackers:
        tracker.finish()
    return summary


def _finished(unwrapped: nn.Module, model: nn.Module, plan: Plan, run: RunDir, accelerator: Accelerator,
              log: JsonlLog, eval_fn: Callable | None) -> dict[str, Any]:
    """The summary of a run that was already complete when resumed: its recorded result (the last logged step,
    wall time and speed of the ``end`` record), not a zero-step rerun's nan and 0 img/s. Nothing is appended
    to ``log.jsonl``; an ``eval_fn`` is evaluated once (on every process) without logging."""
    records = JsonlLog(run.log).read()  # every process reads it (it is small), so all return the same summary
    end = next((r for r in reversed(records) if r.get("event") == "end"), {})
    final = next((r for r in reversed(records) if r.get("step") == plan.total_steps and "loss" in r), {})
    final = {k: v for k, v in final.items() if k not in ("time", "step", "samples", "epoch")}
    last_eval = {}
    if eval_fn is not None:
        model.eval()
        with torch.no_grad():
            last_eval = eval_fn(unwrapped, plan.total_steps)
        model.train()
    logger.info("%s: already trained (%d steps); reporting the recorded result", run.root, plan.total_steps)
    return {"steps": plan.total_steps, "samples": plan.total_steps * plan.batch,
            "resumed_at": end.get("resumed_at", plan.total_steps), "final": final,
            "wall_s": end.get("wall_s", float("nan")), "img_per_s": end.get("img_per_s", float("nan")),
            "eval": last_eval, "already_done": True}


def _evaluate(eval_fn: Callable, unwrapped: nn.Module, model: nn.Module, step: int, accelerator: Accelerator,
              log: JsonlLog) -> dict[str, float]:
    model.eval()
    with torch.no_grad():
        res = eval_fn(unwrapped, step)
    model.train()
    if accelerator.is_main_process:
        scalars = {f"eval/{k}": v for k, v in res.items() if isinstance(v, int | float)}
        log.write(step=step, **scalars)
        accelerator.log(scalars, step=step)
    return res


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten a nested config for trackers (they take scalars only)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flat(v, key + "."))
        elif isinstance(v, int | float | str | bool):
            out[key] = v
        else:
            out[key] = str(v)
    return out


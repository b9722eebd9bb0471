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
from dsbias.engine.together import broadcast_buffers, nonfinite_count, reduce_and_check
from dsbias.errors import UserError
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
    if torch.cuda.is_available():
        configure_cuda(train)
    # Accumulation is done by the engine (it owns the micro-batch loop), so Accelerate's stays at 1.
    return Accelerator(
        cpu=not torch.cuda.is_available(),
        mixed_precision=train.mixed_precision,
        log_with=trackers or None,
        project_dir=str(run.root),
    )


def configure_cuda(train: TrainConfig) -> None:
    """The GPU speed settings of the paper's era: TF32 matmuls and convolutions (``train.tf32``; PyTorch turned
    TF32 matmuls off by default in 1.12, which makes ConvNeXt's ``nn.Linear`` 1x1 convolutions several times
    slower in fp32) and cuDNN's autotuner (fixed input sizes, so the search pays off after the first steps)."""
    torch.set_float32_matmul_precision("high" if train.tf32 else "highest")
    torch.backends.cudnn.allow_tf32 = train.tf32
    torch.backends.cudnn.benchmark = True


def _to_device(batch: Any, device: torch.device, channels_last: bool = False) -> Any:
    if isinstance(batch, torch.Tensor):
        batch = batch.to(device, non_blocking=True)
        if channels_last and batch.ndim == 4:
            batch = batch.contiguous(memory_format=torch.channels_last)
        return batch
    if isinstance(batch, list | tuple):
        return type(batch)(_to_device(b, device, channels_last) for b in batch)
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
    if tc.channels_last:
        method.to(memory_format=torch.channels_last)
    optimizer = create_optimizer(cfg.optim, tc, method)
    model, optimizer = accelerator.prepare(method, optimizer)
    unwrapped = accelerator.unwrap_model(model)
    # Compiled for the forward only: checkpoints and exports keep going through `model` / `unwrapped`, whose
    # state dicts have no `_orig_mod.` prefix.
    forward = torch.compile(model) if tc.compile else model
    peak, warmup = learning_rate(cfg.optim, tc), math.ceil(cfg.optim.warmup_samples / tc.batch_size)
    log = JsonlLog(run.log, enabled=accelerator.is_main_process)

    # ============ resume ============
    start = 0
    ckpt = latest_checkpoint(run)
    if ckpt is not None:
        saved_world = int(ckpt.get("processes", plan.world))
        if saved_world != plan.world:  # each process's data and seeds depend on the process count
            raise UserError(f"{run.state / 'latest.json'}: this run was checkpointed by {saved_world} process(es), "
                            f"this launch has {plan.world}; resume with --num_processes {saved_world} (an exact "
                            "resume needs the same count) or train into a new --out")
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
    workers = cfg.data.loader_workers()
    # prefetch 2 (torch's default): each batch in flight is a float32 copy in /dev/shm (77 MB at 128 x 224 px)
    loader = DataLoader(SeededItems(dataset, tc.seed), batch_sampler=sampler, num_workers=workers,
                        pin_memory=accelerator.device.type == "cuda", persistent_workers=False,
                        prefetch_factor=2 if workers else None)
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
    # Non-finite losses are counted on the device and checked with the logged scalars (one sync per check,
    # never per micro-batch), so every process stops together with the same line.
    nonfinite = torch.zeros((), device=accelerator.device)
    first_bad = torch.full((), float("inf"), device=accelerator.device)
    for step in range(start, plan.total_steps):
        lr = lr_at(step, plan.total_steps, peak, warmup, cfg.optim.min_lr)
        for group in optimizer.param_groups:
            group["lr"] = lr
        scalars: dict[str, torch.Tensor] = {}
        for micro in range(plan.accum):
            batch = _to_device(next(batches), accelerator.device, tc.channels_last)
            torch.manual_seed(stable_seed("step", tc.seed, step, micro, accelerator.process_index))
            sync = micro == plan.accum - 1
            with contextlib.ExitStack() as stack:
                if not sync:
                    stack.enter_context(accelerator.no_sync(model))
                with accelerator.autocast():
                    out = forward(batch)
                loss = out["loss"]
                bad = nonfinite_count(loss)
                nonfinite += bad
                first_bad = torch.where(bad > 0, torch.clamp(first_bad, max=float(step)), first_bad)
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
        at_log = done % tc.log_every == 0 or done == plan.total_steps
        at_eval = eval_fn is not None and ((eval_every and done % eval_every == 0) or done == plan.total_steps)
        at_save = bool(tc.save_every) and done % tc.save_every == 0 and done < plan.total_steps
        at_stop = bool(tc.stop_after) and done >= tc.stop_after and done < plan.total_steps
        if at_log or at_eval or at_save or at_stop:  # never evaluate or save weights a NaN has reached
            reduced = reduce_and_check(scalars, nonfinite, accelerator, done, first_bad, lr)
        if at_log:
            now = time.perf_counter()
            last = {**reduced, "lr": lr, "img_per_s": seen_since_log / max(now - t_log, 1e-9)}
            seen_since_log, t_log = 0, now
            if accelerator.is_main_process:
                log.write(step=done, samples=done * plan.batch, epoch=done / plan.steps_per_epoch, **last)
                accelerator.log(last, step=done)
            bar.set_postfix(loss=f"{last['loss']:.4f}", lr=f"{lr:.2e}")
        if at_eval:
            last_eval = _evaluate(eval_fn, unwrapped, model, done, accelerator, log)
        if at_save:
            save_checkpoint(accelerator, run, done, done * plan.batch)
        if at_stop:
            bar.close()
            logger.warning("train.stop_after=%d: stopping early, as if killed (no final checkpoint)", tc.stop_after)
            return {"steps": done, "stopped_early": True}
    bar.close()
    wall = time.perf_counter() - t0
    broadcast_buffers(unwrapped, accelerator)  # export and extraction see process 0's BatchNorm statistics
    if ckpt is None or start < plan.total_steps:
        save_checkpoint(accelerator, run, plan.total_steps, plan.total_steps * plan.batch)
    if eval_fn is not None and not last_eval:  # already complete on resume: evaluate once anyway
        last_eval = _evaluate(eval_fn, unwrapped, model, plan.total_steps, accelerator, log)
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
    broadcast_buffers(unwrapped, accelerator)  # every process evaluates the same network
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


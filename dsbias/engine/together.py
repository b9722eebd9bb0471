"""Decisions every process takes together: a setup step on process 0 with the others waiting patiently, and the
non-finite check of the training loss.

Two multi-process failure modes are closed here. A long step on process 0 alone (a manifest build over millions
of images) outlasts the default collective timeout (10 minutes with NCCL) while the others sit in a barrier; and
an error on one process (a config error, a NaN loss) leaves the others blocked in the next collective until that
timeout kills them with a stack trace instead of the one-line reason.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable
from typing import TypeVar

import torch
import torch.distributed as dist
from accelerate import Accelerator

from dsbias.errors import FailedOnMain, UserError

logger = logging.getLogger(__name__)
T = TypeVar("T")

# How long the other processes wait for process 0's setup (a manifest of the paper's 3M images takes hours on
# slow storage); only this wait uses it, training collectives keep their own timeout.
SETUP_TIMEOUT = datetime.timedelta(hours=24)
_patient_groups: dict[datetime.timedelta, object] = {}


def patient_group(timeout: datetime.timedelta = SETUP_TIMEOUT) -> object:
    """A gloo process group over all processes with ``timeout`` (CPU-side, so it works beside NCCL).

    Created once per timeout; creating it is itself collective, so every process must call this in the same
    order (the helpers below do).
    """
    if timeout not in _patient_groups:
        _patient_groups[timeout] = dist.new_group(backend="gloo", timeout=timeout)
    return _patient_groups[timeout]


def main_first(accelerator: Accelerator, fn: Callable[[], T], what: str,
               timeout: datetime.timedelta = SETUP_TIMEOUT) -> T | None:
    """Run ``fn`` on process 0 while the others wait up to ``timeout``, then fail or go on together.

    Args:
        accelerator: Gives the process rank and count.
        fn: The step (e.g. build the manifest and write it).
        what: Names the step in the message the other processes raise when it fails on process 0.
        timeout: How long the others wait (:data:`SETUP_TIMEOUT`).

    Returns:
        ``fn()``'s result on process 0, None on the others (they read what it wrote).

    Raises:
        UserError: On every process, with process 0's one-line message, when ``fn`` raised there; process 0
            re-raises its own exception (a bug keeps its traceback there).
    """
    result: T | None = None
    failure: BaseException | None = None
    message: str | None = None
    if accelerator.is_main_process:
        try:
            result = fn()
        except Exception as e:  # told to the others first, re-raised below
            failure = e
            message = str(e) if isinstance(e, UserError) else f"{what} failed on process 0: {type(e).__name__}: {e}"
    if accelerator.num_processes > 1:
        box = [message]
        dist.broadcast_object_list(box, src=0, group=patient_group(timeout))
        message = box[0]
    if failure is not None:
        raise failure
    if message is not None:  # the main process prints the line; the others stop quietly (cli.args.guarded)
        raise FailedOnMain(message)
    return result


def nonfinite_count(loss: torch.Tensor) -> torch.Tensor:
    """``1.0`` if ``loss`` is NaN or infinite, else ``0.0``, on the loss's device: no GPU -> CPU sync."""
    return (~torch.isfinite(loss.detach())).float()


def reduce_and_check(scalars: dict[str, torch.Tensor], nonfinite: torch.Tensor, accelerator: Accelerator,
                     step: int, first_bad: torch.Tensor, lr: float) -> dict[str, float]:
    """All-reduce the logged scalars and the non-finite count in one collective; stop every process together.

    Args:
        scalars: Step-mean scalars of this process (0-dim tensors on the device).
        nonfinite: Non-finite micro-batch losses of this process since the last check (0-dim).
        accelerator: For the reduction.
        step: Optimiser steps done.
        first_bad: The first step with a non-finite loss on this process (``inf`` if none), 0-dim.
        lr: The current learning rate (for the message).

    Returns:
        The process-mean of each scalar.

    Raises:
        UserError: On every process with the same line when any process saw a non-finite loss.
    """
    keys = sorted(scalars)
    stacked = torch.stack([scalars[k].float() for k in keys] + [nonfinite.float()])
    reduced = accelerator.reduce(stacked, "sum").tolist()  # the one sync per check
    world = accelerator.num_processes
    if reduced[-1] > 0:
        first = first_bad.float().clone()
        if world > 1:
            dist.all_reduce(first, op=dist.ReduceOp.MIN)
        raise UserError(f"training diverged: the loss was NaN or infinite in {int(reduced[-1])} micro-batch(es) "
                        f"from step {int(first.item())} (checked at step {step}, lr {lr:.3g}); lower optim.blr or "
                        "optim.lr, raise optim.warmup_samples, set optim.clip_grad, or use "
                        "train.mixed_precision=bf16 instead of fp16")
    return {k: v / world for k, v in zip(keys, reduced[:-1])}


def broadcast_buffers(module: torch.nn.Module, accelerator: Accelerator) -> None:
    """Copy process 0's buffers (BatchNorm running statistics...) to every process.

    DDP broadcasts buffers at the start of each forward, so after the last training step each process holds
    the statistics of its own last batch: evaluation and export would then differ by process. Called before
    every evaluation and at the end of training.
    """
    if accelerator.num_processes == 1:
        return
    for buf in module.buffers():
        if buf.is_floating_point() or buf.dtype in (torch.int64, torch.int32):
            dist.broadcast(buf.data, src=0)

"""Evaluation of the source classifier: every image of a split exactly once, one image at a time.

"One image at a time" (Liu & He): the network must not see statistics of several images, so the model is in
eval mode (BatchNorm uses its running statistics, no dropout); batching is then only for speed and gives the
same prediction as batch size 1. Each process takes a contiguous block of the split (no padding, so no
duplicates); predictions are gathered as tensors padded to the largest block (one collective per field, no
pickled Python rows) and checked to cover every row exactly once, in manifest order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from torch import nn
from torch.utils.data import Subset

from dsbias.data.dataset import MixedDataset
from dsbias.data.loader import create_loader, process_block
from dsbias.log import progress


@dataclass
class Predictions:
    """Predictions of one split, in manifest order.

    Attributes:
        index: Manifest rows ``[N]``.
        labels: True source ids ``[N]``.
        preds: Predicted source ids ``[N]``.
        probs: Softmax source probabilities ``[N, S]`` float32.
    """

    index: np.ndarray
    labels: np.ndarray
    preds: np.ndarray
    probs: np.ndarray

    @property
    def top1(self) -> float:
        return float(np.mean(self.preds == self.labels)) if self.labels.size else float("nan")


def predict(
    method: nn.Module, ds: MixedDataset, accelerator: Accelerator, batch_size: int, num_workers: int, desc: str
) -> Predictions:
    """Predict the source of every image of ``ds`` (on every process; all get the full result).

    Args:
        method: The unwrapped classifier (has ``logits(x) -> [B, S]``).
        ds: Dataset with the eval transform.
        accelerator: Gives the device, process rank and count.
        batch_size: Images per forward.
        num_workers: DataLoader workers.
        desc: Progress bar label.
    """
    n, rank, world = len(ds), accelerator.process_index, accelerator.num_processes
    loader = create_loader(Subset(ds, process_block(n, rank, world)), batch_size, num_workers=num_workers)
    was_training = method.training
    method.eval()
    parts: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
    with torch.no_grad():
        for x, y, index in progress(loader, desc=desc, disable=not accelerator.is_local_main_process, unit="batch",
                                    leave=False):
            with accelerator.autocast():
                logits = method.logits(x.to(accelerator.device, non_blocking=True))  # [B, S]
            probs = logits.float().softmax(1)  # [B, S], kept on the device until the gather
            parts.append((index.to(probs.device), y.to(probs.device), probs))
    method.train(was_training)
    s = len(ds.sources)
    local_index = torch.cat([p[0] for p in parts]) if parts else torch.zeros(0, dtype=torch.int64)
    local_labels = torch.cat([p[1] for p in parts]) if parts else torch.zeros(0, dtype=torch.int64)
    local_probs = torch.cat([p[2] for p in parts]) if parts else torch.zeros(0, s)
    blocks = [len(process_block(n, r, world)) for r in range(world)]
    index = gather_blocks(local_index, blocks, accelerator).numpy()
    labels = gather_blocks(local_labels, blocks, accelerator).numpy()
    probs = gather_blocks(local_probs.float(), blocks, accelerator).numpy().reshape(n, s)
    assert np.array_equal(index, ds.index), f"{desc}: {n} images expected in manifest order, got {index.size}"
    assert np.array_equal(labels, ds.labels), f"{desc}: labels do not match the manifest"
    return Predictions(index=index.astype(np.int64), labels=labels.astype(np.int64),
                       preds=probs.argmax(1).astype(np.int64), probs=probs)


def gather_blocks(local: torch.Tensor, blocks: list[int], accelerator: Accelerator) -> torch.Tensor:
    """Every process's rows joined in process order: ``[sum(blocks), ...]`` on the CPU.

    Args:
        local: This process's rows ``[blocks[rank], ...]``, on any device.
        blocks: Row counts of every process (known to all: :func:`process_block`), so the padding to the
            largest is cut without exchanging lengths.
        accelerator: For the gather (a tensor collective, on the device of the process group's backend).
    """
    if accelerator.num_processes == 1:
        return local.cpu()
    size = max(blocks)
    padded = torch.zeros((size, *local.shape[1:]), dtype=local.dtype, device=accelerator.device)
    padded[:local.shape[0]] = local.to(accelerator.device)
    everything = accelerator.gather(padded).cpu()  # [W * size, ...]
    return torch.cat([everything[r * size:r * size + b] for r, b in enumerate(blocks)])


class Evaluator:
    """The engine's ``eval_fn``: val top-1 at a step; keeps the latest predictions for the final report."""

    def __init__(self, val: MixedDataset, accelerator: Accelerator, batch_size: int, num_workers: int) -> None:
        self.val, self.accelerator = val, accelerator
        self.batch_size, self.num_workers = batch_size, num_workers
        self.step: int | None = None
        self.predictions: Predictions | None = None

    def __call__(self, method: nn.Module, step: int) -> dict[str, Any]:
        if len(self.val) == 0:
            return {}
        self.predictions = predict(method, self.val, self.accelerator, self.batch_size, self.num_workers,
                                   desc=f"val @{step}")
        self.step = step
        return {"val_top1": self.predictions.top1}


def best_val(records: list[dict[str, Any]], final_top1: float, final_step: int) -> dict[str, Any]:
    """The best val top-1 among the evaluations made during training, and its step: what Liu & He's and Zeng et
    al.'s code report as ``max_accuracy``.

    It is chosen on val, so it is optimistic (the maximum of noisy measurements on the very images it is
    reported on); ``metrics.json``'s ``top1`` stays the final step's, the honest number. Both are given so a
    comparison with a paper's table can say which one it compares.

    Args:
        records: ``log.jsonl`` records; those with ``eval/val_top1`` (written every ``classify.eval_every``
            steps and at the end) are used.
        final_top1: The final evaluation, counted too (it may have been made after the log's last one).
        final_step: Its step.

    Returns:
        ``best_val_top1``, ``best_val_step`` (the first step that reached it), ``best_val_chosen_on`` (``"val"``)
        and ``val_evals`` (how many evaluations the maximum is over).
    """
    evals = {int(r["step"]): float(r["eval/val_top1"]) for r in records if "eval/val_top1" in r and "step" in r}
    evals[int(final_step)] = float(final_top1)
    step = min(evals, key=lambda s: (-evals[s], s))
    return {"best_val_top1": evals[step], "best_val_step": step, "best_val_chosen_on": "val",
            "val_evals": len(evals)}

"""Feature extraction: a frozen backbone over every manifest row, written to the feature-file contract
(:mod:`dsbias.features.store`), resumably.

The rows of each split are cut into blocks of ``extract.block_batches`` whole batches. The blocks not yet written
are shared out among the processes (contiguous runs, in order); each process extracts its blocks with one loader
and writes every block, once complete, as its own part file. RAM holds one block per process, so millions of
images fit, and no two processes ever write the same file. When every block is written, the main process merges
the parts into ``{split}_features.npy`` (through a memory map), writes labels and index, and ``meta.json`` last.

A killed extraction rerun into the same directory keeps the parts its plan (``.parts/plan.json``: backbone,
weights' sha256, preprocessing, transform, manifest, batch and block size, precision) still matches and extracts
only the rest. Batches never straddle blocks, so every block is computed from the same batches whatever the
process count or the interruptions: the published files are the same bytes.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import broadcast_object_list
from torch import nn
from torch.utils.data import Subset

from dsbias.anatomy.transforms import create_anatomy_transforms
from dsbias.data.config import DataConfig
from dsbias.data.dataset import MixedDataset
from dsbias.data.loader import create_loader, process_block
from dsbias.data.manifest import SPLITS, Manifest
from dsbias.data.sources.registry import create_sources
from dsbias.data.views import IMAGENET_MEAN, IMAGENET_STD, create_eval_transform
from dsbias.errors import UserError
from dsbias.features import store
from dsbias.features.config import ExtractConfig
from dsbias.log import progress
from dsbias.models.preprocess import ModelPreprocess
from dsbias.runs import sha256_file
from dsbias.typedconfig import diff_keys

logger = logging.getLogger(__name__)


def _transform(data: DataConfig, preprocess: ModelPreprocess | None, meta: dict[str, Any]) -> tuple[Any, dict]:
    """The view of every image and its record: the model's own preprocessing with ``data.transform``'s stages in
    place, or dsbias's eval view (a dsbias backbone) at ``meta``'s size, crop and mean/std (default: ``data``'s
    size and crop, ImageNet's mean/std)."""
    anatomy = create_anatomy_transforms(data)  # data.transform applies to features too (train and val alike)
    if preprocess is not None:
        return preprocess.compose(anatomy.pil, anatomy.tensor), preprocess.record
    mean, std = tuple(meta.get("mean", IMAGENET_MEAN)), tuple(meta.get("std", IMAGENET_STD))
    size, crop = int(meta.get("image_size", data.image_size)), float(meta.get("crop_pct", data.crop_pct))
    view = {"library": "dsbias", "image_size": size, "crop_pct": crop, "interpolation": "bicubic",
            "mean": list(mean), "std": list(std)}
    return create_eval_transform(size, crop, mean, std, anatomy.pil, anatomy.tensor), view


def _check_size(data: DataConfig, size: int) -> None:
    """A patch shuffle needs its tile to divide the input side the model's preprocessing gives."""
    if "patch_shuffle" in data.transform and size % data.anatomy.patch_size:
        raise UserError(f"data.anatomy.patch_size={data.anatomy.patch_size} does not divide the backbone's input "
                        f"size {size}; choose a divisor of {size}")


def _pending(out: Path, plan: dict[str, Any], accelerator: Accelerator) -> dict[str, list[int]]:
    """Blocks still to write per split, decided on the main process (one listing, even on NFS) and broadcast.

    Raises:
        UserError: ``out`` holds parts of an extraction with other settings.
    """
    box: list[Any] = [None]  # the pending blocks, or the refusal: every process gets it, so none waits
    if accelerator.is_main_process:
        old = store.read_plan(out)
        if old is not None and old != plan:
            keys = ", ".join(diff_keys(old, plan)[:6])
            box[0] = (f"{store.parts_dir(out)}: a partial extraction with other settings ({keys} differ); rerun "
                      f"with the same settings to continue, or delete {store.parts_dir(out)} to restart")
        else:
            store.write_plan(out, plan)
            nblocks = {s: -(-plan["rows"][s] // plan["block_rows"]) for s in SPLITS}
            box[0] = {s: sorted(set(range(nblocks[s])) - store.completed_blocks(out, s)) for s in SPLITS}
            done = sum(nblocks.values()) - sum(map(len, box[0].values()))
            if done:
                logger.info("resuming %s: %d of %d blocks already written", out, done, sum(nblocks.values()))
    if accelerator.num_processes > 1:
        broadcast_object_list(box)
    if isinstance(box[0], str):
        raise UserError(box[0])
    return box[0]


def _extract_blocks(backbone: nn.Module, ds: MixedDataset, blocks: list[int], out: Path, settings: ExtractConfig,
                    accelerator: Accelerator, num_workers: int, budget: int | None) -> int:
    """Extract ``blocks`` of one split, saving each as a part file when complete; returns how many were saved
    (fewer than ``len(blocks)`` only when ``budget`` runs out: ``extract.stop_after``)."""
    r, n = settings.block_rows, len(ds)
    rows = [i for b in blocks for i in range(b * r, min((b + 1) * r, n))]
    if not rows or budget == 0:
        return 0
    loader = create_loader(Subset(ds, rows), settings.batch_size, num_workers=num_workers)
    queue, buffer, pos, saved = list(blocks), [], 0, 0
    for x, _, index in progress(loader, desc=f"extract {ds.split}", unit="batch",
                                disable=not accelerator.is_local_main_process):
        with torch.no_grad(), accelerator.autocast():  # train.mixed_precision (bf16 on GPUs); features stay float32
            f = backbone(x.to(accelerator.device, non_blocking=True)).float()  # [B, D]
        assert np.array_equal(index.numpy(), ds.index[rows[pos:pos + len(x)]]), "loader order broke"
        buffer.append(f.cpu().numpy())
        pos += len(x)
        b = queue[0]
        if sum(map(len, buffer)) == min((b + 1) * r, n) - b * r:  # the block is complete: batches align with it
            store.save_part(out, ds.split, b, np.concatenate(buffer))
            queue.pop(0)
            buffer, saved = [], saved + 1
            if budget is not None and saved == budget:
                break
    return saved


def extract_features(
    backbone: nn.Module,
    manifest: Manifest,
    data: DataConfig,
    out: str | Path,
    accelerator: Accelerator,
    meta: dict[str, Any] | None = None,
    settings: ExtractConfig | None = None,
    preprocess: ModelPreprocess | None = None,
) -> bool:
    """Extract features of every train and val row of ``manifest`` into ``out`` (resuming a killed extraction).

    Args:
        backbone: Maps ``[B, 3, H, W]`` to ``[B, D]``; used in eval mode without gradients.
        manifest: The sampled images.
        data: Data config the manifest was drawn with (readers, ``transform``; image size for dsbias's view).
        out: Features directory (created).
        accelerator: Splits the blocks over processes.
        meta: Extra ``meta.json`` fields (backbone record: spec, weights' sha256, pooling, layer...).
        settings: Batch and block size, ``stop_after`` (the ``extract`` section; defaults if None).
        preprocess: The model's own preprocessing; None: dsbias's eval view.

    Returns:
        True when the features are published; False when ``settings.stop_after`` stopped it first.
    """
    out, meta, settings = Path(out), dict(meta or {}), settings or ExtractConfig()
    if accelerator.is_main_process:
        store.mark_incomplete(out)  # until meta.json is rewritten at the end
    transform, view = _transform(data, preprocess, meta)
    readers = create_sources(data)
    was_training = backbone.training
    backbone.eval().to(accelerator.device)
    datasets = {s: MixedDataset(manifest, s, transform, readers, max_short_side=data.max_short_side) for s in SPLITS}
    first = datasets["train"][0][0]  # [3, H, W]
    _check_size(data, int(first.shape[-1]))
    with torch.no_grad():  # the feature dim, from one image (cheap, and exact for any pooling)
        dim = int(backbone(first.unsqueeze(0).to(accelerator.device)).shape[1])
    manifest_file = meta.pop("manifest_path", None)
    full_meta = {
        "dim": dim, "dtype": "float32", "sources": manifest.sources,
        "counts": {s: len(datasets[s]) for s in SPLITS},
        "image_size": view.get("image_size", int(first.shape[-1])), "crop_pct": view.get("crop_pct"),
        "mean": view.get("mean"), "std": view.get("std"), "l2_normalized": False,
        "transform": data.transform or "none",
        "manifest_sha256": sha256_file(manifest_file) if manifest_file else manifest.summary.get("sha256"),
        "preprocess": view, **meta}
    plan = json.loads(json.dumps({  # as it reads back from plan.json (lists, not tuples)
        "meta": full_meta, "anatomy": dataclasses.asdict(data.anatomy) if data.transform else None,
        "rows": {s: len(datasets[s]) for s in SPLITS}, "block_rows": settings.block_rows,
        "batch_size": settings.batch_size, "mixed_precision": str(accelerator.mixed_precision)}))
    pending = _pending(out, plan, accelerator)
    budget, unfinished = settings.stop_after or None, 0
    for split in SPLITS:
        mine = [pending[split][i] for i in process_block(len(pending[split]), accelerator.process_index,
                                                          accelerator.num_processes)]
        saved = _extract_blocks(backbone, datasets[split], mine, out, settings, accelerator, data.num_workers, budget)
        budget = None if budget is None else budget - saved
        unfinished += len(mine) - saved
    backbone.train(was_training)
    stopped = accelerator.reduce(torch.tensor(int(unfinished > 0), device=accelerator.device), "sum").item()
    accelerator.wait_for_everyone()
    if stopped:
        if accelerator.is_main_process:
            logger.info("extract.stop_after=%d: stopped as if killed; rerun into %s to continue",
                        settings.stop_after, out)
        return False
    if accelerator.is_main_process:
        codes = manifest.group_codes() if manifest.has_groups else None  # the probes resample whole val groups
        for split in SPLITS:
            store.publish_parts(out, split, dim, settings.block_rows, datasets[split].labels, datasets[split].index)
            if codes is not None:
                store.write_groups(out, split, codes[np.asarray(datasets[split].index)])
        store.write_meta(out, full_meta)
        store.remove_parts(out)
        logger.info("features: %s (dim %d, %s)", out, dim, full_meta["counts"])
    accelerator.wait_for_everyone()
    return True

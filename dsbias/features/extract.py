"""Feature extraction: a frozen backbone over every manifest row, written to the feature-file contract
(:mod:`dsbias.features.store`).

Each process takes a contiguous block of a split's rows and writes its features straight into one shared,
preallocated memory-mapped ``.npy`` (so RAM stays bounded for millions of images and there is no padding, so
no duplicates to remove). Row ``i`` of ``{split}_features.npy`` is manifest row ``{split}_index.npy[i]``, in
manifest order, whatever the number of processes. The main process checks that every row was written, then
renames the files into place and writes ``meta.json`` last.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from torch import nn
from torch.utils.data import Subset

from dsbias.anatomy.transforms import create_anatomy_transforms
from dsbias.data.config import DataConfig
from dsbias.data.dataset import MixedDataset
from dsbias.data.loader import create_loader, process_block
from dsbias.data.manifest import SPLITS, Manifest
from dsbias.data.sources.registry import create_sources
from dsbias.data.views import IMAGENET_MEAN, IMAGENET_STD, create_eval_transform
from dsbias.features.store import create_partial, mark_incomplete, open_partial, publish_split, write_meta
from dsbias.log import progress
from dsbias.runs import sha256_file

logger = logging.getLogger(__name__)


def _extract_split(
    backbone: nn.Module, ds: MixedDataset, out: Path, split: str, accelerator: Accelerator, batch_size: int,
    num_workers: int,
) -> int:
    """Write ``{split}_features.npy`` (and labels/index); returns the feature dim."""
    n, rank, world = len(ds), accelerator.process_index, accelerator.num_processes
    with torch.no_grad():  # the feature dim, from one image (cheap, and exact for any pooling)
        dim = int(backbone(ds[0][0].unsqueeze(0).to(accelerator.device)).shape[1])
    if accelerator.is_main_process:
        create_partial(out, split, n, dim)
    accelerator.wait_for_everyone()
    block = process_block(n, rank, world)
    lo = block.start
    feats = open_partial(out, split)
    loader = create_loader(Subset(ds, block), batch_size, num_workers=num_workers)
    pos = lo
    for x, _, index in progress(loader, desc=f"extract {split}", disable=not accelerator.is_local_main_process,
                                unit="batch"):
        with torch.no_grad():
            f = backbone(x.to(accelerator.device, non_blocking=True)).float()  # [B, D]
        assert f.shape == (len(x), dim), f"backbone gave {tuple(f.shape)}, expected ({len(x)}, {dim})"
        assert np.array_equal(index.numpy(), ds.index[pos:pos + len(x)]), "loader order broke"
        feats[pos:pos + len(x)] = f.cpu().numpy()
        pos += len(x)
    feats.flush()
    del feats
    written = accelerator.reduce(torch.tensor(pos - lo, device=accelerator.device), "sum").item()
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        if written != n:  # one feature row per image, or nothing is published
            raise RuntimeError(f"{split}: {written} feature rows written for {n} images")
        publish_split(out, split, ds.labels, ds.index)
    accelerator.wait_for_everyone()
    return dim


def extract_features(
    backbone: nn.Module,
    manifest: Manifest,
    data: DataConfig,
    out: str | Path,
    accelerator: Accelerator,
    meta: dict[str, Any] | None = None,
    batch_size: int = 256,
) -> Path:
    """Extract features of every train and val row of ``manifest`` into ``out``.

    Args:
        backbone: Maps ``[B, 3, H, W]`` to ``[B, D]``; used in eval mode without gradients.
        manifest: The sampled images.
        data: Data config the manifest was drawn with (readers, image size, crop_pct).
        out: Features directory (created).
        accelerator: Splits the rows over processes.
        meta: Extra ``meta.json`` fields (backbone name, pooling, checkpoint hash, normalisation...).
        batch_size: Images per forward pass per process.

    Returns:
        The features directory.
    """
    out = Path(out)
    meta = dict(meta or {})
    if accelerator.is_main_process:
        mark_incomplete(out)  # until meta.json is rewritten at the end
    mean = tuple(meta.get("mean", IMAGENET_MEAN))
    std = tuple(meta.get("std", IMAGENET_STD))
    anatomy = create_anatomy_transforms(data)  # data.transform applies to features too (train and val alike)
    transform = create_eval_transform(data.image_size, data.crop_pct, mean, std, anatomy.pil, anatomy.tensor)
    readers = create_sources(data)
    was_training = backbone.training
    backbone.eval().to(accelerator.device)
    dims = {}
    for split in SPLITS:
        ds = MixedDataset(manifest, split, transform, readers, max_short_side=data.max_short_side)
        dims[split] = _extract_split(backbone, ds, out, split, accelerator, batch_size, data.num_workers)
    backbone.train(was_training)
    assert dims["train"] == dims["val"]
    if accelerator.is_main_process:
        manifest_file = meta.pop("manifest_path", None)
        write_meta(out, {
            "dim": dims["train"], "dtype": "float32", "sources": manifest.sources,
            "counts": {s: len(manifest.split_indices(s)) for s in SPLITS},
            "image_size": data.image_size, "crop_pct": data.crop_pct, "mean": list(mean), "std": list(std),
            "l2_normalized": False, "transform": data.transform or "none",
            "manifest_sha256": sha256_file(manifest_file) if manifest_file else manifest.summary.get("sha256"),
            **meta,
        })
        logger.info("features: %s (dim %d, %s)", out, dims["train"],
                    {s: len(manifest.split_indices(s)) for s in SPLITS})
    accelerator.wait_for_everyone()
    return out

"""What every frozen-backbone loader shares (:mod:`dsbias.models.frozen` dispatches to them): the settings it
reads, the backbone it returns, the weights' record, local files, the offline message, blocks and the feature
dim. A module of its own so the loaders import it and :mod:`dsbias.models.frozen` imports them, one way.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from dsbias.errors import UserError
from dsbias.models.preprocess import ModelPreprocess
from dsbias.runs import sha256_file

logger = logging.getLogger(__name__)
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pth", ".pt", ".tar", ".npz", ".ckpt")


class FrozenSettings(Protocol):
    """What the loaders read of the ``extract`` section (:class:`dsbias.features.config.ExtractConfig`)."""

    backbone: str
    weights: str | None
    init: str
    pool: str
    layer: int | str
    kwargs: dict[str, Any]


@dataclass
class FrozenBackbone:
    """A frozen backbone ready to extract.

    Attributes:
        module: ``[B, 3, H, W] -> [B, D]`` float features, in eval mode, without gradients.
        preprocess: The model's own preprocessing; None for a dsbias run's backbone, which uses dsbias's eval
            view at the size and normalisation in the record.
        record: ``meta.json`` fields: ``backbone`` (the spec), ``library``, ``name``, ``weights``,
            ``checkpoint_sha256``, ``init``, ``pool``, ``pooling`` (what was applied), ``layer``, ``preprocess``.
    """

    module: nn.Module
    preprocess: ModelPreprocess | None
    record: dict[str, Any]


def weights_record(path: str | Path | None) -> dict[str, Any]:
    """``weights`` and ``checkpoint_sha256`` of a weights file, or of the weight files in a directory (then the
    sha256 of their sorted ``name sha256`` lines, with each file's hash under ``weights_files``)."""
    if path is None:
        return {"weights": None, "checkpoint_sha256": None}
    p = Path(path)
    if p.is_file():
        return {"weights": str(p), "checkpoint_sha256": sha256_file(p)}
    files = {f.name: sha256_file(f) for f in sorted(p.iterdir()) if f.is_file() and f.suffix in WEIGHT_SUFFIXES}
    joined = "".join(f"{name} {sha}\n" for name, sha in files.items())
    return {"weights": str(p), "checkpoint_sha256": hashlib.sha256(joined.encode()).hexdigest() if files else None,
            "weights_files": files}


def local_file(path: str, what: str) -> Path:
    """An existing weights file, or one line saying what is wrong.

    Raises:
        UserError: No such file.
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise UserError(f"{what}: {p} is not a file")
    return p


def offline_hint(exc: BaseException, what: str, provide: str) -> UserError:
    """The one line for a hub model that cannot be had: offline (``HF_HUB_OFFLINE=1``) or unreachable."""
    mode = "HF_HUB_OFFLINE=1 is set" if os.environ.get("HF_HUB_OFFLINE") not in (None, "", "0") else "no network"
    first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
    return UserError(f"{what}: not in the local cache and {mode} ({first}); {provide}")


def block_index(layer: int | str) -> int | None:
    """``final`` -> None, else the block index as an int."""
    return None if layer == "final" else int(layer)


def probe_dim(module: nn.Module, size: tuple[int, int], what: str) -> int:
    """The feature dim from one blank image; a layer or pooling the model does not have fails here, in one line.

    Raises:
        UserError: The forward fails (a block index out of range, pool=cls without a class token...).
    """
    try:
        with torch.no_grad():
            out = module.eval()(torch.zeros(1, 3, *size))
    except UserError:
        raise
    except (AssertionError, IndexError, ValueError, RuntimeError, NotImplementedError) as e:
        raise UserError(f"{what}: {type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
                        " (check extract.layer and extract.pool)") from None
    if out.ndim != 2:
        raise UserError(f"{what}: gives features of shape {tuple(out.shape)}, expected [B, D]")
    return int(out.shape[1])

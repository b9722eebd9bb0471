"""The feature-file contract between extraction and the probes: the only module that names, writes or reads
these files.

A features directory holds, for each split in ``{train, val}``::

    {split}_features.npy   float32 [N, D]  raw pooled features (not normalised; each probe normalises itself);
                                           float16 when meta["dtype"] says so (half the disk and page cache)
    {split}_labels.npy     int64   [N]     source ids (index into meta["sources"])
    {split}_index.npy      int64   [N]     manifest rows, ascending (row i of features is manifest row index[i])
    {split}_groups.npy     int64   [N]     optional: group code of each row (images that belong together, codes
                                           shared by train and val); absent = every row its own group
    meta.json              {"format_version", "dim", "dtype", "sources", "counts", "pooling", "backbone",
                            "checkpoint_sha256", "manifest_sha256", ...}

and what is computed from them beside them (``probe_<name>.json``, :func:`result_path`; ``leakage.json``).
A pretraining run also writes the features of its backbone at initialisation (``features_init/``, the
random-init control; :func:`find_init_features`).
``.npy`` is memory-mappable (``np.load(mmap_mode="r")``), needs no torch to read and cannot hold code; the JSON
sidecar follows nanoGPT's ``train.bin`` + ``meta.pkl``, minus the pickle.

Writing: small arrays at once with :func:`write_split`; an extraction of millions of rows writes one part file per
block of rows (:func:`save_part`, under ``.parts/`` with a plan, :func:`write_plan`), skips the blocks already
written when it is rerun (:func:`completed_blocks`) and merges them at the end (:func:`publish_parts`).
:func:`write_meta` comes last, so ``meta.json`` marks a complete directory.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dsbias.errors import UserError
from dsbias.runs import RunDir, atomic_path, read_json, save_npy, write_json

FORMAT_VERSION = 1
SPLITS = ("train", "val")
META = "meta.json"
DTYPES = ("float32", "float16")  # feature dtypes on disk; meta["dtype"] names the one a directory holds
READ_ROWS = 65536  # rows per block read by row_blocks and the finiteness check


class FeatureError(UserError, ValueError):
    """Feature files are missing, inconsistent or unusable; the message names the file."""


def split_file(root: str | Path, split: str, part: str) -> Path:
    """``root/{split}_{part}.npy`` for ``part`` in ``features``, ``labels``, ``index``."""
    return Path(root) / f"{split}_{part}.npy"


def result_path(root: str | Path, name: str) -> Path:
    """Where the probe ``name`` writes its result beside the features: ``root/probe_<name>.json``."""
    return Path(root) / f"probe_{name}.json"


def leakage_path(root: str | Path) -> Path:
    """Where the near-duplicate audit writes its report beside the features: ``root/leakage.json``."""
    return Path(root) / "leakage.json"


@dataclass
class FeatureSplit:
    """One split's arrays: ``features [N, D]``, ``labels [N]``, ``index [N]``, ``groups [N]`` (None: one group
    per row)."""

    features: np.ndarray
    labels: np.ndarray
    index: np.ndarray
    groups: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass
class FeatureSet:
    """Both splits of a features directory and its ``meta.json``."""

    root: Path
    meta: dict[str, Any]
    train: FeatureSplit
    val: FeatureSplit

    @property
    def sources(self) -> list[str]:
        return list(self.meta["sources"])

    @property
    def dim(self) -> int:
        return int(self.meta["dim"])


# ----------------------------------------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------------------------------------


def write_split(root: str | Path, split: str, features: np.ndarray, labels: np.ndarray, index: np.ndarray,
                dtype: str = "float32") -> None:
    """Atomically write one split's three arrays (already complete, in manifest order); ``dtype`` in
    :data:`DTYPES` is the features' dtype on disk, to be recorded as ``meta["dtype"]`` by :func:`write_meta`."""
    if dtype not in DTYPES:
        raise ValueError(f"feature dtype {dtype!r}: expected one of {DTYPES}")
    save_npy(split_file(root, split, "features"), np.ascontiguousarray(features, dtype=dtype))
    save_npy(split_file(root, split, "labels"), np.asarray(labels, dtype=np.int64))
    save_npy(split_file(root, split, "index"), np.asarray(index, dtype=np.int64))


def write_split_blocks(root: str | Path, split: str, shape: tuple[int, int], blocks: Iterator[np.ndarray],
                       labels: np.ndarray, index: np.ndarray, dtype: str = "float32") -> None:
    """Write one split whose features arrive as consecutive row blocks (memory-mapped output, one block in RAM):
    for matrices larger than memory. Same files and checks as :func:`write_split`."""
    if dtype not in DTYPES:
        raise ValueError(f"feature dtype {dtype!r}: expected one of {DTYPES}")
    with atomic_path(split_file(root, split, "features"), suffix=".npy") as tmp:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=shape)
        lo = 0
        for block in blocks:
            out[lo:lo + len(block)] = block
            lo += len(block)
        if lo != shape[0]:
            raise ValueError(f"{split}: {lo} rows written, {shape[0]} declared")
        out.flush()
        del out
    save_npy(split_file(root, split, "labels"), np.asarray(labels, dtype=np.int64))
    save_npy(split_file(root, split, "index"), np.asarray(index, dtype=np.int64))


def write_groups(root: str | Path, split: str, groups: np.ndarray) -> None:
    """Atomically write one split's group codes ``[N]`` (rows in the split's manifest order)."""
    save_npy(split_file(root, split, "groups"), np.asarray(groups, dtype=np.int64))


def mark_incomplete(root: str | Path) -> None:
    """Create ``root`` and remove its ``meta.json`` (and stale group files): the directory is incomplete until
    :func:`write_meta`."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / META).unlink(missing_ok=True)
    for split in SPLITS:
        split_file(root, split, "groups").unlink(missing_ok=True)


# An extraction in progress: one part file per block of rows, each written once (atomically) by the one process
# that extracted it, beside a plan that says what the parts are features of. No two processes ever write the
# same file (a shared memory map on NFS could lose rows: issue 16). A rerun keeps the parts its plan still
# matches; publishing merges them through a memory map, one block in RAM at a time.


def parts_dir(root: str | Path) -> Path:
    """``root/.parts``: the part files and plan of an extraction in progress (removed once it is published)."""
    return Path(root) / ".parts"


def part_file(root: str | Path, split: str, block: int) -> Path:
    """``root/.parts/{split}-{block:07d}.npy``: float32 ``[rows of the block, D]``."""
    return parts_dir(root) / f"{split}-{block:07d}.npy"


def read_plan(root: str | Path) -> dict[str, Any] | None:
    """The plan of the extraction in progress, or None."""
    f = parts_dir(root) / "plan.json"
    return read_json(f) if f.is_file() else None


def write_plan(root: str | Path, plan: dict[str, Any]) -> None:
    """Record what the part files are features of (compared on every rerun before any part is kept)."""
    write_json(parts_dir(root) / "plan.json", plan)


def save_part(root: str | Path, split: str, block: int, features: np.ndarray) -> None:
    """Atomically write one block's features: a part file exists only once complete."""
    save_npy(part_file(root, split, block), np.ascontiguousarray(features, dtype=np.float32))


def completed_blocks(root: str | Path, split: str) -> set[int]:
    """Blocks of ``split`` whose part file is written."""
    d = parts_dir(root)
    if not d.is_dir():
        return set()
    return {int(f.stem.rsplit("-", 1)[1]) for f in d.glob(f"{split}-*.npy") if f.stem.rsplit("-", 1)[1].isdigit()}


def publish_parts(root: str | Path, split: str, dim: int, block_rows: int, labels: np.ndarray,
                  index: np.ndarray) -> None:
    """Merge the split's part files, in block order, into ``{split}_features.npy`` (memory-mapped, so RAM holds one
    block), then write its labels and index.

    Raises:
        FeatureError: A part is missing or has the wrong shape.
    """
    rows = len(labels)
    with atomic_path(split_file(root, split, "features"), suffix=".npy") as tmp:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(rows, dim))
        for b, lo in enumerate(range(0, rows, block_rows)):
            f = part_file(root, split, b)
            if not f.is_file():
                raise FeatureError(f"{f}: missing; rerun the extraction into {root} to write it")
            part = np.load(f, allow_pickle=False)
            if part.shape != (min(block_rows, rows - lo), dim):
                raise FeatureError(f"{f}: shape {part.shape}, expected ({min(block_rows, rows - lo)}, {dim})")
            out[lo:lo + len(part)] = part
        out.flush()
        del out
    save_npy(split_file(root, split, "labels"), np.asarray(labels, dtype=np.int64))
    save_npy(split_file(root, split, "index"), np.asarray(index, dtype=np.int64))


def remove_parts(root: str | Path) -> None:
    """Delete the part files and plan once the features are published."""
    shutil.rmtree(parts_dir(root), ignore_errors=True)


def write_meta(root: str | Path, meta: dict[str, Any]) -> None:
    """Write ``meta.json`` last: its presence marks the directory complete (``dtype`` defaults to float32)."""
    write_json(Path(root) / META, {"format_version": FORMAT_VERSION, "dtype": "float32", **meta})


# ----------------------------------------------------------------------------------------------------------
# Reading
# ----------------------------------------------------------------------------------------------------------


def find_features_dir(path: str | Path) -> Path:
    """Accept a run dir (``<run>/features/meta.json``) or a features dir (``meta.json``).

    Raises:
        FeatureError: Neither holds a ``meta.json``.
    """
    p = Path(path)
    if (p / META).is_file():
        return p
    if (p / "features" / META).is_file():
        return p / "features"
    raise FeatureError(f"{p}: no {META} here or in {p / 'features'} (run ssl/extract.py first?)")


def read_rows(features: np.ndarray, lo: int, hi: int, native: bool = False) -> np.ndarray:
    """Rows ``lo:hi`` of ``features [N, D]`` as a new array ``[hi - lo, D]``: float32, or with ``native`` the
    dtype on disk (float16 rows are half the bytes; torch converts them much faster than numpy does).

    A memory-mapped file is read with a plain file read, not through the map: pages touched through a map count
    in the process's resident memory until the kernel reclaims them, so a pass over a 3 GB memmap would show
    3 GB of RSS; a read leaves them in the page cache only. Memory stays one block whatever ``N``.
    """
    hi = min(hi, features.shape[0])
    if isinstance(features, np.memmap) and features.filename and features.flags.c_contiguous:
        row = features.shape[1] * features.dtype.itemsize
        block = np.fromfile(features.filename, dtype=features.dtype, count=(hi - lo) * features.shape[1],
                            offset=features.offset + lo * row).reshape(hi - lo, features.shape[1])
        return block if native else block.astype(np.float32, copy=False)
    return np.array(features[lo:hi], dtype=None if native else np.float32)  # always a copy


def row_blocks(features: np.ndarray, block: int = READ_ROWS, native: bool = False) -> Iterator[tuple[int, np.ndarray]]:
    """``(first row, rows [<= block, D])`` over ``features [N, D]`` in order, one block in RAM at a time
    (float32, or the dtype on disk with ``native``)."""
    for lo in range(0, features.shape[0], block):
        yield lo, read_rows(features, lo, lo + block, native)


def _check_split(root: Path, split: str, meta: dict[str, Any], mmap: bool) -> FeatureSplit:
    arrays = {}
    for part in ("features", "labels", "index"):
        f = split_file(root, split, part)
        if not f.is_file():
            raise FeatureError(f"{f}: missing")
        try:
            arrays[part] = np.load(f, mmap_mode="r" if mmap else None, allow_pickle=False)
        except ValueError as e:
            raise FeatureError(f"{f}: not a plain .npy array ({e})") from None
    x, y, idx = arrays["features"], arrays["labels"], arrays["index"]
    name = split_file(root, split, "features")
    if x.ndim != 2:
        raise FeatureError(f"{name}: expected [N, D], got shape {x.shape}")
    dtype = meta.get("dtype", "float32")
    if dtype not in DTYPES:
        raise FeatureError(f"{root / META}: dtype {dtype!r}, expected one of {', '.join(DTYPES)}")
    if x.dtype != np.dtype(dtype):
        raise FeatureError(f"{name}: dtype {x.dtype}, but {META} says {dtype}; re-extract or fix {META}")
    if x.shape[1] != meta["dim"]:
        raise FeatureError(f"{name}: dim {x.shape[1]} but {META} says {meta['dim']}")
    if y.shape != (x.shape[0],) or idx.shape != (x.shape[0],):
        raise FeatureError(f"{root}/{split}_*.npy: {x.shape[0]} feature rows, {y.shape} labels, {idx.shape} index")
    if y.dtype.kind not in "iu" or idx.dtype.kind not in "iu":
        raise FeatureError(f"{root}/{split}_labels/index.npy: integer arrays expected")
    if x.shape[0] and (y.min() < 0 or y.max() >= len(meta["sources"])):
        raise FeatureError(f"{split_file(root, split, 'labels')}: labels outside 0..{len(meta['sources']) - 1}")
    if x.shape[0] > 1 and np.any(np.diff(idx) <= 0):
        raise FeatureError(f"{split_file(root, split, 'index')}: rows not in strictly ascending manifest order")
    # Block by block, so a memory-mapped file of millions of rows is checked without holding it in RAM.
    for start, rows in row_blocks(x):
        if not np.isfinite(rows).all():
            raise FeatureError(f"{name}: NaN or inf in rows {start}..{start + len(rows) - 1}")
    groups = None
    gfile = split_file(root, split, "groups")
    if gfile.is_file():
        groups = np.load(gfile, allow_pickle=False)
        if groups.shape != (x.shape[0],) or groups.dtype.kind not in "iu":
            raise FeatureError(f"{gfile}: expected {x.shape[0]} integer group codes, got {groups.dtype} {groups.shape}")
        groups = np.asarray(groups, dtype=np.int64)
    return FeatureSplit(features=x, labels=np.asarray(y, dtype=np.int64), index=np.asarray(idx, dtype=np.int64),
                        groups=groups)


def load_features(path: str | Path, mmap: bool = True) -> FeatureSet:
    """Load and check a features directory (or the one inside a run dir).

    Args:
        path: Run dir or features dir.
        mmap: Memory-map the feature arrays instead of reading them into RAM.

    Raises:
        FeatureError: Missing split, wrong dtype or dim, NaNs, labels out of range, fewer than two sources.
    """
    root = find_features_dir(path)
    try:
        meta = read_json(root / META)
    except ValueError as e:  # JSONDecodeError and bad UTF-8 alike
        raise FeatureError(f"{root / META}: not valid JSON ({e}) (rerun ssl/extract.py into this dir)") from None
    if not isinstance(meta, dict):
        raise FeatureError(f"{root / META}: a JSON object expected, got {type(meta).__name__} "
                           "(rerun ssl/extract.py into this dir)")
    for key in ("dim", "sources"):
        if key not in meta:
            raise FeatureError(f"{root / META}: missing '{key}'")
    if not isinstance(meta["sources"], list) or not all(isinstance(x, str) for x in meta["sources"]):
        raise FeatureError(f"{root / META}: 'sources' must be a list of names, got {meta['sources']!r}")
    if isinstance(meta["dim"], bool) or not isinstance(meta["dim"], int) or meta["dim"] < 1:
        raise FeatureError(f"{root / META}: 'dim' must be a positive int, got {meta['dim']!r}")
    if meta.get("format_version", FORMAT_VERSION) > FORMAT_VERSION:
        raise FeatureError(f"{root / META}: format_version {meta['format_version']} is newer than this dsbias")
    if len(meta["sources"]) < 2:
        raise FeatureError(f"{root / META}: {len(meta['sources'])} source(s); separability needs >= 2")
    train, val = (_check_split(root, s, meta, mmap) for s in SPLITS)
    if len(train) == 0 or len(val) == 0:
        raise FeatureError(f"{root}: empty split (train {len(train)}, val {len(val)} rows)")
    if (train.groups is None) != (val.groups is None):
        raise FeatureError(f"{root}: {{train,val}}_groups.npy: one split has group codes and the other not")
    return FeatureSet(root=root, meta=meta, train=train, val=val)


def shared_groups(fs: FeatureSet) -> int:
    """Number of group codes found in both train and val (0 without groups): a group on both sides leaks."""
    if fs.train.groups is None or fs.val.groups is None:
        return 0
    return int(np.intersect1d(fs.train.groups, fs.val.groups).size)


def find_init_features(fs: FeatureSet) -> FeatureSet | None:
    """The random-init control of a pretraining run's features (its ``features_init/``), or None.

    Raises:
        FeatureError: The control exists but was extracted from other rows (a stale directory).
    """
    run = RunDir.at(fs.root.parent)
    if fs.root.resolve() != run.features.resolve() or not (run.init_features / META).is_file():
        return None
    init = load_features(run.init_features)
    if not np.array_equal(init.val.index, fs.val.index) or init.sources != fs.sources:
        raise FeatureError(f"{run.init_features}: its val rows or sources differ from {fs.root}'s (stale); "
                           f"rerun: python ssl/extract.py --run {run.root}")
    return init

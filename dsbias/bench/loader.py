"""``tools/bench_loader.py``: is data loading the bottleneck? Decode + augment images/s from folders, tar shards,
parquet shards and a ``save_to_disk`` dataset, next to the project's own methods' training images/s at the same
image size, as one markdown table.

Everything is made in a temporary folder: JPEGs of about 500 px (the paper's preprocessed size), the same bytes
written to tar and parquet shards by :mod:`dsbias.data.prepare` and, when ``datasets`` is installed, saved
with ``save_to_disk``. Parquet is timed twice: with the per-process row-group cache (a source this small fits
in it) and with the cache off, where every image read is a read of its row group, as for a source much larger
than the cache. The manifest build rate (decode + hash of every sampled image) is measured on the same files
and given per 100k images. Passes and builds are timed round-robin over the kinds (median of 3), so a change
of load on a shared machine hits every kind alike; the CPU milliseconds per image of reading and decoding in
one process (``time.process_time``) hardly depend on that load at all. A large parquet source
(``--parquet-rows``, small images in row groups of 100) shows what indexing and drawing cost when the rows are
many. The training steps are the project's MAE (``method=mae model=vit_tiny``) and source classifier
(``model=resnet18``), built by its method factory.
"""

from __future__ import annotations

import functools
import gc
import importlib.util
import io
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision import transforms as T

from dsbias.bench.timer import machine_line, time_it, time_round_robin
from dsbias.config import load_config
from dsbias.data.loader import create_loader, default_workers
from dsbias.data.manifest import build_manifest
from dsbias.data.prepare import PrepareOptions, prepare
from dsbias.data.sources import rowgroups
from dsbias.data.sources.registry import create_sources
from dsbias.data.views import to_normalized_tensor
from dsbias.methods.registry import create_method


def make_jpegs(root: Path, n: int, seed: int = 0) -> None:
    """``n`` JPEGs (q 90) with shorter side 375-500 px and smooth random content, in two source folders."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        w, h = int(rng.integers(375, 667)), int(rng.integers(375, 500))
        small = rng.integers(0, 255, (12, 16, 3), dtype=np.uint8)
        img = Image.fromarray(small).resize((w, h), Image.Resampling.BICUBIC)
        folder = root / ("a" if i % 2 == 0 else "b")
        folder.mkdir(parents=True, exist_ok=True)
        img.save(folder / f"{i:06d}.jpg", quality=90)


class ItemDataset(Dataset):
    """Every item of one source, read and augmented (what a training loader does per image)."""

    def __init__(self, source, items: list[str], transform) -> None:
        self.source, self.items, self.transform = source, items, transform

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.transform(self.source.read(self.items[i])[0])


def loader_pass(source, items: list[str], size: int, workers: int, batch: int, cache_bytes: int) -> Callable[[], int]:
    """One whole pass of a loader with the MAE training view (random resized crop, flip, normalise); returns the
    image count. ``cache_bytes`` is the parquet row-group cache its workers get (they fork at the first pass and
    persist, so worker start-up is paid once)."""
    tf = T.Compose([T.RandomResizedCrop(size, scale=(0.2, 1.0), interpolation=T.InterpolationMode.BICUBIC),
                    T.RandomHorizontalFlip(), to_normalized_tensor()])
    loader = create_loader(ItemDataset(source, items, tf), batch, shuffle=True, num_workers=workers)

    def run() -> int:
        saved, rowgroups.CACHE_BYTES = rowgroups.CACHE_BYTES, cache_bytes
        try:
            return sum(len(x) for x in loader)
        finally:
            rowgroups.CACHE_BYTES = saved

    return run


def read_pass(source, items: list[str], cache_bytes: int) -> Callable[[], int]:
    """Read and decode every item in this process (no augmentation) with a row-group cache of ``cache_bytes``."""
    def run() -> int:
        saved, rowgroups.CACHE_BYTES = rowgroups.CACHE_BYTES, cache_bytes
        if not cache_bytes:
            rowgroups.CACHE.reset()  # nothing kept from a cached pass
        try:
            for item in items:
                source.read(item)
        finally:
            rowgroups.CACHE_BYTES = saved
        return len(items)

    return run


# The project's own training steps, by preset (method, model and the model's settings at a size).
STEPS = {
    "MAE step (method=mae, model=vit_tiny)": lambda size: ["method=mae", "model=vit_tiny",
                                                           f"model.kwargs={{patch_size: {8 if size <= 96 else 16}, "
                                                           "depth: 6}"],
    "source classifier step (model=resnet18)": lambda size: ["method=supervised", "model=resnet18",
                                                             "method.supervised.augment=none"],
}


def train_rate(overrides: list[str], size: int, batch: int, steps: int, device: str) -> float:
    """Training images/s (forward, backward, AdamW step) of a method built by the project's factory: batch
    over the median step time, after one warm-up step."""
    torch.manual_seed(0)
    cfg = load_config(None, ["data=toy", f"data.image_size={size}", *overrides])
    method = create_method(cfg, 3).to(device)
    opt = torch.optim.AdamW([p for p in method.parameters() if p.requires_grad], lr=1e-4)
    x = torch.randn(batch, 3, size, size, device=device)
    y = torch.randint(0, 3, (batch,), device=device)

    def step() -> torch.Tensor:
        loss = method((x, y, torch.arange(batch)))["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    timing, loss = time_it(step, repeat=steps, warmup=1)
    assert torch.isfinite(loss), "non-finite loss in the benchmark step"
    return timing.rate(batch)


def copies(root: Path, workers: int, row_groups: list[int]) -> dict[str, str]:
    """The same JPEGs as folders, tar shards, parquet shards (one copy per row-group size) and (with ``datasets``)
    ``save_to_disk`` datasets: ``{kind: data.sources}`` for two sources ``a`` and ``b``."""
    def two(kind: str, path: str) -> str:
        return "[" + ", ".join(f"{{name: {n}, kind: {kind}, path: '{path.format(n)}'}}" for n in "ab") + "]"

    out = {"folder": two("folder", f"{root}/jpg/{{}}")}
    data = load_config(None, [f"data.sources={out['folder']}", f"data.num_workers={workers}"]).data
    prepare(data, root / "shards", PrepareOptions(short_side=0, shard_size=500))  # the same bytes, in shards
    out["tar shards"] = two("webdataset", f"{root}/shards/{{0}}/*.tar")
    for g in row_groups:
        prepare(data, root / f"parquet{g}", PrepareOptions(short_side=0, shard_size=500, format="parquet",
                                                           row_group_size=g))
        out[f"parquet, row groups of {g}"] = two("parquet", f"{root}/parquet{g}/{{0}}")
    if importlib.util.find_spec("datasets") is not None:
        import datasets

        for n in "ab":
            files = [str(f) for f in sorted((root / f"parquet{row_groups[0]}" / n).glob("*.parquet"))]
            ds = datasets.Dataset.from_parquet(files, cache_dir=str(root / "hf_cache"))
            ds.save_to_disk(str(root / "hf" / n))
        out["hf (save_to_disk)"] = two("hf", f"{root}/hf/{{}}")
    return out


def large_parquet(root: Path, rows: int, workers: int, draw: int = 2000) -> str:
    """Index and draw from one parquet entry of ``rows`` small images with a source column (two sources)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(1)
    pool = []
    for _ in range(64):  # a few distinct 32-px JPEGs, repeated: the bytes matter here, not their variety
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(buf, "JPEG", quality=90)
        pool.append(buf.getvalue())
    per_file = 50_000
    (root / "large").mkdir()
    for k, start in enumerate(range(0, rows, per_file)):
        n = min(per_file, rows - start)
        table = pa.table({"image": [pool[i % 64] for i in range(n)], "source": ["ab"[i % 2] for i in range(n)]})
        pq.write_table(table, root / "large" / f"{k:05d}.parquet", row_group_size=100)
    data = load_config(None, [f"data.sources=[{{name: mix, kind: parquet, path: '{root}/large'}}]",
                              f"data.per_source={{train: {draw - draw // 10}, val: {draw // 10}}}",
                              "data.dedup=ignore", f"data.num_workers={workers}"]).data
    t0 = time.perf_counter()
    sources = create_sources(data)  # reads the footers and the source column
    index = time.perf_counter() - t0
    t0 = time.perf_counter()
    build_manifest(data)
    built = time.perf_counter() - t0
    return (f"Large parquet source ({rows} rows of 32-px JPEGs in {len(sources)} sources by a source column, row "
            f"groups of 100): footers + source column {index:.2f} s ({index / rows * 100_000:.2f} s per 100k rows"
            f"); drawing {draw} per source {built:.1f} s ({built / (2 * draw) * 100_000:.0f} s per 100k images "
            "drawn, one row-group read each).")


def run_bench(images: int, sizes: list[int], workers: int | None, batch: int, steps: int,
              folder: str | None = None, row_groups: tuple[int, ...] = (100, 10), parquet_rows: int = 200_000) -> str:
    """Run everything and return the markdown report (tables + machine line)."""
    workers = default_workers() if workers is None else workers
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        root = Path(tmp)
        make_jpegs(root / "jpg", images)
        kinds = copies(root, workers, list(row_groups))
        n_per = images // 2
        per = f"data.per_source={{train: {n_per - n_per // 10}, val: {n_per // 10}}}"
        datas = {k: load_config(None, [f"data.sources={s}", per, f"data.num_workers={workers}"]).data
                 for k, s in kinds.items()}
        builds = time_round_robin({k: functools.partial(build_manifest, d) for k, d in datas.items()})
        build = {k: t.median / (2 * n_per) * 100_000 for k, t in builds.items()}
        variants = {}  # label -> (source, items, row-group cache bytes)
        for kind, data in datas.items():
            src = create_sources(data)["a"]
            items = list(src.sample_order(0))
            if not kind.startswith("parquet") or kind.endswith(f" {row_groups[0]}"):
                variants[f"{kind}{', cached' if kind.startswith('parquet') else ''}"] = (src, items,
                                                                                        rowgroups.CACHE_BYTES)
            if kind.startswith("parquet"):
                variants[f"{kind}, cache off: a row-group read per image"] = (src, items, 0)
        rates: dict[str, dict[int | str, float]] = {label: {} for label in variants}
        reads = {label: read_pass(*v) for label, v in variants.items()}
        for label, timing in time_round_robin(reads, repeat=3, warmup=1, clock=time.process_time).items():
            rates[label]["cpu"] = timing.median / len(variants[label][1]) * 1e3
        for size in sizes:
            passes = {label: loader_pass(*v[:2], size, workers, batch, v[2]) for label, v in variants.items()}
            for label, timing in time_round_robin(passes, repeat=3, warmup=1).items():
                rates[label][size] = timing.rate(len(variants[label][1]))
            del passes  # their workers stop
            gc.collect()
        rows = list(rates.items())
        large = large_parquet(root, parquet_rows, workers) if parquet_rows else ""
        for name, overrides in STEPS.items():
            rows.append((f"{name} ({device})", {size: train_rate(overrides(size), size, batch, steps, device)
                                                 for size in sizes}))
    head = "| images/s | " + " | ".join(f"{s} px" for s in sizes) + " | read + decode, CPU ms per image |"
    lines = [head, "|---|" + "---:|" * (len(sizes) + 1)]
    for name, r in rows:
        label = name if "step" in name else f"decode + augment, {name} ({workers} workers)"
        cpu = f"{r['cpu']:.2f}" if "cpu" in r else ""
        lines.append(f"| {label} | " + " | ".join(f"{r[s]:.0f}" for s in sizes) + f" | {cpu} |")
    lines.append("")
    lines.append(f"Manifest build (decode + hash every sampled image, {workers * 2} threads): "
                 + ", ".join(f"{k} {v:.0f} s per 100k images" for k, v in build.items())
                 + f" (measured on {images} JPEGs of ~500 px).")
    if large:
        lines.append(large)
    lines.append(f"Batch {batch}; loader passes and manifest builds: median of 3, round-robin over the kinds (after "
                 f"one untimed pass each); training steps: median of {steps} after one warm-up; MAE patch 8 at <= 96 "
                 "px, 16 above.")
    lines.append(machine_line())
    return "\n".join(lines)

"""``tools/bench_loader.py``: is data loading the bottleneck? Decode + augment images/s from folders and from
shards, next to a model's training images/s at the same image size, as one markdown table.

Everything is made in a temporary folder: JPEGs of about 500 px (the paper's preprocessed size), the same bytes
written to shards by :mod:`dsbias.data.prepare`. The manifest build rate (decode + hash of every sampled
image) is measured on the same files and given per 100k images.
"""

from __future__ import annotations

import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.utils.data import Dataset
from torchvision import transforms as T

from dsbias.config import load_config
from dsbias.data.loader import create_loader, default_workers
from dsbias.data.manifest import build_manifest
from dsbias.data.prepare import PrepareOptions, prepare
from dsbias.data.sources import create_sources
from dsbias.data.transforms import to_normalized_tensor


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


def loader_rate(source, items: list[str], size: int, workers: int, batch: int) -> float:
    """Images/s of one pass with the MAE training view (random resized crop, flip, normalise)."""
    tf = T.Compose([T.RandomResizedCrop(size, scale=(0.2, 1.0), interpolation=T.InterpolationMode.BICUBIC),
                    T.RandomHorizontalFlip(), to_normalized_tensor()])
    loader = create_loader(ItemDataset(source, items, tf), batch, shuffle=True, num_workers=workers)
    it = iter(loader)
    next(it)  # worker start-up is paid once per run, not per image: time from the first batch on
    t0, n = time.perf_counter(), 0
    for x in it:
        n += len(x)
    return n / (time.perf_counter() - t0)


class TinyMAE(nn.Module):
    """A ViT-Tiny MAE step: encoder on 25% of the patches, a 2-block 128-d decoder, pixel loss."""

    def __init__(self, size: int) -> None:
        super().__init__()
        import timm
        from timm.models.vision_transformer import Block

        self.p = 8 if size <= 96 else 16
        self.enc = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=size, patch_size=self.p,
                                     num_classes=0)
        self.embed = nn.Linear(192, 128)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, 128))
        self.dec_pos = nn.Parameter(torch.zeros(1, (size // self.p) ** 2, 128))
        self.dec = nn.Sequential(*[Block(128, 4) for _ in range(2)], nn.LayerNorm(128), nn.Linear(128, self.p**2 * 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.enc._pos_embed(self.enc.patch_embed(x))  # [B, 1 + L, D]
        b, l1, d = t.shape
        keep = torch.rand(b, l1 - 1, device=x.device).argsort(1)[:, : (l1 - 1) // 4]  # [B, L/4]
        vis = torch.gather(t[:, 1:], 1, keep[..., None].expand(-1, -1, d))
        z = self.embed(self.enc.norm(self.enc.blocks(torch.cat([t[:, :1], vis], 1)))[:, 1:])  # [B, L/4, 128]
        full = self.mask_token.expand(b, l1 - 1, -1).scatter(1, keep[..., None].expand(-1, -1, 128), z)
        pred = self.dec(full + self.dec_pos)  # [B, L, p*p*3]
        target = x.unfold(2, self.p, self.p).unfold(3, self.p, self.p).permute(0, 2, 3, 1, 4, 5).reshape(pred.shape)
        return ((pred - target) ** 2).mean()


class ResNetStep(nn.Module):
    """ResNet-18 source classification step (3 classes, cross-entropy)."""

    def __init__(self, size: int) -> None:
        super().__init__()
        import timm

        self.net = timm.create_model("resnet18", pretrained=False, num_classes=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(self.net(x), torch.zeros(len(x), dtype=torch.long, device=x.device))


def train_rate(model_cls, size: int, batch: int, steps: int, device: str) -> float:
    """Training images/s (forward, backward, AdamW step): batch / median step time, after one warm-up step.

    The median, not the mean: on a shared machine a step can stall for reasons that are not the model's.
    """
    torch.manual_seed(0)
    model = model_cls(size).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x = torch.randn(batch, 3, size, size, device=device)
    times = []
    for _ in range(steps + 1):
        t0 = time.perf_counter()
        loss = model(x)
        assert torch.isfinite(loss), "non-finite loss in the benchmark step"
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return batch / float(np.median(times[1:]))


def run_bench(images: int, sizes: list[int], workers: int | None, batch: int, steps: int,
              folder: str | None = None) -> str:
    """Run everything and return the markdown report (tables + machine line)."""
    workers = default_workers() if workers is None else workers
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        root = Path(tmp)
        make_jpegs(root / "jpg", images)
        srcs = f"[{{name: a, kind: folder, path: '{root}/jpg/a'}}, {{name: b, kind: folder, path: '{root}/jpg/b'}}]"
        cfg = load_config(None, [f"data.sources={srcs}", f"out={root}/shards", f"data.num_workers={workers}"])
        prepare(cfg, PrepareOptions(short_side=0, shard_size=500))  # same bytes, now in shards
        shard_srcs = srcs.replace("folder", "webdataset").replace("jpg/a'", "shards/a/*.tar'") \
                         .replace("jpg/b'", "shards/b/*.tar'")
        n_per = images // 2
        per = f"data.per_source={{train: {n_per - n_per // 10}, val: {n_per // 10}}}"
        rows, build = [], {}
        for kind, s in (("folder", srcs), ("shards", shard_srcs)):
            data = load_config(None, [f"data.sources={s}", per, f"data.num_workers={workers}"]).data
            t0 = time.perf_counter()
            build_manifest(data)
            build[kind] = (time.perf_counter() - t0) / (2 * n_per) * 100_000
            src = create_sources(data)["a"]
            items = src.sample_order(0)
            rows.append((kind, {size: loader_rate(src, items, size, workers, batch) for size in sizes}))
        models = {f"ViT-Tiny MAE step ({device})": TinyMAE, f"ResNet-18 train step ({device})": ResNetStep}
        for name, cls in models.items():
            rows.append((name, {size: train_rate(cls, size, batch, steps, device) for size in sizes}))
    head = "| images/s | " + " | ".join(f"{s} px" for s in sizes) + " |"
    lines = [head, "|---|" + "---:|" * len(sizes)]
    for name, r in rows:
        label = f"decode + augment, {name} ({workers} workers)" if name in ("folder", "shards") else name
        lines.append(f"| {label} | " + " | ".join(f"{r[s]:.0f}" for s in sizes) + " |")
    lines.append("")
    lines.append(f"Manifest build (decode + hash every sampled image, {workers * 2} threads): "
                 + ", ".join(f"{k} {v:.0f} s per 100k images" for k, v in build.items())
                 + f" (measured on {images} JPEGs of ~500 px).")
    gpu = f", {torch.cuda.get_device_name()}" if device == "cuda" else ""
    load = os.getloadavg()[0]
    lines.append(f"Machine: {platform.machine()}, {default_workers()} CPUs usable{gpu}, load average {load:.1f} at the "
                 f"end; torch {torch.__version__}; batch {batch}; MAE patch 8 at <= 96 px, 16 above.")
    return "\n".join(lines)

"""The end-to-end parts of ``tools/gpu_check.py``: each method trained, resumed, extracted and probed through the
scripts (one subprocess per run, so each precision gets a fresh Accelerate state), and 2 processes vs 1 on one
GPU for extraction and classification eval.

Every function returns result rows (:func:`row`); a failure is a row with its error, never
an exception, so one run on a borrowed GPU always ends with the whole table.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[2]  # the scripts (ssl/, probe/) sit beside the package

# (c): ~30 steps at 224 px; stopped at step 15 with a checkpoint, then resumed to 30.
SMALL_224 = ["data=toy", "data.image_size=224", "data.per_source={train: 160, val: 32}", "train.log_every=5",
             "train.log_with=[]", "train.save_every=15", "optim.warmup_samples=64"]
METHODS = {
    "supervised convnext_atto (mixup, accum 2)": ("probe/classify.py", [
        "model=convnext_atto", "method.supervised.augment=full", "train.batch_size=32", "train.grad_accum=2",
        "train.samples=960", "classify.eval_every=0"]),
    "mae vit_tiny": ("ssl/pretrain.py", ["method=mae", "model=vit_tiny", "optim=mae", "train.batch_size=32",
                                         "train.samples=960"]),
    "mocov3 resnet18": ("ssl/pretrain.py", ["method=mocov3", "model=resnet18", "optim=mocov3",
                                            "train.batch_size=32", "train.samples=960"]),
}


def row(what: str, ok: bool | None, detail: str, seconds: float) -> dict[str, Any]:
    """One result row; ``what`` starts with its check's letter; ``ok`` None means a measurement, not a test."""
    return {"check": what.split()[0], "what": what.split(" ", 1)[1], "ok": ok, "detail": detail,
            "seconds": round(float(seconds), 1)}



def script(path: str, *argv: str, timeout: float = 300, env: dict[str, str] | None = None) -> tuple[int, str, float]:
    """Run one of the project's scripts; returns exit code, the last lines of its output, seconds."""
    t0 = time.perf_counter()
    try:
        p = subprocess.run([sys.executable, str(REPO / path), *argv], cwd=REPO, capture_output=True, text=True,
                           timeout=timeout, env={**os.environ, **(env or {})})
        out, code = (p.stdout + p.stderr).strip().splitlines(), p.returncode
    except subprocess.TimeoutExpired:
        out, code = [f"timed out after {timeout:.0f}s"], 124
    return code, " | ".join(out[-3:])[-300:], time.perf_counter() - t0


def losses(run: Path) -> list[float]:
    """Logged training losses of a run, in step order."""
    rows = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines() if line.strip()]
    return [r["loss"] for r in sorted((r for r in rows if "loss" in r), key=lambda r: r["step"])]


def method_runs(precisions: tuple[str, ...] = ("no", "bf16", "fp16"), full_chain: str = "bf16"
                ) -> list[dict[str, Any]]:
    """(c) Each method ~30 steps at 224 px per precision, loss finite and falling; in ``full_chain`` precision
    also a stop at step 15 + resume, extraction and both probes (the others train in one go, to fit 10 min)."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        for name, (path, over) in METHODS.items():
            for prec in precisions:
                out = Path(tmp) / f"{name.split()[0]}-{prec}"
                argv = ["--out", str(out), *SMALL_224, *over, f'train.mixed_precision="{prec}"']
                full = prec == full_chain
                c1, tail1, s1 = (script(path, *argv, "train.stop_after=15", "train.extract=false", timeout=180)
                                 if full else (0, "", 0.0))
                c2, tail2, s2 = script(path, *argv, *([] if full else ["train.extract=false"]), timeout=180)
                what = f"c {name} {prec}"
                if c1 or c2:
                    rows.append(row(what, False, f"exit {c1}/{c2}: {tail1 if c1 else tail2}", s1 + s2))
                    continue
                ls = losses(out)
                finite = bool(np.isfinite(ls).all())
                falling = len(ls) >= 2 and np.mean(ls[-2:]) < np.mean(ls[:2])
                steps = json.loads((out / "state" / "latest.json").read_text())["step"]
                detail = f"loss {ls[0]:.3f} -> {ls[-1]:.3f}, {steps} steps"
                ok = finite and falling and steps == 30
                if full:
                    resumed = _resumed_at(out) == 15
                    detail += f", resumed at 15: {resumed}"
                    ok &= resumed
                    if path == "probe/classify.py":  # the classifier's features: its exported backbone
                        script("ssl/extract.py", "--run", str(out))
                    for probe in ("probe/knn.py", "probe/linear.py"):
                        code, tail, s = script(probe, "--features", str(out))
                        ok &= code == 0
                        detail += f"; {Path(probe).stem} exit {code}"
                        s2 += s
                rows.append(row(what, ok, detail, s1 + s2))
    return rows


def _resumed_at(run: Path) -> int | None:
    """The step the last ``start`` record of a run's log resumed from."""
    rows = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines() if line.strip()]
    starts = [r["step"] for r in rows if r.get("event") == "start"]
    return starts[-1] if starts else None


def two_vs_one(data: tuple[str, ...] = ("data.image_size=64", "data.per_source={train: 64, val: 96}",
                                        "data.num_workers=2")) -> list[dict[str, Any]]:
    """(e) Extraction and classification eval with 2 processes (gloo) on one GPU vs 1 process: same results?

    Args:
        data: Overrides of the toy data (the slow test shrinks it to run on CPU).
    """
    import torch.multiprocessing as mp

    rows = []
    with tempfile.TemporaryDirectory(prefix="gpu-check-2p-") as tmp:
        results = {}
        for world in (1, 2):
            t0 = time.perf_counter()
            try:
                mp.start_processes(_two_worker, args=(tmp, world, data), nprocs=world, start_method="spawn")
                results[world] = json.loads((Path(tmp) / f"w{world}.json").read_text())
                results[world]["s"] = time.perf_counter() - t0
            except Exception as e:  # noqa: BLE001 -- a row, not a crash
                rows.append(row(f"e {world} process(es)", False, f"{type(e).__name__}: {str(e)[:200]}",
                                time.perf_counter() - t0))
        if len(results) == 2:
            one, two = results[1], results[2]
            feat = float(np.abs(np.array(one["features"]) - np.array(two["features"])).max())
            rows.append(row("e extraction 2 vs 1 process", feat < 1e-3, f"max |diff| {feat:.2e}", two["s"]))
            same = one["preds"] == two["preds"]
            rows.append(row("e classification eval 2 vs 1 process", same, f"predictions equal: {same}", two["s"]))
    return rows


def _two_worker(rank: int, tmp: str, world: int, data: tuple[str, ...]) -> None:
    import torch
    import torch.distributed as dist
    from accelerate import Accelerator

    from dsbias.classify.evaluate import predict
    from dsbias.config import load_config
    from dsbias.data.dataset import MixedDataset
    from dsbias.data.manifest import build_manifest
    from dsbias.features.extract import extract_features
    from dsbias.features.store import load_features
    from dsbias.methods.registry import create_method

    # Both processes on cuda:0 (LOCAL_RANK 0 for both); gloo, since NCCL refuses two ranks on one device. The
    # group exists before the Accelerator, which then uses it (a file rendezvous: no port to choose).
    os.environ.update({"RANK": str(rank), "WORLD_SIZE": str(world), "LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "1",
                       "MASTER_ADDR": "127.0.0.1"})
    dist.init_process_group("gloo", init_method=f"file://{tmp}/rdv{world}", rank=rank, world_size=world)
    acc = Accelerator(cpu=not torch.cuda.is_available())  # CPU: the slow test runs the same comparison
    cfg = load_config(None, ["data=toy", *data, "model=convnext_atto", "method=supervised"])
    manifest = build_manifest(cfg.data)
    torch.manual_seed(0)
    method = create_method(cfg, len(manifest.sources)).to(acc.device)
    extract_features(method.backbone, manifest, cfg.data, Path(tmp) / f"f{world}", acc, meta={})
    val = MixedDataset.from_config(manifest, "val", method.create_eval_transform(), cfg.data)
    pred = predict(method, val, acc, 32, cfg.data.num_workers, "val")
    if rank == 0:
        fs = load_features(Path(tmp) / f"f{world}")
        (Path(tmp) / f"w{world}.json").write_text(json.dumps({
            "features": np.asarray(fs.val.features[:32]).tolist(), "preds": pred.preds.tolist()}))
    dist.destroy_process_group()

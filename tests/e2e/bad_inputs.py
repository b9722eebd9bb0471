"""Issue 13's bad inputs, each built in a temp dir and run as a user would: ``python tests/e2e/bad_inputs.py
[--repo DIR] [--only NAME...]`` prints a markdown table (case, exit code, first line of output) for the code at
``--repo`` (default: this checkout). ``test_bad_inputs_e2e.py`` asserts on the same cases.

"First line" is the first ``error:`` line on stderr; for a traceback, its last line (the exception); for a run
that succeeds, the line the case is about (a warning, a summary line) or the first line of stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parents[2]
TINY_SSL = ["data.image_size=16", "data.num_workers=0", "model=vit_tiny",
            "model.kwargs={patch_size: 8, depth: 1, embed_dim: 32, num_heads: 2}", "method.mae.decoder_dim=16",
            "method.mae.decoder_heads=2", "method.mae.decoder_depth=1", "train.batch_size=4", "train.samples=24",
            "train.log_every=1", "train.log_with=[]", "train.extract=false", "optim.warmup_samples=8"]
TOY = ["data=toy", "data.per_source={train: 8, val: 4}"]


@dataclass
class Result:
    rc: int
    out: str
    err: str
    note: str = ""  # said before the line (what else the case checked)

    def line(self, pattern: str | None = None) -> str:
        """The line this case is about (see the module docstring), after the note."""
        return self.note + self._line(pattern)

    def _line(self, pattern: str | None) -> str:
        lines = [x for x in (self.err + "\n" + self.out).splitlines() if x.strip()]
        if pattern:
            hit = [x for x in lines if re.search(pattern, x)]
            if hit:
                return hit[0].strip()
        errs = [x for x in self.err.splitlines() if x.startswith("error:")]
        if errs:
            return errs[0]
        if "Traceback (most recent call last)" in self.err:
            last = [x for x in self.err.splitlines() if x.strip() and not x.startswith(" ")]
            return "Traceback: " + (last[-1] if last else "")
        out = [x for x in self.out.splitlines() if x.strip()]
        return (out or lines or [""])[0].strip()


class Runner:
    """Runs the scripts of ``repo`` with ``PYTHONPATH=repo`` from the repo root."""

    def __init__(self, repo: Path, tmp: Path) -> None:
        self.repo, self.tmp = repo, tmp
        self.env = {**os.environ, "PYTHONPATH": str(repo), "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1"}

    def cmd(self, script: str, *args: str) -> list[str]:
        return [sys.executable, str(self.repo / script), *map(str, args)]

    def run(self, script: str, *args: str, timeout: float = 180) -> Result:
        try:
            p = subprocess.run(self.cmd(script, *args), cwd=self.repo, env=self.env, capture_output=True,
                               text=True, timeout=timeout)
        except subprocess.TimeoutExpired as e:
            out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
            return Result(124, out, f"(killed after {timeout:.0f} s{', no output' if not out else ''})")
        return Result(p.returncode, p.stdout, p.stderr)

    def start(self, script: str, *args: str) -> subprocess.Popen:
        return subprocess.Popen(self.cmd(script, *args), cwd=self.repo, env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    def path(self, name: str) -> Path:
        return self.tmp / name


def images(folder: Path, n: int, seed: int = 0, size: int = 16) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(folder / f"im{i:03d}.png")
    return folder


def folders_data(*pairs: tuple[str, Path], train: int = 4, val: int = 2, **extra) -> list[str]:
    srcs = ", ".join(f"{{name: {n}, kind: folder, path: '{p}'}}" for n, p in pairs)
    return [f"data.sources=[{srcs}]", f"data.per_source={{train: {train}, val: {val}}}", "data.num_workers=0",
            *(f"data.{k}={v}" for k, v in extra.items())]


def shard(path: Path, sidecars: dict[int, dict]) -> Path:
    """A shard of 6 PNGs; member ``i`` gets ``sidecars[i]`` as its ``.json``."""
    import io
    import tarfile

    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(sum(path.parent.name.encode()))  # other pictures in each source
    with tarfile.open(path, "w") as tf:
        for i in range(6):
            buf = io.BytesIO()
            Image.fromarray(rng.integers(0, 255, (12, 12, 3), dtype=np.uint8)).save(buf, "PNG")
            members = [(f"{i:03d}.png", buf.getvalue())]
            if i in sidecars:
                members.append((f"{i:03d}.json", json.dumps(sidecars[i]).encode()))
            for name, data in members:
                ti = tarfile.TarInfo(name)
                ti.size = len(data)
                tf.addfile(ti, io.BytesIO(data))
    return path


def features(root: Path, train_labels: list[int], val_labels: list[int], sources=("a", "b", "c")) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    start = 0
    for split, y in (("train", train_labels), ("val", val_labels)):
        y = np.asarray(y, dtype=np.int64)
        np.save(root / f"{split}_features.npy", (rng.normal(size=(len(y), 8)) + y[:, None] * 3).astype(np.float32))
        np.save(root / f"{split}_labels.npy", y)
        np.save(root / f"{split}_index.npy", np.arange(start, start + len(y), dtype=np.int64))
        start += len(y)
    meta = {"format_version": 1, "dim": 8, "dtype": "float32", "sources": list(sources),
            "counts": {"train": len(train_labels), "val": len(val_labels)}}
    (root / "meta.json").write_text(json.dumps(meta))
    return root


# ---------------------------------------------------------------- the cases: name -> (item, what, fn)

def case_loop_two(r: Runner) -> tuple[Result, str | None]:
    d = images(r.path("loop2/a"), 6)
    os.symlink(".", d / "l1")
    os.symlink(".", d / "l2")
    b = images(r.path("loop2/b"), 6, seed=1)
    return r.run("tools/manifest.py", "--out", r.path("loop2/out"), *folders_data(("a", d), ("b", b)),
                 timeout=30), r"error:|^a\s"


def case_loop_one(r: Runner) -> tuple[Result, str | None]:
    d = images(r.path("loop1/a"), 33)
    os.symlink(".", d / "dirloop")
    b = images(r.path("loop1/b"), 60, seed=1)
    res = r.run("tools/manifest.py", "--out", r.path("loop1/out"),
                *folders_data(("a", d), ("b", b), train=40, val=10))
    return res, r"error:|^a\s"


def case_probe_one_source(r: Runner) -> tuple[Result, str | None]:
    f = features(r.path("one/features"), [0] * 60, [0] * 12)
    return r.run("probe/linear.py", "--features", f), r"error:|top-1"


def case_probe_val_absent(r: Runner) -> tuple[Result, str | None]:
    f = features(r.path("absent/features"), [0, 1] * 30, [0, 1, 2] * 4)
    return r.run("probe/knn.py", "--features", f), r"(?i)warning|error:"


def case_sidecar_text(r: Runner) -> tuple[Result, str | None]:
    a = shard(r.path("side1/a/000.tar"), {1: {"original_width": 10, "original_height": "abc"}})
    b = shard(r.path("side1/b/000.tar"), {})
    srcs = f"[{{name: a, kind: webdataset, path: '{a}'}}, {{name: b, kind: webdataset, path: '{b}'}}]"
    return r.run("tools/manifest.py", "--out", r.path("side1/out"), f"data.sources={srcs}",
                 "data.per_source={train: 4, val: 2}", "data.num_workers=0"), r"error:|bad_sidecar"


def case_sidecar_negative(r: Runner) -> tuple[Result, str | None]:
    side = {i: {"original_width": -5, "original_height": 0} for i in range(6)}
    a = shard(r.path("side2/a/000.tar"), side)
    b = shard(r.path("side2/b/000.tar"), {})
    srcs = f"[{{name: a, kind: webdataset, path: '{a}'}}, {{name: b, kind: webdataset, path: '{b}'}}]"
    out = r.path("side2/out")
    r.run("tools/manifest.py", "--out", out, f"data.sources={srcs}", "data.per_source={train: 4, val: 2}",
          "data.num_workers=0")
    res = r.run("tools/baselines.py", "--out", out, "--no-tiny", f"data.sources={srcs}",
                "data.per_source={train: 4, val: 2}", "data.num_workers=0")
    rows = [json.loads(x) for x in (out / "manifest.jsonl").read_text().splitlines()] if (
        out / "manifest.jsonl").exists() else []
    low = min((min(x["width"], x["height"]) for x in rows), default=None)
    res.note = f"manifest min side {low}; "
    return res, r"error:|^ZeroDivisionError"


def case_lock(r: Runner) -> tuple[Result, str | None]:
    out = r.path("lock/run")
    # Long enough (1,000 steps) that the first is still training when the second has started, on a quiet box
    # too (150 steps took 3.5 s there: the first finished before the second's Python was up).
    args = ["--out", out, *TOY, *TINY_SSL, "train.samples=4000", "train.save_every=100"]
    first = r.start("ssl/pretrain.py", *args)
    log = out / "log.jsonl"
    t0 = time.time()
    while time.time() - t0 < 120 and not (log.exists() and '"step": 2' in log.read_text()):
        time.sleep(0.5)
    second = r.run("ssl/pretrain.py", *args, timeout=240)
    try:
        o, e = first.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        first.kill()
        o, e = first.communicate()
    ends = sum('"event": "end"' in x for x in log.read_text().splitlines()) if log.exists() else 0
    second.note = f"first: exit {first.returncode}, log.jsonl 'end' records {ends}; second: "
    return second, r"error:|final loss"


def _data_case(r: Runner, name: str, make) -> tuple[Result, str | None]:
    good = images(r.path(f"{name}/good"), 10, seed=3)
    return r.run("tools/manifest.py", "--out", r.path(f"{name}/out"),
                 *folders_data(("a", make(r.path(f"{name}/a"))), ("b", good))), None


def case_missing_folder(r: Runner):
    return _data_case(r, "missing", lambda p: p)


def case_empty_folder(r: Runner):
    return _data_case(r, "empty", lambda p: (p.mkdir(parents=True), p)[1])


def case_short_source(r: Runner):
    return _data_case(r, "short", lambda p: images(p, 3))


def case_unknown_kind(r: Runner):
    return r.run("tools/manifest.py", "--out", r.path("kind/out"), "data.sources=[{name: a, kind: foo, path: x}]"), None


def case_batch_too_large(r: Runner):
    return r.run("ssl/pretrain.py", "--out", r.path("batch/out"), *TOY, *TINY_SSL, "train.batch_size=64"), None


def case_image_too_small(r: Runner):
    return r.run("probe/classify.py", "--out", r.path("small/out"), *TOY, "data.image_size=9", "data.num_workers=0",
                 "train.samples=16", "train.batch_size=8", "classify.eval_every=0", "train.log_with=[]"), None


def _finished_run(r: Runner) -> Path:
    out = r.path("done/run")
    if not (out / "backbone.json").exists():
        r.run("ssl/pretrain.py", "--out", out, *TOY, *TINY_SSL)
    return out


def case_corrupt_backbone(r: Runner):
    import shutil

    run = r.path("corrupt/run")
    shutil.copytree(_finished_run(r), run, symlinks=True)
    w = run / "backbone.safetensors"
    w.write_bytes(w.read_bytes()[:100])
    return r.run("ssl/extract.py", "--run", run), None


def case_config_differs(r: Runner):
    return r.run("ssl/pretrain.py", "--out", _finished_run(r), *TOY, *TINY_SSL, "train.samples=32"), None


def case_finished_rerun(r: Runner):
    return r.run("ssl/pretrain.py", "--out", _finished_run(r), *TOY, *TINY_SSL), r"final loss|error:"


def case_backbone_mode(r: Runner):
    run = _finished_run(r)
    modes = {p.name: oct(p.stat().st_mode & 0o777) for p in (run / "backbone.safetensors", run / "config.yaml")}
    ok = len(set(modes.values())) == 1
    return Result(0 if ok else 1, ", ".join(f"{k} {v}" for k, v in modes.items()), ""), None


def case_failed_then_fixed(r: Runner):
    good = images(r.path("fixed/good"), 12, seed=4)
    other = images(r.path("fixed/other"), 12, seed=5)
    out = r.path("fixed/run")
    bad = r.path("fixed/typo")
    r.run("ssl/pretrain.py", "--out", out, *TINY_SSL, *folders_data(("a", bad), ("b", other)))
    return r.run("ssl/pretrain.py", "--out", out, *TINY_SSL, *folders_data(("a", good), ("b", other))), \
        r"error:|final loss"


def case_yaml_syntax(r: Runner):
    cfg = r.path("yaml/bad.yaml")
    cfg.parent.mkdir(parents=True)
    cfg.write_text("data: toy\ntrain: {samples: 10\nout: x\n")
    return r.run("tools/manifest.py", "--config", cfg), None


def case_bad_meta(r: Runner):
    f = features(r.path("meta/features"), [0, 1] * 10, [0, 1] * 3)
    (f / "meta.json").write_text("{not json")
    return r.run("probe/linear.py", "--features", f), None


CASES = {
    "loop-two": ("1", "two directory symlink loops (`ln -s . l1; ln -s . l2`), tools/manifest.py", case_loop_two),
    "loop-one": ("1", "one loop (`ln -s . dirloop`), 33 files, 40+10 asked", case_loop_one),
    "probe-one-source": ("2", "features with every label the same, probe/linear.py", case_probe_one_source),
    "probe-val-absent": ("2", "a val source absent from train, probe/knn.py", case_probe_val_absent),
    "sidecar-text": ("3", "shard sidecar `original_height: \"abc\"`, tools/manifest.py", case_sidecar_text),
    "sidecar-negative": ("3", "sidecar width -5, height 0: manifest, then tools/baselines.py",
                         case_sidecar_negative),
    "lock": ("4", "a second identical ssl/pretrain.py on a running run dir", case_lock),
    "missing-folder": ("5", "a folder source whose path does not exist", case_missing_folder),
    "empty-folder": ("5", "an empty folder source", case_empty_folder),
    "short-source": ("5", "a source short of images (3 files, 6 asked)", case_short_source),
    "unknown-kind": ("5", "`kind: foo`", case_unknown_kind),
    "batch-too-large": ("5", "train.batch_size=64 on a 24-image train set", case_batch_too_large),
    "image-too-small": ("5", "data.image_size=9 with a ConvNeXt", case_image_too_small),
    "corrupt-backbone": ("5", "truncated backbone.safetensors, ssl/extract.py --run", case_corrupt_backbone),
    "config-differs": ("5", "rerun into a finished run with train.samples changed", case_config_differs),
    "yaml-syntax": ("5", "a YAML syntax error in --config", case_yaml_syntax),
    "bad-meta": ("5", "an invalid features meta.json, probe/linear.py", case_bad_meta),
    "failed-then-fixed": ("6", "a run failed on a wrong folder path, rerun with the path fixed",
                          case_failed_then_fixed),
    "finished-rerun": ("6", "rerun of a finished run (same command)", case_finished_rerun),
    "backbone-mode": ("6", "permissions of backbone.safetensors vs config.yaml", case_backbone_mode),
}


def run_case(name: str, repo: Path, tmp: Path) -> tuple[Result, str]:
    """Build and run one case in ``tmp``; ``(result, its line)``."""
    res, pattern = CASES[name][2](Runner(repo, tmp))
    return res, res.line(pattern)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--repo", type=Path, default=HERE)
    p.add_argument("--only", nargs="*", default=None)
    args = p.parse_args()
    print("| item | case | exit | first line |\n|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.only or CASES:
            item, what, _ = CASES[name]
            res, line = run_case(name, args.repo.resolve(), Path(tmp))
            line = line.replace("|", "\\|")[:200]
            print(f"| {item} | {what} | {res.rc} | `{line}` |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

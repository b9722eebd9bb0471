"""The run-directory contract: file names, atomic writes, JSON-lines logs and provenance.

A run dir holds ``config.yaml``, ``provenance.json``, ``log.jsonl``, ``manifest.jsonl`` (+ ``manifest.json``),
``state/`` (resumable training state), ``backbone.safetensors`` + ``backbone.json``, ``features/`` (the
feature files: :mod:`dsbias.features.store`), ``features_init/`` (the random-init control) and the results of
the commands run on it (``metrics.json``...).
:class:`RunDir` names every one of them.
Every file is written to a temporary name in the same folder and renamed into place, so a crash never
leaves a half-written file where a finished one is expected.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dsbias.errors import UserError


@contextmanager
def atomic_path(path: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed to ``path``, on error removed.

    Args:
        path: Final destination.
        suffix: Suffix of the temporary file (some writers, like ``np.save``, insist on one).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + suffix, dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp makes 0600, and some writers (safetensors) recreate the file: give the final file the usual
        # permissions, set last, whatever wrote it.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_text(path: str | Path, text: str) -> None:
    """Atomically write a text file."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | Path, obj: Any) -> None:
    """Atomically write ``obj`` as indented JSON."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def read_json(path: str | Path) -> Any:
    """Read a JSON file."""
    with open(path) as f:
        return json.load(f)


def save_npy(path: str | Path, array: np.ndarray) -> None:
    """Atomically write one ``.npy`` array."""
    with atomic_path(path, suffix=".npy") as tmp:
        np.save(tmp, array)


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


class JsonlLog:
    """Append-only JSON-lines log (one object per line, flushed per record)."""

    def __init__(self, path: str | Path, enabled: bool = True) -> None:
        self.path = Path(path)
        self.enabled = enabled

    def write(self, **record: Any) -> None:
        """Append one record, stamped with wall time."""
        if not self.enabled:
            return
        record = {"time": round(time.time(), 3), **record}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")

    def read(self) -> list[dict[str, Any]]:
        """All records so far."""
        if not self.path.exists():
            return []
        with open(self.path) as f:
            return [json.loads(line) for line in f if line.strip()]


@dataclass(frozen=True)
class RunDir:
    """Paths of one run directory (nothing is created until written)."""

    root: Path

    @classmethod
    def at(cls, path: str | Path) -> RunDir:
        return cls(Path(path))

    @property
    def lock(self) -> Path:
        """The run's lock file (:func:`lock_run`): the holder's pid."""
        return self.root / "lock"

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def provenance(self) -> Path:
        return self.root / "provenance.json"

    @property
    def log(self) -> Path:
        return self.root / "log.jsonl"

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.jsonl"

    @property
    def manifest_summary(self) -> Path:
        return self.root / "manifest.json"

    @property
    def state(self) -> Path:
        return self.root / "state"

    @property
    def backbone_weights(self) -> Path:
        return self.root / "backbone.safetensors"

    @property
    def backbone_meta(self) -> Path:
        return self.root / "backbone.json"

    @property
    def features(self) -> Path:
        return self.root / "features"

    @property
    def init_features(self) -> Path:
        """The features of the run's backbone at initialisation (same seed, same extraction): the random-init
        control of a pretraining run."""
        return self.root / "features_init"

    @property
    def metrics(self) -> Path:
        """Dataset classification's result (``probe/classify.py``)."""
        return self.root / "metrics.json"

    @property
    def val_probs(self) -> Path:
        """The classifier's per-image val source probabilities ``[N, S]``, rows as in :attr:`val_index`."""
        return self.root / "val_probs.npy"

    @property
    def val_index(self) -> Path:
        return self.root / "val_index.npy"

    @property
    def baselines(self) -> Path:
        """The shortcut baselines (``tools/baselines.py``)."""
        return self.root / "baselines.json"

    @property
    def anatomy_pixels(self) -> Path:
        """The pixel-probe anatomy table (``tools/anatomy_pixels.py``)."""
        return self.root / "anatomy_pixels.json"

    @property
    def study_log(self) -> Path:
        """The commands a study ran for this run, with their output."""
        return self.root / "study.log"


class RunLockedError(UserError):
    """Another live process holds the run dir's lock."""


_held: dict[str, int] = {}  # lock files this process holds -> their open descriptor (kept open until exit)


def lock_run(run: RunDir) -> None:
    """Take the run dir's exclusive lock (a no-op if this process holds it already) until :func:`unlock_run`,
    the end of a :func:`released_after` block, or the end of the process.

    An OS lock (``flock``) on ``run/lock``, so it goes with the process, however it ends: a lock file left by a
    killed process is simply taken over. The holder writes its pid into the file for the refusal's message.

    Raises:
        RunLockedError: Another live process holds it (names its pid).
    """
    run.root.mkdir(parents=True, exist_ok=True)
    key = os.path.realpath(run.lock)
    if key in _held:
        return
    fd = os.open(key, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise RunLockedError(f"{run.root}: in use by process {holder} (lock {run.lock}) (wait for it to end, or "
                             "give another --out)") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    _held[key] = fd


def unlock_run(run: RunDir) -> None:
    """Release the lock :func:`lock_run` took (if this process holds it)."""
    fd = _held.pop(os.path.realpath(run.lock), None)
    if fd is not None:
        os.close(fd)


@contextmanager
def released_after(run: RunDir) -> Iterator[None]:
    """Release, when the block ends (returns or raises), a lock on ``run`` taken inside it; one held before
    stays held. A pipeline's run ends with its function, not with the process (tests, studies run many)."""
    held = os.path.realpath(run.lock) in _held
    try:
        yield
    finally:
        if not held:
            unlock_run(run)


def git_sha() -> dict[str, Any]:
    """The git commit of the dsbias source tree and whether it has uncommitted changes (if in a checkout)."""
    here = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here, capture_output=True, text=True, timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return {"sha": None, "dirty": None}
    return {"sha": sha or None, "dirty": bool(dirty) if sha else None}


def provenance() -> dict[str, Any]:
    """Where and with what a run was made: command, git state, package versions, host."""
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for pkg in ("dsbias", "torch", "torchvision", "timm", "lightly", "accelerate", "faiss-cpu",
                "faiss-gpu", "scikit-learn", "numpy", "pillow"):
        try:
            versions[pkg] = version(pkg)
        except PackageNotFoundError:
            continue
    return {
        "command": [sys.executable, *sys.argv],
        "git": git_sha(),
        "versions": versions,
        "python": platform.python_version(),
        "host": platform.node(),
        "platform": platform.platform(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }

"""Resumable checkpoints: ``state/step-NNNNNNN`` (Accelerate's state) and ``state/latest.json`` pointing at it."""

from __future__ import annotations

import shutil
from typing import Any

from accelerate import Accelerator

from dsbias.runs import RunDir, read_json, write_json


def save_checkpoint(accelerator: Accelerator, run: RunDir, step: int, samples: int) -> None:
    """Save to ``state/step-NNNNNNN`` via a temp dir, then point ``state/latest.json`` at it."""
    final = run.state / f"step-{step:07d}"
    tmp = run.state / f".tmp-step-{step:07d}"
    if accelerator.is_main_process and tmp.exists():
        shutil.rmtree(tmp)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
        write_json(run.state / "latest.json", {"step": step, "samples": samples, "dir": final.name,
                                                "processes": accelerator.num_processes})
        for old in run.state.glob("step-*"):
            if old != final:
                shutil.rmtree(old)
    accelerator.wait_for_everyone()


def latest_checkpoint(run: RunDir) -> dict[str, Any] | None:
    """``state/latest.json`` if a checkpoint exists."""
    f = run.state / "latest.json"
    return read_json(f) if f.is_file() else None


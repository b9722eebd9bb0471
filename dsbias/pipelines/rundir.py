"""The run dir as the mains open it: locked by the main process, a resumed config checked, a failed start
replaced; errors met on the main process stop every process (:func:`on_main`)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from accelerate import Accelerator

from dsbias.config import Config, load_config
from dsbias.engine.checkpoint import latest_checkpoint
from dsbias.engine.together import main_first
from dsbias.features import store
from dsbias.runs import RunDir, lock_run, provenance, released_after, write_json, write_text
from dsbias.typedconfig import ConfigError, diff_keys, dump_yaml, to_dict

logger = logging.getLogger(__name__)

# Keys that may change between a run and its resumption (they do not change what is computed).
RESUMABLE_CHANGES = {"out", "train.log_every", "train.log_with", "train.extract", "train.stop_after",
                     "train.save_every", "data.num_workers", "extract.stop_after",
                     "train.compile", "train.channels_last"}

T = TypeVar("T")


def on_main(accelerator: Accelerator, fn: Callable[[], T], what: str = "a setup step") -> T | None:
    """Run ``fn`` on the main process only, the others waiting patiently; an error there stops every process,
    not only the main one (:func:`dsbias.engine.together.main_first`).

    Returns:
        ``fn()``'s result on the main process, None on the others.
    """
    return main_first(accelerator, fn, what)


def holds_run_dir(main: Callable[..., T]) -> Callable[..., T]:
    """Decorate a pipeline main ``main(cfg, ...)``: the run-dir lock :func:`prepare_run` takes is released when
    it returns or raises (a CLI process ends there anyway; a test or a study goes on to other runs)."""

    @functools.wraps(main)
    def wrapper(cfg: Config, *args: Any, **kwargs: Any) -> T:
        with released_after(RunDir.at(cfg.out)):
            return main(cfg, *args, **kwargs)

    return wrapper


def started(run: RunDir) -> bool:
    """Whether the run dir holds work a changed config would invalidate: a checkpoint, an exported backbone,
    features (finished or in parts)."""
    return latest_checkpoint(run) is not None or run.backbone_meta.exists() or any(
        (d / store.META).exists() or store.parts_dir(d).exists() for d in (run.features, run.init_features))


def _changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """``key: old -> new`` for the keys that may not change on resume."""
    def value(d: Any, key: str) -> Any:
        for k in key.split("."):
            d = d.get(k) if isinstance(d, dict) else None
        return d

    return [f"{k}: {value(old, k)!r} -> {value(new, k)!r}" for k in diff_keys(old, new) if k not in RESUMABLE_CHANGES]


def open_run_dir(run: RunDir, cfg: Config, processes: int, device: str) -> None:
    """Lock the run dir, check a resumed config, write ``config.yaml`` and ``provenance.json`` (main process)."""
    lock_run(run)
    if run.config.exists():
        changed = _changes(to_dict(load_config(run.config)), to_dict(cfg))
        if changed and started(run):
            raise ConfigError(f"{run.config}: this run dir was made with another config ({'; '.join(changed[:6])}) "
                              f"(resume with the same settings, give a new --out, or delete {run.root} to start "
                              "over)")
        if changed:
            # Nothing was trained or exported yet (the run stopped before its first checkpoint, e.g. on a wrong
            # data path): the corrected command starts over instead of being refused.
            logger.warning("%s: config changed before the first checkpoint (%s): starting over", run.root,
                           "; ".join(changed[:6]))
            for f in (run.manifest, run.manifest_summary, run.log):
                f.unlink(missing_ok=True)
    write_text(run.config, dump_yaml(cfg))
    write_json(run.provenance, {**provenance(), "processes": processes, "device": device})

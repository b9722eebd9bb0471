"""Logging set-up: one readable stream on the main process, warnings only on the others."""

from __future__ import annotations

import logging
import os
import sys


def setup_logging(main_process: bool = True, level: int = logging.INFO) -> None:
    """Configure the ``dsbias`` logger once (idempotent).

    Args:
        main_process: Only the main process logs INFO; others log warnings and errors.
        level: Level on the main process (``DSBIAS_LOG_LEVEL`` overrides it).
    """
    env = os.environ.get("DSBIAS_LOG_LEVEL")
    if env:
        level = getattr(logging, env.upper(), level)
    root = logging.getLogger("dsbias")
    root.setLevel(level if main_process else logging.WARNING)
    if not any(getattr(h, "_dsbias", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname).1s %(name)s: %(message)s", "%H:%M:%S"))
        handler._dsbias = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.propagate = False

"""Logging and progress: one readable stream on the main process, progress bars that suit where they go.

On a terminal a progress bar redraws itself live (tqdm). Written to a file or a pipe (a job log, ``nohup``),
redraws would become one line per step, hundreds of KB for a long run; there :func:`progress` writes one plain
line every 10% of the total (every 60 s when the total is unknown) and a last one at the end.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable
from typing import Any

from tqdm.auto import tqdm


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


class LineBar(tqdm):
    """A tqdm that writes whole lines (no carriage returns) at its ``miniters``/``mininterval`` cadence."""

    def display(self, msg: str | None = None, pos: int | None = None) -> bool:
        if msg == "":  # tqdm "clears" a bar this way: nothing to clear in a log
            return False
        self.fp.write((str(self) if msg is None else msg) + "\n")
        self.fp.flush()
        return True

    def set_postfix(self, ordered_dict: Any = None, refresh: bool = True, **kwargs: Any) -> None:
        """Shown with the next line, not as a line of its own."""
        super().set_postfix(ordered_dict, refresh=False, **kwargs)

    def close(self) -> None:
        if self.disable:
            return
        leave, self.leave = self.leave, False  # the base class would add an empty line after the last one
        unshown = self.n != self.last_print_n
        super().close()
        if leave is not False and unshown:
            self.fp.write(str(self) + "\n")
            self.fp.flush()


def progress(iterable: Iterable[Any] | None = None, *, total: float | None = None, file: Any = None,
             **kwargs: Any) -> tqdm:
    """A progress bar: live on a terminal, a line every 10% (or 60 s) elsewhere. Takes tqdm's arguments.

    Args:
        iterable: What to iterate over (its ``len`` gives the total when it has one).
        total: Total count when ``iterable`` has no length.
        file: Where to write (default ``sys.stderr``).
    """
    file = sys.stderr if file is None else file
    if total is None and iterable is not None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    if hasattr(file, "isatty") and file.isatty():
        return tqdm(iterable, total=total, file=file, dynamic_ncols=True, **kwargs)
    remaining = (total or 0) - kwargs.get("initial", 0)
    cadence = {"miniters": max(1, int(remaining // 10)), "mininterval": 0.0} if remaining > 0 else \
        {"miniters": 1, "mininterval": 60.0}
    # maxinterval=inf: tqdm's monitor thread would otherwise drop miniters to 1 after a slow step.
    return LineBar(iterable, total=total, file=file, ascii=True, maxinterval=float("inf"), **cadence, **kwargs)

"""The one timer of every benchmark: the median of repeats, with min and max, and the machine it ran on.

The median, not the best or the mean: on a shared machine one repeat can stall for reasons that are not the
code's, and the best of a few hides how often that happens; min and max show the spread.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch

from dsbias.runs import provenance


@dataclass(frozen=True)
class Timing:
    """Seconds per repeat: ``median`` (the figure to quote), ``min``, ``max`` over ``repeats``."""

    median: float
    min: float
    max: float
    repeats: int

    @classmethod
    def of(cls, seconds: Iterable[float]) -> Timing:
        s = list(seconds)
        if not s:
            raise ValueError("Timing.of: no samples")
        return cls(statistics.median(s), min(s), max(s), len(s))

    def rate(self, work: float) -> float:
        """Work per second at the median time (images/s, GFLOP/s...)."""
        return work / self.median

    def spread(self) -> str:
        """``min-max`` in seconds, for a table cell."""
        return f"{self.min:.3g}-{self.max:.3g}"


def time_it(fn: Callable[[], Any], repeat: int = 3, warmup: int = 0,
            clock: Callable[[], float] = time.perf_counter) -> tuple[Timing, Any]:
    """Call ``fn`` ``warmup`` times untimed, then ``repeat`` times timed; return the timing and the last result.

    CUDA work is synchronised before each clock reading, so a GPU repeat is timed to its end. ``clock`` may be
    ``time.process_time``: this process's CPU seconds, which other processes' load on a shared machine barely
    changes (wall time is what a user waits for; CPU time is what a dedicated machine would need).
    """
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    out = None
    for _ in range(warmup):
        out = fn()
    sync()
    seconds = []
    for _ in range(repeat):
        t = clock()
        out = fn()
        sync()
        seconds.append(clock() - t)
    return Timing.of(seconds), out


def time_round_robin(fns: dict[str, Callable[[], Any]], repeat: int = 3, warmup: int = 0,
                     clock: Callable[[], float] = time.perf_counter) -> dict[str, Timing]:
    """:func:`time_it` for several alternatives at once, one call of each per round, so that a change of load on
    a shared machine during the measurement hits them all alike (their ratios are what is compared)."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    seconds: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            seconds[name].append(time_it(fn, repeat=1, clock=clock)[0].median)
    return {name: Timing.of(s) for name, s in seconds.items()}


def machine_line() -> str:
    """Where a benchmark ran: host, CPU, usable cores, load, GPU and the versions that matter."""
    p = provenance()
    v = p["versions"]
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
    libs = ", ".join(f"{k} {v[k]}" for k in ("torch", "timm", "faiss-cpu", "faiss-gpu") if k in v)
    return (f"machine: {p['host']} ({p['platform']}), {_cpus()} usable CPUs, "
            f"torch threads {torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f}, {gpu}; {libs}")


def _cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1

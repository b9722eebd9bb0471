"""The engine benchmark's bare loop: on the engine's device, in the run's precision."""

from __future__ import annotations

import pytest
from conftest import TINY_RUN

from dsbias.bench.engine import bare_loop
from dsbias.config import load_config
from dsbias.data.manifest import build_manifest


@pytest.mark.parametrize("precision", ["no", "bf16"])
def test_bare_loop_times_steps_in_the_runs_precision(precision):
    cfg = load_config(None, [*TINY_RUN, "method=mae", f'train.mixed_precision="{precision}"'])
    timing = bare_loop(cfg, build_manifest(cfg.data), steps=2, warmup=1, device="cpu")
    assert timing.median > 0 and timing.rate(cfg.train.batch_size) > 0

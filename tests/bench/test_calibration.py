"""The calibration benchmark runs end to end at a tiny size and writes its table (the benchmark itself is not a
test: python tools/calibrate.py)."""

from __future__ import annotations

import json

import numpy as np

from dsbias.bench.calibration import SETTINGS, grouped_gaussian, one_repetition
from dsbias.cli.calibrate import main


def test_grouped_gaussian_shares_an_offset_per_group():
    rng = np.random.default_rng(0)
    x, y, g = grouped_gaussian(rng, 50, 4, np.zeros((3, 8)), tau=3.0)
    assert x.shape == (600, 8) and np.array_equal(y, g % 3)
    within = np.mean([x[g == k].std(0).mean() for k in range(150)])
    assert within < 1.2 and x.std(0).mean() > 2.5  # images of a group sit together


def test_calibrate_cli_writes_the_table(tmp_path, capsys):
    assert main(["--reps", "2", "--signal-reps", "1", "--classifier-runs", "0", "--probes", "knn", "cluster",
                 "--out", str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "calibration.json").read_text())["summary"]
    assert {"null, groups of 10 :: knn/groups", "null, groups of 10 :: knn/iid", "signal, groups of 10 :: gain/knn",
            "null, independent images :: cluster/groups"} <= set(summary)
    assert "| kNN (k=20) | null, groups of 10 | with groups | 2 |" in (tmp_path / "calibration.md").read_text()
    one = one_repetition(SETTINGS[1], 0, ("knn",))
    assert set(one) == {"knn/groups", "knn/iid"} and one["knn/groups"]["covered"] is not None
    assert "calibration.md" in capsys.readouterr().out

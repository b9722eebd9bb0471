"""The streamed (bounded-memory) linear probe fits the same weights as the in-memory one."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import make_features

from dsbias.errors import UserError
from dsbias.features.store import load_features
from dsbias.probes import linear
from dsbias.probes.rows import Standardizer, StreamedRows


@pytest.fixture
def fs(tmp_path):
    return load_features(make_features(tmp_path, n=(400, 80), dim=12, shift=0.4))


def _rows(fs, block=37):
    std = Standardizer.fit(fs.train.features)
    cpu = torch.device("cpu")
    return std.apply(fs.train.features, cpu), StreamedRows(fs.train.features, std, cpu, block=block)


def test_streamed_rows_are_the_in_memory_rows(fs):
    x, sx = _rows(fs)
    assert isinstance(fs.train.features, np.memmap)
    pos = np.sort(np.random.default_rng(0).choice(len(fs.train), 150, replace=False))
    nested = sx.subset(pos).subset(np.arange(10, 90))
    for full, streamed in ((x, sx), (x[pos], sx.subset(pos)), (x[pos][10:90], nested)):
        got = torch.cat([b for _, b in streamed.blocks()])
        assert streamed.shape == tuple(full.shape) and torch.equal(got, full)


@pytest.mark.parametrize("wd", [1e-2, 1e-5])
def test_streamed_fit_gives_the_in_memory_weights(fs, wd):
    x, sx = _rows(fs)
    y = torch.as_tensor(np.array(fs.train.labels))
    ref, _ = linear.fit_linear(x, y, 3, wd)
    got, _ = linear.fit_linear(sx, y, 3, wd)
    # Same objective, summed in another order (blocks of 37 rows): equal up to float32 rounding.
    torch.testing.assert_close(got.weight, ref.weight, atol=2e-4, rtol=1e-3)
    torch.testing.assert_close(got.bias, ref.bias, atol=2e-4, rtol=1e-3)
    (p_ref, l_ref), (p_got, l_got) = linear.evaluate(ref, x, y), linear.evaluate(got, sx, y)
    assert np.mean(p_ref == p_got) >= 0.995 and abs(l_ref - l_got) < 1e-5


def test_run_linear_streamed_matches_in_memory(fs):
    ram, streamed = linear.run_linear(fs, stream=False)[0], linear.run_linear(fs, stream=True)[0]
    assert ram["seeds"]["weight_decay"] == streamed["seeds"]["weight_decay"]
    assert abs(ram["top1"] - streamed["top1"]) <= 1 / len(fs.val)
    with pytest.raises(UserError, match="--sklearn needs the features in RAM"):
        linear.run_linear(fs, stream=True, sklearn=True)


def test_streams_by_default_only_above_the_budget(fs, monkeypatch):
    std, cpu = Standardizer.fit(fs.train.features), torch.device("cpu")
    assert isinstance(linear.rows_for(fs.train.features, std, cpu, None, False), torch.Tensor)
    monkeypatch.setattr(linear, "STREAM_BYTES", 1000)
    assert isinstance(linear.rows_for(fs.train.features, std, cpu, None, False), StreamedRows)

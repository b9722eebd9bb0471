"""Parquet and hf sources in the training loader: 2 processes x 2 workers read every row once, with the images the
main process reads; a missing extra stops with the pip line, at config load and at source creation."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import datasets
import pytest
import torch
from conftest import noise_png, write_parquet
from torch.utils.data.distributed import DistributedSampler

from dsbias.config import ConfigError, load_config
from dsbias.data.dataset import MixedDataset
from dsbias.data.loader import create_loader
from dsbias.data.manifest import build_manifest
from dsbias.data.sources.registry import create_source, expand_sources
from dsbias.data.views import create_eval_transform
from dsbias.errors import UserError


def columnar_sources(tmp_path: Path) -> str:
    """A parquet source (2 files, row groups of 4) and an hf source (save_to_disk), 14 images each."""
    for k in range(2):
        write_parquet(tmp_path / "pq" / f"{k}.parquet",
                      {"image": [{"bytes": noise_png(10 * k + i), "path": None} for i in range(7)]}, row_group_size=4)
    datasets.Dataset.from_dict({"image": [{"bytes": noise_png(100 + i), "path": None} for i in range(14)]},
                               features=datasets.Features({"image": datasets.Image()})).save_to_disk(tmp_path / "hf")
    return (f"[{{name: p, kind: parquet, path: '{tmp_path / 'pq'}'}}, "
            f"{{name: h, kind: hf, path: '{tmp_path / 'hf'}'}}]")


def test_rows_split_over_2_processes_x_2_workers(tmp_path):
    cfg = load_config(None, [f"data.sources={columnar_sources(tmp_path)}", "data.per_source={train: 11, val: 2}"])
    m = build_manifest(cfg.data)  # fills this process's caches before the workers fork
    ds = MixedDataset.from_config(m, "train", create_eval_transform(8), cfg.data)
    expected = {int(idx): x for x, _, idx in (ds[i] for i in range(len(ds)))}
    seen = []
    for rank in range(2):
        sampler = DistributedSampler(ds, num_replicas=2, rank=rank, shuffle=True, seed=0)
        got = [(int(i), x) for xs, _, idx in create_loader(ds, batch_size=3, num_workers=2, sampler=sampler)
               for i, x in zip(idx, xs)]
        assert all(torch.equal(x, expected[i]) for i, x in got)  # the same image as a read in this process
        seen.append([i for i, _ in got])
    assert not set(seen[0]) & set(seen[1])
    assert sorted(seen[0] + seen[1]) == sorted(m.split_indices("train").tolist())  # nothing lost or repeated


@pytest.mark.parametrize("kind,module,extra", [("parquet", "pyarrow", "parquet"), ("hf", "datasets", "hf"),
                                               ("list", "pyarrow", "parquet")])
def test_a_missing_extra_names_the_pip_line(tmp_path, monkeypatch, kind, module, extra):
    write_parquet(tmp_path / "l.parquet", {"path": ["a.png"], "image": [noise_png(0)]}, row_group_size=1)
    (tmp_path / "hf").mkdir()
    path = tmp_path / ("hf" if kind == "hf" else "l.parquet")
    sources = f"[{{name: a, kind: {kind}, path: '{path}'}}, {{name: b, kind: toy}}]"
    loaded = load_config(None, [f"data.sources={sources}"])  # while the extra is there
    for name in [m for m in sys.modules if m == module or m.startswith(module + ".")]:
        monkeypatch.setitem(sys.modules, name, None)  # makes `import pyarrow...` fail as if not installed
    pip = f"pip install -e '.[{extra}]'"
    with pytest.raises(ConfigError, match=rf"data.sources\[0\] \(a, kind {kind}\): needs {module}, which is not "
                                          rf"installed: {re.escape(pip)}$"):
        load_config(None, [f"data.sources={sources}"])
    with pytest.raises(UserError, match=rf"needs {module}, which is not installed: {re.escape(pip)}$"):
        create_source(expand_sources(loaded.data).sources[0], loaded.data).sample_order(0)

"""The kNN bank sharded over several indexes (what several GPUs get), and the choice of one faiss build.

The sharding reproduces on CPU: an ``IndexShards`` with successive ids is what ``index_cpu_to_all_gpus`` with
``shard=True`` builds, and its behaviour does not depend on the shards' device.
"""

from __future__ import annotations

import tomllib

import faiss
import numpy as np
import pytest
from conftest import REPO

from dsbias.errors import UserError
from dsbias.probes import faiss_build, knn


def test_successive_id_shards_refuse_a_second_add():
    # The defect as faiss has it: an empty sharded index takes one add(); the old code added 65,536-row chunks.
    index = faiss.IndexShards(8, True, True)
    for _ in range(2):
        index.add_shard(faiss.IndexFlatIP(8))
    x = np.random.default_rng(0).normal(size=(40, 8)).astype(np.float32)
    index.add(x[:20])
    with pytest.raises(RuntimeError):
        index.add(x[20:])


@pytest.mark.parametrize("n_shards", [1, 2, 3])
def test_sharded_bank_in_many_chunks_finds_what_one_index_finds(monkeypatch, n_shards):
    monkeypatch.setattr(knn, "ADD_CHUNK", 16)  # a 100-row bank in 7+ chunks: the >65,536-row case, small
    rng = np.random.default_rng(1)
    bank, queries = rng.normal(size=(100, 12)).astype(np.float32), rng.normal(size=(9, 12)).astype(np.float32)
    index = knn.fill_shards(bank, [faiss.IndexFlatIP(12) for _ in range(n_shards)])
    assert index.ntotal == 100
    sims, idx = index.search(knn.normalized(queries), 10)
    ref = faiss.IndexFlatIP(12)
    ref.add(knn.normalized(bank))
    ref_sims, ref_idx = ref.search(knn.normalized(queries), 10)
    np.testing.assert_array_equal(idx, ref_idx)  # ids are bank rows across shard boundaries
    np.testing.assert_allclose(sims, ref_sims, rtol=1e-5)


def test_faiss_is_not_a_base_dependency_and_the_extras_choose_one_build():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    names = lambda reqs: {r.split(">")[0].split("=")[0].split("<")[0].strip() for r in reqs}  # noqa: E731
    assert not names(project["dependencies"]) & set(faiss_build.FAISS_DISTRIBUTIONS)
    extras = project["optional-dependencies"]
    assert names(extras["cpu"]) == {"faiss-cpu"} and names(extras["gpu"]) == {"faiss-gpu"}
    assert any("cpu" in r for r in extras["test"] if r.startswith("dsbias["))  # CI installs the cpu build
    for name, reqs in extras.items():  # no extra other than cpu / gpu brings a faiss build
        if name not in ("cpu", "gpu"):
            assert not names(reqs) & set(faiss_build.FAISS_DISTRIBUTIONS), name
    readme = (REPO / "README.md").read_text()
    assert "pip install -e '.[cpu]'" in readme and "'.[test]'" in readme


def test_two_builds_or_none_stop_with_one_line(monkeypatch):
    monkeypatch.setattr(faiss_build, "installed_builds", lambda: ["faiss-cpu==1.15.1", "faiss-gpu==1.15.1"])
    with pytest.raises(UserError, match=r"two faiss builds .*pip uninstall -y faiss-cpu faiss-gpu"):
        faiss_build.require_faiss()
    monkeypatch.setattr(faiss_build, "installed_builds", lambda: [])
    monkeypatch.setattr(faiss_build, "faiss", None)
    with pytest.raises(UserError, match=r"faiss is not installed.*\.\[cpu\]"):
        faiss_build.require_faiss()


def test_this_environment_has_exactly_one_build():
    assert len(faiss_build.installed_builds()) == 1, faiss_build.installed_builds()


@pytest.mark.gpu
def test_two_gpu_shards_on_one_device_match_the_cpu(monkeypatch):
    if not knn.gpu_available():
        pytest.skip("needs faiss with GPU support and a GPU")
    monkeypatch.setattr(knn, "ADD_CHUNK", 1000)  # several adds per shard
    rng = np.random.default_rng(0)
    bank, queries = rng.normal(size=(5000, 32)).astype(np.float32), rng.normal(size=(200, 32)).astype(np.float32)
    index = knn.create_index(bank, "gpu", gpu_devices=[0, 0])
    _, idx = index.search(knn.normalized(queries), 10)
    _, ref = knn.knn_search(bank, queries, 10, "cpu")
    assert index.ntotal == 5000 and np.mean(idx == ref) > 0.999

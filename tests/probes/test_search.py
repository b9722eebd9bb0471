"""The CPU search engines: torch matmul + topk finds faiss's neighbours, and ``auto`` picks by measurement."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_features

from dsbias.features.store import load_features
from dsbias.probes import knn, search


@pytest.mark.parametrize("k", [1, 7, 50])
def test_torch_engine_finds_faiss_neighbours(monkeypatch, k):
    # Small blocks so the bank is split into several blocks (last one partial) and the running top-k is merged.
    monkeypatch.setattr(search, "BANK_BLOCK", 23)
    monkeypatch.setattr(search, "TORCH_QUERY_CHUNK", 16)
    rng = np.random.default_rng(k)
    bank = rng.normal(size=(201, 32)).astype(np.float16)  # float16 on disk: both engines compute in float32
    queries = rng.normal(size=(41, 32)).astype(np.float32)
    sims_f, idx_f = knn.knn_search(bank, queries, k, engine="faiss")
    sims_t, idx_t = knn.knn_search(bank, queries, k, engine="torch")
    assert np.array_equal(idx_t, idx_f)
    np.testing.assert_allclose(sims_t, sims_f, atol=1e-6)
    assert np.all(np.diff(sims_t, axis=1) <= 0)


def test_run_knn_same_report_with_either_engine(tmp_path):
    fs = load_features(make_features(tmp_path, n=(300, 90), shift=0.3))
    res = {e: knn.run_knn(fs, ks=[5, 20], engine=e, progress=False)[0] for e in ("faiss", "torch")}
    for k in ("5", "20"):
        assert res["faiss"]["per_k"][k]["top1"] == res["torch"]["per_k"][k]["top1"]
        assert res["faiss"]["per_k"][k]["confusion"] == res["torch"]["per_k"][k]["confusion"]


def test_auto_engine_measures_when_the_search_is_big(monkeypatch):
    notes: list[str] = []
    assert search.choose_engine("faiss", 10**7, 10**5, 768, 20, notes) == "faiss" and not notes
    assert search.choose_engine("auto", 100, 10, 8, 20, notes) == "faiss" and not notes  # too small to repay
    monkeypatch.setattr(search, "PROBE_ROWS", 512)
    monkeypatch.setattr(search, "PROBE_QUERIES", 64)
    search.probe_engines.cache_clear()
    rates = {"faiss": 1.0, "torch": 2.0}
    monkeypatch.setattr(search, "_best_seconds", lambda fns, rounds=2: {n: 1 / rates[n] for n in fns})
    assert search.choose_engine("auto", 10**6, 10**4, 16, 20, notes) == "torch"
    rates.update(faiss=3.0)
    search.probe_engines.cache_clear()
    assert search.choose_engine("auto", 10**6, 10**4, 16, 20, notes) == "faiss"
    assert "CPU search engine: faiss" in notes[-1] and "GFLOP/s" in notes[-1]
    search.probe_engines.cache_clear()


def test_probe_times_both_engines_for_real(monkeypatch):
    monkeypatch.setattr(search, "PROBE_ROWS", 512)
    monkeypatch.setattr(search, "PROBE_QUERIES", 64)
    search.probe_engines.cache_clear()
    engine, rates = search.probe_engines(16, 5, 1)
    search.probe_engines.cache_clear()
    assert engine in ("faiss", "torch") and set(rates) == {"faiss", "torch"} and all(r > 0 for r in rates.values())
    assert rates[engine] == max(rates.values())

"""The scale rehearsal and the engine's file-data benchmark run end to end at toy sizes and print their tables
(the figures themselves are the benchmarks' business, not the tests')."""

from __future__ import annotations

import re

import pytest

from dsbias.cli.bench_engine import main as bench_engine_main
from dsbias.cli.bench_scale import main as bench_scale_main


def test_scale_rehearsal_prints_every_stage_with_its_memory(tmp_path, capsys):
    assert bench_scale_main(["--rows", "3000", "--queries", "200", "--dim", "16", "--dtypes", "float16",
                             "--images", "400", "--processes", "1", "2", "--extract-images", "8",
                             "--backbone", "timm:test_vit", "--gpu-img-per-s", "2000",
                             "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    table = [line for line in out.splitlines() if line.startswith("| ") and not line.startswith("| stage")]
    stages = [line.split(" | ")[0] for line in table]
    assert len(table) == 6, out  # kNN, linear, cluster, extraction, manifest x 2 processes
    for name in ("| kNN", "| linear", "| cluster", "| extraction", "| manifest build, webdataset, 1",
                 "| manifest build, webdataset, 2"):
        assert any(s.startswith(name) for s in stages), (name, stages)
    for line in table:
        own, everything = re.fullmatch(r"([\d.]+) \(([\d.]+)\)", line.split(" | ")[4]).groups()
        assert 0 < float(own) <= float(everything)  # peak memory in GiB: the process's own, then all resident
    assert re.search(r"8 GPUs at 2000 img/s each: \d+ min \((GPU|CPU decoding)-bound\)", out)
    assert list(tmp_path.iterdir()) == []  # its files are deleted


@pytest.mark.slow
def test_engine_benchmark_on_file_data_compares_three_loops(capsys):
    assert bench_engine_main(["--files", "96", "--steps", "4", "model=convnext_atto", "method=supervised",
                              "train.batch_size=16", "data.num_workers=1"]) == 0
    out = capsys.readouterr().out
    m = re.search(r"engine ([\d.]+) img/s, with data.cache_decoded ([\d.]+), plain loop ([\d.]+) img/s: "
                  r"ratios ([\d.]+) / ([\d.]+)", out)
    assert m and all(float(v) > 0 for v in m.groups()), out
    costs = re.search(r"ms per image: decode ([\d.]+), augment ([\d.]+), seed ([\d.]+), torch.manual_seed ([\d.]+)",
                      out)
    assert costs and all(float(v) > 0 for v in costs.groups()), out

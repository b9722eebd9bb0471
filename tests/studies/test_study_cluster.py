"""Studies on a cluster through submitit, with its local executor (no SLURM): every run a job, a killed job
reported, and a rerun that submits only the runs still incomplete."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import pytest

from dsbias.errors import UserError
from dsbias.runs import RunDir, read_json
from dsbias.studies import cluster, runner
from dsbias.studies.catalogue import Cell

pytest.importorskip("submitit")

# A run's command: writes metrics.json, except that a run named in KILL kills its own job (the submitit worker,
# its parent process) the first time, as SLURM would on a node failure or a timeout.
RUN = """
import os, pathlib, sys
rdir = pathlib.Path(sys.argv[1])
marker = rdir / "killed-once"
if rdir.name in sys.argv[2:] and not marker.exists():
    marker.write_text("")
    os.kill(os.getppid(), 9)
    raise SystemExit(1)
(rdir / "metrics.json").write_text("{}")
"""


@pytest.fixture
def fake_study(monkeypatch):
    import submitit

    monkeypatch.setattr(cluster, "POLL_S", 0.2)
    monkeypatch.setattr(submitit.core.core.Job, "_results_timeout_s", 0)  # its grace for slow shared file systems
    cells = [Cell("fake", key, "classify", ()) for key in ("a", "b", "c")]
    monkeypatch.setattr(runner, "build_cells", lambda *a, **k: cells)
    kill: list[str] = []
    monkeypatch.setattr(runner, "commands",
                        lambda cell, rdir, seed, *a: [[sys.executable, "-c", RUN, str(rdir), *kill]])
    monkeypatch.setattr(runner, "collect", lambda name, cells, out, seeds: [
        c.key for c in cells if runner.is_complete(c, runner.run_dir(out, c, 0))])
    return kill


def _study(out, lines):
    return runner.run_study("fake", out, SimpleNamespace(data=SimpleNamespace(sources=[])), [], launcher="submitit",
                            cluster_options={"cluster": "local", "timeout_min": 5}, baselines=False,
                            echo=lines.append)


def test_local_executor_runs_a_study_and_resumes_only_the_killed_job(tmp_path, fake_study):
    fake_study.append("b-s0")
    lines: list[str] = []
    with pytest.raises(UserError, match=r"1 of 3 cluster job\(s\) failed: b-s0 .*rerun the same command"):
        _study(tmp_path, lines)
    assert any("b-s0: job" in line and "FAILED: ended without a result" in line for line in lines)
    first = read_json(tmp_path / "jobs.json")
    assert set(first) == {"a-s0", "b-s0", "c-s0"}
    assert RunDir.at(runner.run_dir(tmp_path, Cell("fake", "a", "classify", ()), 0)).metrics.is_file()

    lines.clear()
    assert _study(tmp_path, lines) == ["a", "b", "c"]
    assert "2 already complete" in lines[0] and any("submitted 1 job(s)" in line for line in lines)
    second = read_json(tmp_path / "jobs.json")
    assert second["a-s0"] == first["a-s0"] and second["c-s0"] == first["c-s0"]
    assert second["b-s0"]["job_id"] != first["b-s0"]["job_id"]
    assert "$ " in (tmp_path / "runs" / "b-s0" / "study.log").read_text()  # the commands are logged per run

    lines.clear()
    assert _study(tmp_path, lines) == ["a", "b", "c"] and not any("submitted" in line for line in lines)


def test_options_and_multi_node_commands():
    assert cluster.parse_options(["nodes=2", "slurm_partition=gpu", "timeout_min=90"]) == {
        "nodes": 2, "slurm_partition": "gpu", "timeout_min": 90}
    with pytest.raises(UserError, match="expected KEY=VALUE"):
        cluster.parse_options(["nodes"])
    with pytest.raises(UserError, match="--slurm"):
        cluster.executor(__import__("pathlib").Path("/tmp"), {"cluster": "local", "no_such_option": 1})
    cmds = [["accelerate", "launch", "probe/classify.py", "--out", "r"], ["python", "probe/knn.py"]]
    one = SimpleNamespace(num_nodes=1, node=0, hostnames=["n0"])
    assert cluster.node_commands(cmds, one) == cmds
    for rank in (0, 1):
        env = SimpleNamespace(num_nodes=2, node=rank, hostnames=["n0", "n1"])
        got = cluster.node_commands(cmds, env)
        assert got[0][:10] == ["accelerate", "launch", "--num_machines", "2", "--machine_rank", str(rank),
                               "--main_process_ip", "n0", "--main_process_port", str(cluster.PORT)]
        assert len(got) == (2 if rank == 0 else 1)  # the probes run once, on the first node
    with pytest.raises(UserError, match="multi-node runs need"):
        cluster.node_commands([["python", "x.py"]], SimpleNamespace(num_nodes=2, node=0, hostnames=["n0", "n1"]))

"""Two gloo processes on CPU: the multi-process failures a GPU cluster would show first, reproduced here.

One spawn runs every scenario in order (each process writes what it saw to a JSON file; the tests read them).
The scenarios use only the pipeline's entry points, so the same worker measured the code before the fix
(docs/benchmarks.md, "GPU readiness"): ``_worker(rank, root, scenarios)`` runs any subset.

- ``setup``: process 0 takes longer than the default collective timeout (4 s here, 10 min with NCCL) to build
  the manifest; the others must wait for it, not time out.
- ``setup_error``: a config error on process 0 only; every process must stop with its line, not hang.
- ``nan``: the loss is NaN on process 1 only; both processes must stop at the same check with the same line.
- ``extract_refusal``: a partial extraction with other settings in the features dir, seen by process 0 only;
  every process must stop with its line.
- ``eval``: a BatchNorm network trained on two processes, evaluated with the padded tensor gather: both
  processes hold process 0's running statistics and every val row once, in manifest order.
"""

from __future__ import annotations

import datetime
import json
import os
import time
import traceback

import pytest
import torch

SCENARIOS = ("setup_error", "setup", "nan", "eval", "extract_refusal")
SHORT_TIMEOUT = datetime.timedelta(seconds=3)
USUAL_TIMEOUT = datetime.timedelta(seconds=60)  # the training scenarios: the two processes start unevenly


def bn_method(cfg, num_sources, nan_on_rank=None):
    """A small conv + BatchNorm classifier; with ``nan_on_rank``, that process's third forward returns NaN."""
    from torch import nn
    from torchvision import transforms as T

    from dsbias.methods.base import MethodBase

    class Backbone(nn.Module):
        num_features = 8

        def __init__(self) -> None:
            super().__init__()
            self.net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                                     nn.AdaptiveAvgPool2d(1), nn.Flatten())

        def forward(self, x):
            return self.net(x)

    class BNClassifier(MethodBase):
        def __init__(self) -> None:
            super().__init__()
            self.backbone = Backbone()
            self.head = nn.Linear(8, num_sources)
            self.calls = 0

        def create_train_transform(self):
            return T.Compose([T.RandomResizedCrop(16, scale=(0.5, 1)), T.ToTensor()])

        def create_eval_transform(self):
            return T.Compose([T.Resize(16), T.CenterCrop(16), T.ToTensor()])

        def logits(self, x):
            return self.head(self.backbone(x))

        def forward(self, batch):
            x, y, _ = batch
            logits = self.logits(x)
            loss = nn.functional.cross_entropy(logits, y)
            self.calls += 1
            if nan_on_rank is not None and int(os.environ["RANK"]) == nan_on_rank and self.calls == 3:
                loss = loss * float("nan")
            return {"loss": loss, "acc": (logits.argmax(1) == y).float().mean()}

    return BNClassifier()


def _config(out, *over):
    from conftest import TINY_RUN

    from dsbias.config import load_config

    return load_config(None, [*TINY_RUN, f"out={out}", "train.samples=48", "train.log_every=4", *over])


def _scenario(name, root):
    import torch.distributed as dist
    from torch.distributed import distributed_c10d

    from dsbias.classify.evaluate import Evaluator, predict
    from dsbias.data.dataset import MixedDataset
    from dsbias.engine.loop import train
    from dsbias.errors import UserError
    from dsbias.pipelines import stages
    from dsbias.pipelines.stages import build_data, prepare_run

    if name in ("setup", "setup_error"):
        real = stages.load_or_build_manifest

        def slow(*args, **kwargs):  # a manifest build that outlasts the default collective timeout
            time.sleep(2 * SHORT_TIMEOUT.total_seconds())
            return real(*args, **kwargs)

        def fail(*args, **kwargs):  # a data error found while building (on process 0 only: it builds)
            raise UserError("data.sources[0].path: /nowhere does not exist; fix the path")

        stages.load_or_build_manifest = slow if name == "setup" else fail
        try:
            cfg = _config(root / name)
            run, acc = prepare_run(cfg)
            t0 = time.perf_counter()
            manifest = build_data(cfg, run, acc)
            dist.barrier()  # the default group is still healthy afterwards
            return {"rows": len(manifest), "waited_s": time.perf_counter() - t0}
        except Exception as e:  # noqa: BLE001 -- the type is part of what is checked
            return {"type": type(e).__name__, "error": str(e)}
        finally:
            stages.load_or_build_manifest = real
            distributed_c10d._set_pg_timeout(USUAL_TIMEOUT)
    if name == "nan":
        cfg = _config(root / "nan", "train.batch_size=4")
        run, acc = prepare_run(cfg)
        manifest = build_data(cfg, run, acc)
        method = bn_method(cfg, len(manifest.sources), nan_on_rank=1)
        ds = MixedDataset.from_config(manifest, "train", method.create_train_transform(), cfg.data)
        try:
            train(cfg, method, ds, run, acc)
        except Exception as e:  # noqa: BLE001 -- the type is part of what is checked
            saved = sorted(p.name for p in run.state.glob("*"))
            return {"type": type(e).__name__, "error": str(e), "checkpoints": saved}
        return {"type": None}
    if name == "eval":
        cfg = _config(root / "eval", "train.batch_size=8")
        run, acc = prepare_run(cfg)
        manifest = build_data(cfg, run, acc)
        torch.manual_seed(0)
        method = bn_method(cfg, len(manifest.sources))
        ds = MixedDataset.from_config(manifest, "train", method.create_train_transform(), cfg.data)
        val = MixedDataset.from_config(manifest, "val", method.create_eval_transform(), cfg.data)
        evaluator = Evaluator(val, acc, 3, 0)
        train(cfg, method, ds, run, acc, eval_fn=evaluator, eval_every=2)
        pred = predict(method, val, acc, 5, 0, "val")
        method.eval()
        with torch.no_grad():  # this process alone, every row: equal to the gathered rows only if the nets agree
            x = torch.stack([val[i][0] for i in range(len(val))])
            local = method.logits(x).softmax(1).numpy()
        buffers = {k: v.tolist() for k, v in method.state_dict().items() if "running" in k}
        return {"index": pred.index.tolist(), "manifest_index": val.index.tolist(), "probs": pred.probs.tolist(),
                "local_probs": local.tolist(), "buffers": buffers, "latest": json.loads((run.state / "latest.json")
                                                                                        .read_text())}
    if name == "extract_refusal":
        from dsbias.features import store
        from dsbias.features.extract import extract_features

        cfg = _config(root / "ext")
        run, acc = prepare_run(cfg)
        manifest = build_data(cfg, run, acc)
        method = bn_method(cfg, len(manifest.sources))
        if acc.is_main_process:
            store.write_plan(run.features, {"meta": "another extraction"})
        acc.wait_for_everyone()
        try:
            extract_features(method.backbone, manifest, cfg.data, run.features, acc)
        except UserError as e:
            return {"type": "UserError", "error": str(e)}
        return {"type": None}
    raise ValueError(name)


def _worker(rank, root, scenarios=SCENARIOS):
    from pathlib import Path

    import torch.distributed as dist
    from torch.distributed import distributed_c10d

    root = Path(root)
    os.environ.update({"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "2",
                       "MASTER_ADDR": "127.0.0.1", "OMP_NUM_THREADS": "1"})
    os.chdir(root.parent.parent if (root.parent.parent / "configs").is_dir() else os.getcwd())
    # A file rendezvous (no TCP port another job could hold) with a short default timeout.
    dist.init_process_group("gloo", init_method=f"file://{root / 'rendezvous'}", rank=rank, world_size=2,
                            timeout=SHORT_TIMEOUT)
    if scenarios[0] not in ("setup", "setup_error"):
        distributed_c10d._set_pg_timeout(USUAL_TIMEOUT)
    try:
        for name in scenarios:
            try:
                res = _scenario(name, root)
            except Exception:  # noqa: BLE001 -- recorded for the test to show
                res = {"crash": traceback.format_exc()}
            (root / f"{name}.{rank}.json").write_text(json.dumps(res))
    finally:
        dist.destroy_process_group()


pytestmark = pytest.mark.slow  # one spawn of 2 processes running 5 scenarios: ~30 s on a quiet 2-core box


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    from conftest import REPO

    root = tmp_path_factory.mktemp("two_processes")
    os.chdir(REPO)
    # spawn, not fork: a fork after torch has started its OpenMP pool (earlier tests) can hang the child.
    torch.multiprocessing.start_processes(_worker, args=(str(root),), nprocs=2, start_method="spawn")
    out = {}
    for name in SCENARIOS:
        out[name] = [json.loads((root / f"{name}.{r}.json").read_text()) for r in range(2)]
        for r, res in enumerate(out[name]):
            assert "crash" not in res, f"{name} on process {r}:\n{res['crash']}"
    return out


def test_others_wait_for_a_manifest_build_longer_than_the_collective_timeout(outcomes):
    a, b = outcomes["setup"]
    assert a["rows"] == b["rows"] > 0, (a, b)
    assert min(r["waited_s"] for r in outcomes["setup"]) >= SHORT_TIMEOUT.total_seconds()


def test_a_data_error_on_process_0_stops_every_process_with_its_line(outcomes):
    a, b = outcomes["setup_error"]
    # Process 0 raises its own UserError; the others FailedOnMain (a UserError the CLI does not print again).
    assert a["type"] == "UserError" and b["type"] == "FailedOnMain"
    assert a["error"] == b["error"] == "data.sources[0].path: /nowhere does not exist; fix the path"


def test_nan_on_one_process_stops_both_at_the_same_check_with_one_line(outcomes):
    a, b = outcomes["nan"]
    assert a["type"] == b["type"] == "UserError"
    assert a["error"] == b["error"] and "\n" not in a["error"]
    # Process 1's third forward is step 2 (batch 4 = 2 per process, one micro-batch); the first check is at 4.
    assert "from step 2" in a["error"] and "checked at step 4" in a["error"]
    assert a["checkpoints"] == []  # nothing a NaN reached was saved


def test_two_process_eval_gathers_every_row_once_with_process_0s_batchnorm(outcomes):
    a, b = outcomes["eval"]
    assert a["index"] == b["index"] == a["manifest_index"]
    assert a["probs"] == b["probs"]
    assert a["buffers"] == b["buffers"]  # broadcast from process 0 after training
    for res in (a, b):
        torch.testing.assert_close(torch.tensor(res["probs"]), torch.tensor(res["local_probs"]))
    assert a["latest"]["processes"] == 2


def test_a_refused_extraction_stops_every_process_with_one_line(outcomes):
    a, b = outcomes["extract_refusal"]
    assert a["type"] == b["type"] == "UserError"
    assert a["error"] == b["error"] and "a partial extraction with other settings" in a["error"]

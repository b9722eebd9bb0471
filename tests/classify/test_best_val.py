"""``best_val_top1``: the maximum of the val evaluations logged during training (chosen on val), beside the final
step's ``top1``, which stays the reported number."""

from __future__ import annotations

from pathlib import Path

from dsbias.classify.evaluate import best_val
from dsbias.config import load_config
from dsbias.runs import JsonlLog

REPO = Path(__file__).resolve().parents[2]


def test_best_val_is_the_first_step_reaching_the_maximum():
    log = [{"step": 10, "loss": 1.0}, {"step": 10, "eval/val_top1": 0.4}, {"step": 20, "eval/val_top1": 0.6},
           {"event": "end", "step": 40}, {"step": 30, "eval/val_top1": 0.6}, {"step": 40, "eval/val_top1": 0.5}]
    assert best_val(log, 0.5, 40) == {"best_val_top1": 0.6, "best_val_step": 20, "best_val_chosen_on": "val",
                                      "val_evals": 4}
    # The final evaluation counts even when it was not logged (e.g. the log ends earlier).
    assert best_val(log[:3], 0.7, 40)["best_val_top1"] == 0.7 and best_val([], 0.3, 5)["best_val_step"] == 5


def test_classify_reports_the_final_top1_and_the_best_logged_eval(tmp_path):
    from dsbias.pipelines.classify import classify

    cfg = load_config(REPO / "configs/classify/default.yaml", [
        "data=toy", "data.per_source={train: 12, val: 6}", "data.image_size=32", "data.num_workers=0",
        "model=convnext_atto_1_10_uniform", "train.batch_size=12", "train.samples=72", "train.log_every=1",
        "train.log_with=[]", "classify.eval_every=2", f"out={tmp_path}"])
    m = classify(cfg)
    evals = {r["step"]: r["eval/val_top1"] for r in JsonlLog(tmp_path / "log.jsonl").read() if "eval/val_top1" in r}
    assert sorted(evals) == [2, 4, 6] and evals[6] == m["top1"]  # the reported top1 is the final step's
    assert m["best_val_top1"] == max(evals.values()) >= m["top1"] and m["val_evals"] == 3
    assert evals[m["best_val_step"]] == m["best_val_top1"] and m["best_val_chosen_on"] == "val"

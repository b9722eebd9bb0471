"""Calibration of the feature probes' verdicts and intervals on synthetic features whose truth is known.

Not a test (``python tools/calibrate.py``): hundreds of repetitions of a probe on Gaussian features with group
structure. Each image is ``source mean + group offset + noise``; a group (a "photo") shares its offset, so its
images are not independent. On null data (all source means equal) a verdict should say ``separable`` in at most
5% of repetitions, and a 95% interval should cover the true accuracy (1/S) in about 95%; with signal, the truth is
the fitted probe's accuracy on a large fresh set of groups, and the paired interval of ``gain_over_init`` is
checked the same way against a weaker "init" view of the same images. Every grouped repetition is also scored
as if its images were independent, the way dsbias scored them before groups: that row shows why groups matter.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dsbias.features.store import FeatureSet, FeatureSplit
from dsbias.probes.cluster import cluster_report, kmeans
from dsbias.probes.knn import knn_search, knn_vote
from dsbias.probes.linear import Standardizer, probe_once
from dsbias.stats import classification_report, paired_gain

SOURCES = ["a", "b", "c"]


@dataclass(frozen=True)
class Setting:
    """One data-generating setting.

    Attributes:
        name: Row label.
        group_size: Images per group (1: independent images).
        shift: Scale of the source means (0: the null).
        tau: Std of a group's shared offset (the within-group correlation), per dimension.
    """

    name: str
    group_size: int
    shift: float
    tau: float = 1.0


SETTINGS = (Setting("null, independent images", 1, 0.0), Setting("null, groups of 10", 10, 0.0),
            Setting("signal, groups of 10", 10, 0.35))
TRAIN_GROUPS, VAL_GROUPS, TRUTH_GROUPS, DIM = 30, 10, 300, 16


def grouped_gaussian(rng: np.random.Generator, groups: int, size: int, mu: np.ndarray, tau: float,
                     first_group: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``groups`` groups per source of ``size`` images: ``x [N, D]`` float32, labels ``[N]``, group ids ``[N]``.

    Args:
        rng: Randomness.
        groups: Groups per source.
        size: Images per group.
        mu: ``[S, D]`` source means.
        tau: Std of each group's shared offset.
        first_group: First group id (ids are unique across calls that pass disjoint ranges).
    """
    s, d = mu.shape
    g = np.repeat(np.arange(s * groups), size)  # [N]
    y = g % s
    offset = rng.normal(scale=tau, size=(s * groups, d))
    x = mu[y] + offset[g] + rng.normal(size=(g.size, d))
    return x.astype(np.float32), y.astype(np.int64), (g + first_group).astype(np.int64)


def feature_set(train: tuple, val: tuple, grouped: bool) -> FeatureSet:
    """An in-memory :class:`FeatureSet` from ``(x, y, groups)`` tuples (groups dropped when not ``grouped``)."""
    def split(t: tuple) -> FeatureSplit:
        x, y, g = t
        return FeatureSplit(features=x, labels=y, index=np.arange(y.size), groups=g if grouped else None)

    return FeatureSet(root=Path("."), meta={"dim": train[0].shape[1], "sources": SOURCES}, train=split(train),
                      val=split(val))


def predict(probe: str, fs: FeatureSet) -> np.ndarray:
    """Val predictions ``[M]`` of the kNN (k=20, T=0.07) or linear probe, with the probes' own protocols."""
    if probe == "knn":
        sims, idx = knn_search(fs.train.features, fs.val.features, 20)
        return knn_vote(sims, fs.train.labels[idx], len(SOURCES), 0.07).argmax(1)
    std, cpu = Standardizer.fit(fs.train.features), torch.device("cpu")
    x, xv = std.apply(fs.train.features, cpu), std.apply(fs.val.features, cpu)
    return probe_once(x, torch.as_tensor(fs.train.labels), xv, len(SOURCES), seed=0)[0]


def _outcome(rep: dict[str, Any], truth: float | None) -> dict[str, Any]:
    lo, hi = rep["ci95"]
    return {"separable": rep["verdict"] == "separable", "width": hi - lo,
            "covered": None if truth is None else bool(lo <= truth <= hi)}


def one_repetition(setting: Setting, rep: int, probes: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """Run every probe once on fresh data; score it with groups and as if independent.

    Returns:
        ``{"<probe>/groups" | "<probe>/iid" | "gain/<probe>": outcome}``; an outcome has ``separable``, ``width``
        and ``covered`` (None where the truth is not defined).
    """
    rng = np.random.default_rng(rep)
    mu = rng.normal(size=(len(SOURCES), DIM)) * setting.shift
    size, grouped = setting.group_size, setting.group_size > 1
    train = grouped_gaussian(rng, TRAIN_GROUPS * (1 if grouped else 10), size, mu, setting.tau * grouped)
    val = grouped_gaussian(rng, VAL_GROUPS * (1 if grouped else 10), size, mu, setting.tau * grouped, 10**6)
    signal = setting.shift > 0
    truth_set = grouped_gaussian(rng, TRUTH_GROUPS, size, mu, setting.tau * grouped, 2 * 10**6) if signal else None
    n_val = val[1].size
    both = val if truth_set is None else tuple(np.concatenate([a, b]) for a, b in zip(val, truth_set))
    out: dict[str, dict[str, Any]] = {}
    for probe in probes:
        if probe == "cluster":
            x = np.concatenate([train[0], val[0]])
            y, g = np.concatenate([train[1], val[1]]), np.concatenate([train[2], val[2]])
            clusters = kmeans(x, len(SOURCES), seed=rep)
            out["cluster/groups"] = _outcome(cluster_report(y, clusters, SOURCES, 3, g if grouped else None,
                                                            n_perm=499, seed=rep)[0], None)
            if grouped:
                out["cluster/iid"] = _outcome(cluster_report(y, clusters, SOURCES, 3, None, 499, rep)[0], None)
            continue
        fs = feature_set(train, both, grouped)
        pred = predict(probe, fs)
        truth = float(np.mean(pred[n_val:] == both[1][n_val:])) if signal else 1 / len(SOURCES)
        yv, pv, gv = val[1], pred[:n_val], val[2] if grouped else None
        out[f"{probe}/groups"] = _outcome(classification_report(yv, pv, SOURCES, groups=gv, seed=rep), truth)
        if grouped:
            out[f"{probe}/iid"] = _outcome(classification_report(yv, pv, SOURCES, seed=rep), truth)
        if signal:  # the control: the same images seen through a weaker "init" view
            weak = [(t[0] * 0.5 + rng.normal(size=t[0].shape).astype(np.float32), *t[1:]) for t in (train, both)]
            fs0 = feature_set(weak[0], weak[1], grouped)
            pred0 = predict(probe, fs0)
            gain = paired_gain(yv, pv, pred0[:n_val], len(SOURCES), gv, seed=rep)
            true_gain = truth - float(np.mean(pred0[n_val:] == both[1][n_val:]))
            lo, hi = gain["ci95"]
            out[f"gain/{probe}"] = {"separable": None, "width": hi - lo, "covered": bool(lo <= true_gain <= hi)}
    return out


def summarise(outcomes: list[dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Per key: repetitions, false-positive (or "separable") rate, coverage and mean interval width."""
    keys = dict.fromkeys(k for o in outcomes for k in o)
    out = {}
    for key in keys:
        rows = [o[key] for o in outcomes if key in o]
        sep = [r["separable"] for r in rows if r["separable"] is not None]
        cov = [r["covered"] for r in rows if r["covered"] is not None]
        out[key] = {"reps": len(rows), "separable_rate": float(np.mean(sep)) if sep else None,
                    "coverage": float(np.mean(cov)) if cov else None,
                    "mean_width": float(np.mean([r["width"] for r in rows]))}
    return out


ROWS = (("knn", "kNN (k=20)"), ("linear", "linear"), ("cluster", "clustering (purity)"))


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def markdown(summary: dict[str, dict[str, Any]]) -> str:
    """The calibration table: per probe and setting, how often the verdict said separable, how often the 95%
    interval covered the truth, and its mean width."""
    lines = ["| probe | data | scored | runs | separable (null: false positives; target <= 5%) | "
             "95% CI covers the truth (target ~95%) | mean CI width |", "|---|---|---|---|---|---|---|"]
    for key, r in summary.items():
        setting, what = key.split(" :: ")
        kind, scored = what.split("/")
        probe = dict(ROWS).get(kind, kind)
        if kind == "gain":
            probe, scored = f"gain over init ({dict(ROWS)[scored]})", "paired, groups"
        label = {"groups": "with groups" if "groups of" in setting or "grouped" in setting else "default",
                 "iid": "as if independent"}.get(scored, scored)
        lines.append(f"| {probe} | {setting} | {label} | {r['reps']} | {_pct(r['separable_rate'])} | "
                     f"{_pct(r['coverage'])} | {100 * r['mean_width']:.1f} pt |")
    return "\n".join(lines)

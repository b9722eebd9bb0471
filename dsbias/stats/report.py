"""The one report every number gets: top-1 and balanced accuracy with group-aware intervals, a test against
chance and a verdict, chance and majority baselines, per-source recall and the confusion matrix.

Every probe (kNN, linear, clustering), the end-to-end classifier, the shortcut baselines and the study rows
call :func:`classification_report`, so the same keys mean the same thing everywhere (see docs/statistics.md).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dsbias.stats.chance import binomial_p, permutation_p
from dsbias.stats.intervals import balanced_of, bootstrap_totals, is_ungrouped, top1_of, union, wilson_ci

ALPHA = 0.05
N_BOOT = 2000
N_PERM = 4999
DEFF_SHOWN = 1.5  # tables print the design effect above this


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """``[S, S]`` int64 counts; row = true source, column = predicted source."""
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    return np.bincount(y_true * num_classes + y_pred, minlength=num_classes * num_classes).reshape(
        num_classes, num_classes
    )


def verdict(p_value: float | None, alpha: float = ALPHA) -> str:
    """``separable`` when the test rejects chance at ``alpha``, else ``not shown`` (never "not separable")."""
    return "separable" if p_value is not None and p_value < alpha else "not shown"


def classification_report(
    y_true: np.ndarray, y_pred: np.ndarray, sources: list[str], train_labels: np.ndarray | None = None,
    groups: np.ndarray | None = None, alpha: float = ALPHA, n_boot: int = N_BOOT, n_perm: int = N_PERM,
    seed: int = 0,
) -> dict[str, Any]:
    """Accuracy with its interval and test, baselines, per-source recall and confusion, as a JSON-ready dict.

    Args:
        y_true: True source ids ``[N]`` of the val images.
        y_pred: Predicted source ids ``[N]``.
        sources: Source names (index = id).
        train_labels: Train labels ``[M]``; the majority baseline predicts their most frequent source.
        groups: Val group ids ``[N]`` (images that belong together), or ``None``: every image its own group.
        alpha: Level of the one-sided test against chance.
        n_boot: Bootstrap replicates of the group intervals.
        n_perm: Permutations of the group test.
        seed: Seeds the bootstrap and the permutations.

    Returns:
        ``top1, ci95, ci95_iid, design_effect, balanced_top1, balanced_ci95, primary, p_value, test, verdict,
        alpha, chance, majority, per_source, confusion, sources, n, n_groups, notes``. ``primary`` names the
        headline metric (``balanced_top1`` when the val counts per source differ); the test and the verdict
        are about it.
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    s, n = len(sources), int(y_true.size)
    conf = confusion_matrix(y_true, y_pred, s)
    correct = int(np.trace(conf))
    support = conf.sum(1)
    chance = 1.0 / s
    ungrouped = is_ungrouped(groups)
    grp = None if ungrouped else np.asarray(groups)
    n_groups = n if grp is None else int(np.unique(np.stack([y_true, grp], 1), axis=0).shape[0])
    primary = "top1" if len(set(support[support > 0].tolist())) <= 1 and (support > 0).all() else "balanced_top1"
    notes: list[str] = []
    if primary == "balanced_top1":
        notes.append("val counts per source differ (" + ", ".join(f"{a} {int(c)}" for a, c in zip(sources, support))
                     + "): balanced_top1 (mean per-source recall, chance 1/S) is the primary metric")
    top1 = correct / n if n else float("nan")
    ci_iid = wilson_ci(correct, n)
    balanced = float(balanced_of(np.stack([support, np.diag(conf)], 1).astype(float))) if n else float("nan")
    ci_bal_iid = wilson_ci(balanced * n, n)
    ci, ci_bal, deff = ci_iid, ci_bal_iid, 1.0
    if n and (grp is not None or primary == "balanced_top1"):
        reps = bootstrap_totals(y_true, grp, np.stack([np.ones(n), y_true == y_pred], 1), s, n_boot, seed)
        # Never narrower than the i.i.d. interval: a bootstrap that comes out narrower (by chance, or because
        # every group is all right or all wrong) falls back to it.
        ci_bal = union(reps.interval(balanced, balanced_of(reps.boot)), ci_bal_iid)
        if grp is not None:
            boot_top1 = top1_of(reps.boot)
            ci = union(reps.interval(top1, boot_top1), ci_iid)
            var_iid = top1 * (1 - top1) / n
            deff = float(boot_top1.var(ddof=1) / var_iid) if var_iid > 0 else 1.0
            if not reps.estimable:
                short = ", ".join(sources[i] for i in reps.short_sources())
                notes.append(f"one val group in {short}: the spread between groups cannot be estimated, so the "
                             "intervals are [0, 1]; use more val groups per source")
                ci, ci_bal = (0.0, 1.0), (0.0, 1.0)
    if not n:
        p, test = None, "none (no val images)"
    elif grp is None and primary == "top1":
        p, test = binomial_p(correct, n, chance), "exact binomial test"
    else:
        unit = "groups" if grp is not None else "images"
        p = permutation_p(y_true, y_pred, grp, s, primary == "balanced_top1", n_perm, seed)[0]
        test = f"{n_perm} permutations of the source labels among val {unit}"
    ref = train_labels if train_labels is not None else y_true
    majority_class = int(np.bincount(np.asarray(ref, dtype=np.int64), minlength=s).argmax()) if n else 0
    return {
        "top1": top1,
        "ci95": list(ci),
        "ci95_iid": list(ci_iid),
        "design_effect": deff,
        "balanced_top1": balanced,
        "balanced_ci95": list(ci_bal),
        "primary": primary,
        "p_value": p,
        "test": test,
        "verdict": verdict(p, alpha),
        "alpha": alpha,
        "chance": chance,
        "majority": float(np.mean(y_true == majority_class)) if n else float("nan"),
        "per_source": {name: (float(conf[i, i] / support[i]) if support[i] else None)
                       for i, name in enumerate(sources)},
        "confusion": conf.tolist(),
        "sources": list(sources),
        "n": n,
        "n_groups": n_groups,
        "notes": notes,
    }


def primary_value(report: dict[str, Any]) -> tuple[float, list[float]]:
    """The headline number of a report and its interval (top-1, or balanced top-1 when that is primary)."""
    if report.get("primary") == "balanced_top1":
        return report["balanced_top1"], report["balanced_ci95"]
    return report["top1"], report["ci95"]


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    a = np.asarray(values, dtype=np.float64)
    return float(a.mean()), float(a.std(ddof=1)) if a.size > 1 else 0.0


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def format_p(p: float | None) -> str:
    """``p = 0.013`` or ``p = 2e-04``; ``-`` when there is none."""
    if p is None:
        return "-"
    return f"{p:.2g}" if p >= 0.001 else f"{p:.0e}"


def verdict_line(report: dict[str, Any]) -> str:
    """``verdict: separable (p = 2e-04, <test>; alpha 0.05)`` plus the design effect when it matters."""
    line = (f"verdict: {report['verdict']} (p = {format_p(report['p_value'])} vs chance {_pct(report['chance'])}%, "
            f"one-sided, {report['test']}; alpha {report['alpha']:g})")
    if report.get("design_effect", 1.0) > DEFF_SHOWN:
        lo, hi = report["ci95_iid"]
        line += (f"\ndesign effect {report['design_effect']:.1f}: images of a group are not independent "
                 f"(an i.i.d. interval would say {_pct(lo)}-{_pct(hi)})")
    return line


def format_table(report: dict[str, Any], title: str = "") -> str:
    """A readable block: top-1 (and balanced) with CI, chance, majority, the verdict, per-source recall and the
    confusion matrix."""
    lo, hi = report["ci95"]
    lines = [title] if title else []
    groups = f", {report['n_groups']} groups" if report.get("n_groups", report["n"]) != report["n"] else ""
    lines.append(f"top-1 {_pct(report['top1'])}%  (95% CI {_pct(lo)}-{_pct(hi)}, n={report['n']}{groups})   "
                 f"chance {_pct(report['chance'])}%   majority {_pct(report['majority'])}%")
    if report.get("primary") == "balanced_top1":
        blo, bhi = report["balanced_ci95"]
        lines.append(f"balanced top-1 {_pct(report['balanced_top1'])}%  (95% CI {_pct(blo)}-{_pct(bhi)})  <- primary: "
                     "val counts per source differ")
    if "verdict" in report:
        lines.append(verdict_line(report))
    names = report["sources"]
    w = max(8, *(len(n) for n in names)) + 1
    lines.append("true \\ pred".ljust(w) + "".join(n[:w - 1].rjust(w) for n in names) + "   recall")
    for i, name in enumerate(names):
        rec = report["per_source"][name]
        rec_s = f"{100 * rec:6.1f}%" if rec is not None else "     -"
        lines.append(name.ljust(w) + "".join(str(c).rjust(w) for c in report["confusion"][i]) + "   " + rec_s)
    return "\n".join(lines)

"""Linear probe on cached features (MAE protocol), weight decay chosen on a held-out slice of train.

Protocol (MAE ``main_linprobe.py``): standardise with the train mean/std (= ``BatchNorm1d(affine=False)``),
then one linear layer trained on all of train. Cached features make the problem convex multinomial logistic
regression, so it is solved full-batch with L-BFGS (strong-Wolfe line search: the step length is found, not
tuned, so the only hyper-parameter is the L2 weight decay). The decay is chosen on a seeded held-out slice of
*train*; the model is refit on all of train with it and val is predicted exactly once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from dsbias.errors import UserError
from dsbias.features.store import FeatureSet
from dsbias.probes.labels import check_labels
from dsbias.probes.result import group_notes
from dsbias.stats import classification_report, mean_std

log = logging.getLogger(__name__)

BN_EPS = 1e-6  # MAE's BatchNorm1d(eps=1e-6)
CHUNK = 65536  # rows per step when reading memmapped features
WD_GRID = (1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7)  # strongest first: each fit warm-starts the next (a path)
TOL_GRAD = 1e-4  # stop at max |gradient| of the mean loss <= 1e-4: scikit-learn's default ``tol`` for lbfgs


@dataclass
class Standardizer:
    """Train-set mean and std ``[D]`` (float64 accumulation, BN's biased variance + eps)."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray) -> Standardizer:
        s = np.zeros(x.shape[1]), np.zeros(x.shape[1])
        for start in range(0, x.shape[0], CHUNK):
            c = np.asarray(x[start:start + CHUNK], dtype=np.float64)
            s = s[0] + c.sum(0), s[1] + (c * c).sum(0)
        mean = s[0] / x.shape[0]
        var = np.maximum(s[1] / x.shape[0] - mean * mean, 0.0)
        return cls(mean=mean, std=np.sqrt(var + BN_EPS))

    def apply(self, x: np.ndarray, device: torch.device) -> torch.Tensor:
        """Standardised float32 tensor ``[N, D]`` on ``device``, built chunk by chunk from a memmap."""
        out = torch.empty(x.shape, dtype=torch.float32, device=device)
        mean, std = torch.from_numpy(self.mean).float(), torch.from_numpy(self.std).float()
        for start in range(0, x.shape[0], CHUNK):
            c = torch.from_numpy(np.array(x[start:start + CHUNK], dtype=np.float32))  # writable copy of memmap rows
            out[start:start + c.shape[0]] = ((c - mean) / std).to(device)
        return out


def fit_linear(
    x: torch.Tensor, y: torch.Tensor, num_classes: int, weight_decay: float, max_iter: int = 100,
    init: nn.Linear | None = None,
) -> tuple[nn.Linear, int]:
    """Minimise ``mean CE(x W^T + b, y) + wd/2 ||W||^2`` with full-batch L-BFGS.

    Args:
        x: ``[N, D]`` standardised features.
        y: ``[N]`` int64 labels.
        num_classes: Output width C (explicit: a class may be missing from a slice).
        weight_decay: L2 strength on the weights (not the bias), per sample (sklearn ``C = 1 / (wd * N)``).
        max_iter: L-BFGS iterations.
        init: Start from this layer's weights (warm start along the decay path).

    Returns:
        The fitted ``nn.Linear(D, C)`` and the number of loss evaluations.
    """
    head = nn.Linear(x.shape[1], num_classes).to(x.device)
    with torch.no_grad():
        if init is None:
            head.weight.zero_()  # convex problem: zero init makes the fit independent of the seed
            head.bias.zero_()
        else:
            head.load_state_dict(init.state_dict())
    opt = torch.optim.LBFGS(head.parameters(), lr=1.0, max_iter=max_iter, history_size=20,
                            tolerance_grad=TOL_GRAD, tolerance_change=1e-10, line_search_fn="strong_wolfe")
    evals = 0

    def closure() -> torch.Tensor:
        nonlocal evals
        evals += 1
        opt.zero_grad()
        loss = nn.functional.cross_entropy(head(x), y) + 0.5 * weight_decay * head.weight.square().sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert torch.isfinite(loss), f"linear probe loss is {loss.item()} (wd={weight_decay})"
    return head, evals


@torch.no_grad()
def evaluate(head: nn.Linear, x: torch.Tensor, y: torch.Tensor | None = None) -> tuple[np.ndarray, float]:
    """Predictions ``[N]`` and, when labels are given, the unregularised mean log-loss (else NaN)."""
    logits = head(x)  # [N, C]
    loss = nn.functional.cross_entropy(logits, y).item() if y is not None else float("nan")
    return logits.argmax(1).cpu().numpy(), loss


def sklearn_linear(x: torch.Tensor, y: torch.Tensor, num_classes: int, weight_decay: float,
                   max_iter: int = 1000) -> nn.Linear:
    """The same objective solved by scikit-learn's ``LogisticRegression`` (lbfgs), returned as ``nn.Linear``.

    sklearn minimises ``C * sum CE + ||W||^2 / 2``, i.e. ours with ``C = 1 / (wd * N)``.
    """
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(C=1.0 / (weight_decay * x.shape[0]), max_iter=max_iter)
    clf.fit(x.cpu().numpy(), y.cpu().numpy())
    head = nn.Linear(x.shape[1], num_classes).to(x.device)
    with torch.no_grad():  # sklearn drops classes absent from y; map its rows back by class id
        head.weight.zero_()
        head.bias.fill_(-1e4)
        cls = torch.as_tensor(clf.classes_, device=x.device)
        if len(clf.classes_) == 2:  # binary: one coefficient row for class 1 vs 0
            coef = torch.as_tensor(np.stack([-clf.coef_[0], clf.coef_[0]]) / 2, dtype=torch.float32)
            bias = torch.as_tensor(np.array([-clf.intercept_[0], clf.intercept_[0]]) / 2, dtype=torch.float32)
        else:
            coef = torch.as_tensor(clf.coef_, dtype=torch.float32)
            bias = torch.as_tensor(clf.intercept_, dtype=torch.float32)
        head.weight[cls] = coef.to(x.device)
        head.bias[cls] = bias.to(x.device)
    return head


def holdout_split(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded random (fit, held-out) row indices of train; at least one row on each side."""
    if n < 2:
        raise UserError(f"train has {n} row(s): the held-out slice for choosing weight decay needs >= 2")
    perm = np.random.default_rng(seed).permutation(n)
    n_hold = min(max(1, round(fraction * n)), n - 1)
    return np.sort(perm[n_hold:]), np.sort(perm[:n_hold])


def probe_once(
    x: torch.Tensor, y: torch.Tensor, x_val: torch.Tensor, num_classes: int, seed: int,
    grid: Sequence[float] = WD_GRID, holdout: float = 0.15, max_iter: int = 100, sklearn: bool = False,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Choose weight decay on a held-out slice of train, refit on all of train, predict val once.

    Args:
        x: ``[N, D]`` standardised train features; ``y``: ``[N]`` labels.
        x_val: ``[M, D]`` standardised val features (its labels never enter this function).
        num_classes: Number of sources.
        seed: Seeds the held-out slice.
        grid: Candidate weight decays.
        holdout: Fraction of train held out for the choice.
        max_iter: L-BFGS iterations per fit.
        sklearn: Solve with scikit-learn instead of torch L-BFGS (baseline).

    Returns:
        Val predictions ``[M]`` and a record of the choice (``weight_decay``, ``selection``, ``fit_seconds``).
    """
    t0 = time.perf_counter()
    fit_rows, hold_rows = (torch.as_tensor(r, device=x.device) for r in holdout_split(x.shape[0], holdout, seed))
    x_fit, y_fit, x_hold, y_hold = x[fit_rows], y[fit_rows], x[hold_rows], y[hold_rows]
    selection, heads, head = [], {}, None
    for wd in sorted(grid, reverse=True):
        if sklearn:
            head, evals = sklearn_linear(x_fit, y_fit, num_classes, wd), None
        else:
            head, evals = fit_linear(x_fit, y_fit, num_classes, wd, max_iter, init=head)
        pred, loss = evaluate(head, x_hold, y_hold)
        acc = float((pred == y_hold.cpu().numpy()).mean())
        selection.append({"weight_decay": wd, "holdout_top1": acc, "holdout_loss": loss, "evals": evals})
        heads[wd] = head
    # Best held-out accuracy; ties go to the lower held-out log-loss.
    best = min(selection, key=lambda r: (-r["holdout_top1"], r["holdout_loss"]))
    wd = best["weight_decay"]
    if sklearn:
        head = sklearn_linear(x, y, num_classes, wd)
    else:
        head, _ = fit_linear(x, y, num_classes, wd, max_iter, init=heads[wd])
    pred, _ = evaluate(head, x_val)  # the one time val is touched
    return pred, {"seed": seed, "weight_decay": wd, "selection": selection,
                  "fit_seconds": round(time.perf_counter() - t0, 3)}


def resolve_device(requested: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cuda`` without a GPU is an error, not a fallback."""
    if requested == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: torch sees no CUDA GPU")
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(requested)


def run_linear(
    fs: FeatureSet, seeds: int = 1, seed: int = 0, grid: Sequence[float] = WD_GRID, holdout: float = 0.15,
    max_iter: int = 100, device: str = "auto", sklearn: bool = False,
) -> tuple[dict[str, Any], np.ndarray]:
    """Linear probe of val from train; repeated over ``seeds`` held-out slices.

    Returns:
        A JSON-ready dict (the first seed's ``classification_report`` fields plus ``seeds`` (per-seed top-1,
        mean, std, chosen decays), ``runs`` (selection records), ``backend``, ``notes``, ``n_train``,
        ``n_val``, ``warnings``) and the first seed's val predictions ``[M]``.

    Raises:
        FeatureError: Fewer than two sources have rows in a split (:func:`~dsbias.probes.labels.check_labels`).
    """
    if seeds < 1:
        raise UserError(f"--seeds {seeds}: must be >= 1")
    warnings = check_labels(fs)
    dev = resolve_device(device)
    num_classes = len(fs.sources)
    log.info("linear: %d train x %d val, d=%d, %s on %s, wd grid %s, %d seed(s)", len(fs.train), len(fs.val),
             fs.dim, "sklearn" if sklearn else "torch L-BFGS", dev, list(grid), seeds)
    std = Standardizer.fit(fs.train.features)
    x, x_val = std.apply(fs.train.features, dev), std.apply(fs.val.features, dev)
    y = torch.as_tensor(np.array(fs.train.labels), device=dev)  # a copy: memmapped labels are read-only
    reports, runs, preds = [], [], []
    for s in range(seed, seed + seeds):
        pred, run = probe_once(x, y, x_val, num_classes, s, grid, holdout, max_iter, sklearn)
        rep = classification_report(fs.val.labels, pred, fs.sources, fs.train.labels, groups=fs.val.groups,
                                    seed=s)
        run["top1"] = rep["top1"]
        preds.append(pred)
        reports.append(rep)
        runs.append(run)
        log.info("linear seed %d: wd %.0e, top-1 %.2f%% (%.1fs)", s, run["weight_decay"], 100 * rep["top1"],
                 run["fit_seconds"])
    mean, sd = mean_std([r["top1"] for r in reports])
    return ({**reports[0], "seeds": {"n": seeds, "top1": [r["top1"] for r in reports], "mean": mean, "std": sd,
                                     "weight_decay": [r["weight_decay"] for r in runs]},
             "runs": runs, "backend": ("sklearn" if sklearn else "torch-lbfgs") + f"@{dev.type}",
             "notes": [*group_notes(fs), *reports[0]["notes"]], "n_train": len(fs.train), "n_val": len(fs.val),
             "warnings": warnings},
            preds[0])

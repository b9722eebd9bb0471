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
from typing import Any

import numpy as np
import torch
from torch import nn

from dsbias.errors import UserError
from dsbias.features.store import FeatureSet
from dsbias.probes.labels import check_labels
from dsbias.probes.result import group_notes
from dsbias.probes.rows import Standardizer, StreamedRows, batches
from dsbias.stats import classification_report, mean_std

log = logging.getLogger(__name__)

# Above this many bytes of float32 train features, the fit streams them from the file (StreamedRows) instead of
# holding them in RAM: 2 GiB is ~700k rows at d=768, well inside a laptop; the streamed fit reads the file once
# per loss evaluation (page cache permitting), so it is slower, but its memory is one block.
STREAM_BYTES = 2 << 30
WD_GRID = (1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7)  # strongest first: each fit warm-starts the next (a path)
TOL_GRAD = 1e-4  # stop at max |gradient| of the mean loss <= 1e-4: scikit-learn's default ``tol`` for lbfgs


Rows = torch.Tensor | StreamedRows  # standardised train rows: in RAM, or read block by block


def take(x: Rows, rows: torch.Tensor) -> Rows:
    """``x[rows]`` for either kind of rows (``rows`` sorted)."""
    return x.subset(rows) if isinstance(x, StreamedRows) else x[rows]


def fit_linear(
    x: Rows, y: torch.Tensor, num_classes: int, weight_decay: float, max_iter: int = 100,
    init: nn.Linear | None = None,
) -> tuple[nn.Linear, int]:
    """Minimise ``mean CE(x W^T + b, y) + wd/2 ||W||^2`` with full-batch L-BFGS.

    Args:
        x: ``[N, D]`` standardised features, a tensor or :class:`StreamedRows` (then the loss and gradient are
            summed block by block inside the L-BFGS closure: the same objective, one block in memory).
        y: ``[N]`` int64 labels.
        num_classes: Output width C (explicit: a class may be missing from a slice).
        weight_decay: L2 strength on the weights (not the bias), per sample (sklearn ``C = 1 / (wd * N)``).
        max_iter: L-BFGS iterations.
        init: Start from this layer's weights (warm start along the decay path).

    Returns:
        The fitted ``nn.Linear(D, C)`` and the number of loss evaluations.
    """
    n = x.shape[0]
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
        if isinstance(x, torch.Tensor):
            loss = nn.functional.cross_entropy(head(x), y) + 0.5 * weight_decay * head.weight.square().sum()
            loss.backward()
            return loss
        total = 0.5 * weight_decay * head.weight.square().sum()
        total.backward()
        total = total.detach()
        for lo, xb in x.blocks():  # mean CE = sum over blocks of (block's summed CE) / N; gradients accumulate
            part = nn.functional.cross_entropy(head(xb), y[lo:lo + xb.shape[0]], reduction="sum") / n
            part.backward()
            total = total + part.detach()
        return total

    loss = opt.step(closure)
    assert torch.isfinite(loss), f"linear probe loss is {loss.item()} (wd={weight_decay})"
    return head, evals


@torch.no_grad()
def evaluate(head: nn.Linear, x: Rows, y: torch.Tensor | None = None) -> tuple[np.ndarray, float]:
    """Predictions ``[N]`` and, when labels are given, the unregularised mean log-loss (else NaN)."""
    if isinstance(x, torch.Tensor):
        logits = head(x)  # [N, C]
        loss = nn.functional.cross_entropy(logits, y).item() if y is not None else float("nan")
        return logits.argmax(1).cpu().numpy(), loss
    preds, loss = [], 0.0
    for lo, xb in batches(x):
        logits = head(xb)  # [B, C]
        preds.append(logits.argmax(1).cpu().numpy())
        if y is not None:
            loss += nn.functional.cross_entropy(logits, y[lo:lo + xb.shape[0]], reduction="sum").item()
    return np.concatenate(preds), loss / x.shape[0] if y is not None else float("nan")


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
    x: Rows, y: torch.Tensor, x_val: Rows, num_classes: int, seed: int,
    grid: Sequence[float] = WD_GRID, holdout: float = 0.15, max_iter: int = 100, sklearn: bool = False,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Choose weight decay on a held-out slice of train, refit on all of train, predict val once.

    Args:
        x: ``[N, D]`` standardised train features (tensor or :class:`StreamedRows`); ``y``: ``[N]`` labels.
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
    x_fit, y_fit, x_hold, y_hold = take(x, fit_rows), y[fit_rows], take(x, hold_rows), y[hold_rows]
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


def rows_for(features: np.ndarray, std: Standardizer, dev: torch.device, stream: bool | None,
             sklearn: bool) -> Rows:
    """The standardised rows of ``features`` in RAM, or streamed (:class:`StreamedRows`) when asked or too big."""
    if stream is None:
        stream = features.shape[0] * features.shape[1] * 4 > STREAM_BYTES
        if stream:
            log.info("linear: %d x %d features streamed from file (> %d GiB as float32)", *features.shape,
                     STREAM_BYTES >> 30)
    if stream and sklearn:
        raise UserError("--sklearn needs the features in RAM; drop --sklearn or --stream")
    return StreamedRows(features, std, dev) if stream else std.apply(features, dev)


def run_linear(
    fs: FeatureSet, seeds: int = 1, seed: int = 0, grid: Sequence[float] = WD_GRID, holdout: float = 0.15,
    max_iter: int = 100, device: str = "auto", sklearn: bool = False, stream: bool | None = None,
) -> tuple[dict[str, Any], np.ndarray]:
    """Linear probe of val from train; repeated over ``seeds`` held-out slices.

    ``stream``: read the standardised features from their files on every pass (bounded memory) instead of holding
    them in RAM; ``None`` streams when train is above :data:`STREAM_BYTES` as float32.

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
    x, x_val = rows_for(fs.train.features, std, dev, stream, sklearn), rows_for(fs.val.features, std, dev, stream,
                                                                                sklearn)
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

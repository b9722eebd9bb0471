"""Study report: ``results.csv``, ``report.md`` and the PNG figures it shows (matplotlib only)."""

from __future__ import annotations

import csv
import json
import math
import platform
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from dsbias import paper
from dsbias.runs import JsonlLog, atomic_path, write_text
from dsbias.stats import mean_std, wilson_ci

CSV_COLUMNS = ["study", "run", "cell", "label", "sources", "method", "probe", "transform", "seed", "top1", "ci_low",
               "ci_high", "chance", "majority", "train_top1", "n_val", "n_train", "x", "arch", "params", "paper",
               "loss_decreased", "per_source", "confusion", "source_names"]


def paper_value(row: dict[str, Any]) -> float | None:
    """The published accuracy (percent) for a row's setting, when its sources are the paper's datasets."""
    names = json.loads(row["source_names"])
    study = row["study"]
    if "baseline" in str(row["probe"]):
        return None
    if study == "combos":
        return paper.COMBOS.get(paper.combo_key(names) or "")
    if study == "pseudo":
        return None  # Table 6 reports train accuracy; see the train column
    if not paper.is_ycd(names):
        return None
    if study == "archs":
        return paper.ARCHS.get(row["arch"])
    if study == "model_size":
        return paper.MODEL_SIZE.get(row["arch"])
    if study == "data_size":
        return paper.AUGMENT.get(("full", row["n_train"]))
    if study == "augment":
        return paper.AUGMENT.get((row["label"], row["n_train"]))
    if study == "corrupt":
        return paper.CORRUPT.get(row["label"])
    if study == "ssl":
        return paper.SSL.get((row["method"], row["probe"]))
    if study == "anatomy":
        from dsbias.anatomy.paper import ZYL_YCD

        hit = ZYL_YCD.get("" if row["transform"] == "reference" else row["transform"])
        return hit[0] if hit else None
    return None


def write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({**r, "paper": paper_value(r)})


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Group seeds: one entry per (cell, probe) with mean, std, pooled 95% CI and the paper's value."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[(r["cell"], r["probe"])].append(r)
    out = []
    for rs in groups.values():
        m, s = mean_std([r["top1"] for r in rs])
        n = sum(int(r["n_val"] or 0) for r in rs)
        correct = sum(round(r["top1"] * int(r["n_val"] or 0)) for r in rs)
        lo, hi = wilson_ci(correct, n)
        train = [r["train_top1"] for r in rs if r.get("train_top1") is not None]
        out.append({**rs[0], "mean": m, "std": s, "seeds": len(rs), "pooled_ci": (lo, hi),
                    "train_mean": float(np.mean(train)) if train else None, "paper": paper_value(rs[0])})
    return out


def _pct(x: float | None) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}"


def study_table(entries: list[dict[str, Any]]) -> str:
    """A markdown table in the paper's layout (one row per setting and probe)."""
    show_train = any(e["train_mean"] is not None for e in entries)
    head = ["setting", "sources", "probe", "top-1 % (mean ± std)", "95% CI", "chance", "majority"]
    head += ["train %"] if show_train else []
    head += ["paper %", "Δ"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for e in entries:
        lo, hi = e["pooled_ci"]
        p = e["paper"]
        delta = f"{100 * e['mean'] - p:+.1f}" if p is not None else "-"
        spread = f" ± {_pct(e['std'])}" if e["seeds"] > 1 else ""
        cells = [e["label"], e["sources"], e["probe"], f"{_pct(e['mean'])}{spread} (n={e['seeds']})",
                 f"{_pct(lo)}–{_pct(hi)}", _pct(e["chance"]), _pct(e["majority"])]
        cells += [_pct(e["train_mean"])] if show_train else []
        cells += [f"{p:.1f}" if p is not None else "-", delta]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------------
# Figures
# ----------------------------------------------------------------------------------------------------------


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> None:
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    _plt().close(fig)


def plot_confusions(entries: list[dict[str, Any]], path: Path) -> None:
    """Row-normalised confusion heat maps, one panel per setting (first seed), source names on the axes."""
    plt = _plt()
    n = len(entries)
    cols = min(n, 4)
    fig, axes = plt.subplots(math.ceil(n / cols), cols, figsize=(3.4 * cols, 3.2 * math.ceil(n / cols)),
                             squeeze=False)
    for ax in axes.flat[n:]:
        ax.axis("off")
    for ax, e in zip(axes.flat, entries):
        conf = np.array(json.loads(e["confusion"]), dtype=float)
        names = json.loads(e["source_names"])
        norm = conf / np.maximum(conf.sum(1, keepdims=True), 1)
        ax.imshow(norm, vmin=0, vmax=1, cmap="Blues")
        for i, j in np.ndindex(norm.shape):
            ax.text(j, i, f"{100 * norm[i, j]:.0f}", ha="center", va="center", fontsize=7,
                    color="white" if norm[i, j] > 0.6 else "black")
        ax.set_xticks(range(len(names)), names, rotation=45, fontsize=7)
        ax.set_yticks(range(len(names)), names, fontsize=7)
        ax.set_title(f"{e['label']} ({e['probe']}): {100 * e['mean']:.1f}%", fontsize=8)
        ax.set_xlabel("predicted", fontsize=7)
    _save(fig, path)


def plot_curve(entries: list[dict[str, Any]], xkey: str, xlabel: str, path: Path) -> None:
    """Accuracy vs x (log scale) with the pooled 95% CI band and the chance line."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for probe in sorted({e["probe"] for e in entries}):
        es = sorted((e for e in entries if e["probe"] == probe and e.get(xkey)), key=lambda e: float(e[xkey]))
        if not es:
            continue
        x = [float(e[xkey]) for e in es]
        ax.plot(x, [100 * e["mean"] for e in es], "o-", label=probe)
        ax.fill_between(x, [100 * e["pooled_ci"][0] for e in es], [100 * e["pooled_ci"][1] for e in es], alpha=0.2)
    ax.axhline(100 * entries[0]["chance"], ls="--", c="gray", label="chance")
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("val top-1 (%)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    _save(fig, path)


def plot_training_curves(entries: list[dict[str, Any]], out: Path, path: Path) -> bool:
    """Training loss vs step for every setting (first seed); False if no run logged a loss."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    any_curve = False
    for e in entries:
        recs = [r for r in JsonlLog(out / "runs" / e["run"] / "log.jsonl").read() if "loss" in r and "step" in r]
        if recs:
            any_curve = True
            ax.plot([r["step"] for r in recs], [r["loss"] for r in recs], label=f"{e['label']}", lw=1)
    ax.set_xlabel("step")
    ax.set_ylabel("train loss")
    if any_curve:
        ax.legend(fontsize=7, ncol=2)
        _save(fig, path)
    else:
        _plt().close(fig)
    return any_curve


def plot_confident_images(rdir: Path, path: Path, n: int = 4) -> bool:
    """Per source, the val images the classifier names most and least confidently (p of the true source).

    Needs the run's ``val_probs.npy`` (written by ``probe/classify.py``); False when it is absent.
    """
    if not (rdir / "val_probs.npy").is_file():
        return False
    from dsbias.anatomy.leakage import confidence_extremes
    from dsbias.config import load_config
    from dsbias.data.manifest import Manifest
    from dsbias.data.sources import create_sources

    manifest = Manifest.load(rdir / "manifest.jsonl")
    probs, index = np.load(rdir / "val_probs.npy"), np.load(rdir / "val_index.npy")
    rows = [manifest.rows[int(i)] for i in index]
    labels = np.array([r["source_id"] for r in rows])
    ext = confidence_extremes(probs, labels, rows, manifest.sources, n=n)
    readers = create_sources(load_config(rdir / "config.yaml").data)
    plt = _plt()
    names = manifest.sources
    fig, axes = plt.subplots(len(names), 2 * n, figsize=(1.5 * 2 * n, 1.7 * len(names)), squeeze=False)
    for r, name in enumerate(names):
        for c, (kind, entry) in enumerate([("most", e) for e in ext[name]["most"][:n]]
                                          + [("least", e) for e in ext[name]["least"][:n]]):
            ax = axes[r, c]
            row = manifest.rows[entry["index"]]
            ax.imshow(readers[row["origin"]].read(row["item"])[0])
            ax.set_title(f"{'+' if kind == 'most' else '-'} p={entry['p_true']:.2f}", fontsize=6,
                         color="green" if entry["predicted"] == name else "red")
            ax.axis("off")
        axes[r, 0].text(-0.1, 0.5, name, transform=axes[r, 0].transAxes, ha="right", va="center", fontsize=8)
    fig.suptitle(f"{rdir.name}: left {n} most, right {n} least confidently named val images per source "
                 "(green: predicted right)", fontsize=8)
    _save(fig, path)
    return True


def write_report(name: str, rows: list[dict[str, Any]], out: Path, command: str) -> Path:
    """Write ``results.csv``, the figures and ``report.md`` for the collected rows."""
    out.mkdir(parents=True, exist_ok=True)
    fig_dir = out / "figures"
    write_csv(rows, out / "results.csv")
    entries = summarise(rows)
    md = [f"# dsbias study report: {name}", "",
          f"- command: `{command}`",
          f"- machine: {platform.node()} ({platform.platform()}, {platform.processor() or 'cpu'}); "
          f"written {time.strftime('%Y-%m-%d %H:%M')}",
          "- top-1 is val accuracy; mean ± std over seeds (each seed resamples the data and the init); the 95% CI "
          "is Wilson's, pooled over seeds' val predictions; chance = 1/S; majority = always the most frequent "
          "train source. The paper column is Liu & He's value where the sources are its datasets by name.", ""]
    for study in dict.fromkeys(e["study"] for e in entries):
        es = [e for e in entries if e["study"] == study]
        md += [f"## {study}", "", study_table(es), ""]
        plot_confusions(es, fig_dir / f"{study}_confusion.png")
        md += [f"![confusion matrices]({Path('figures') / f'{study}_confusion.png'})", ""]
        if study == "data_size":
            plot_curve(es, "x", "train images per source", fig_dir / "data_size.png")
            md += ["![accuracy vs data size](figures/data_size.png)", ""]
        if study == "model_size" and any(e.get("params") for e in es):
            plot_curve(es, "params", "parameters", fig_dir / "model_size.png")
            md += ["![accuracy vs model size](figures/model_size.png)", ""]
        if plot_training_curves(es, out, fig_dir / f"{study}_curves.png"):
            md += [f"![training curves](figures/{study}_curves.png)", ""]
        first = next((e for e in es if e["probe"] == "end-to-end"), None)
        if first is not None and plot_confident_images(out / "runs" / first["run"], fig_dir / f"{study}_images.png"):
            md += [f"Most and least confidently named val images ({first['label']}):", "",
                   f"![identifiable images](figures/{study}_images.png)", ""]
        if study == "pseudo":
            flagged = [e["label"] for e in es if e.get("loss_decreased") is False]
            md += [f"Runs whose training loss did not decrease (the paper's 'fail'): {', '.join(flagged) or 'none'}.",
                   ""]
    write_text(out / "report.md", "\n".join(md) + "\n")
    return out / "report.md"

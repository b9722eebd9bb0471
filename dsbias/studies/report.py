"""Study report: ``results.csv``, ``report.md`` and the figures it shows (:mod:`dsbias.studies.figures`)."""

from __future__ import annotations

import csv
import math
import platform
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from dsbias.runs import atomic_path, write_text
from dsbias.stats import mean_std, wilson_ci
from dsbias.studies.catalogue import STUDIES, paper_value
from dsbias.studies.figures import plot_confident_images, plot_confusions, plot_training_curves

CSV_COLUMNS = ["study", "run", "cell", "label", "sources", "method", "probe", "transform", "seed", "top1", "ci_low",
               "ci_high", "chance", "majority", "train_top1", "n_val", "n_train", "x", "arch", "params", "paper",
               "loss_decreased", "backbone", "init", "per_source", "confusion", "source_names",
               "best_val_top1", "best_val_step"]  # the best logged val eval: chosen on val (top1 is the final one)


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
        if study in STUDIES:
            md += STUDIES[study].section(es, fig_dir)
        if plot_training_curves(es, out, fig_dir / f"{study}_curves.png"):
            md += [f"![training curves](figures/{study}_curves.png)", ""]
        first = next((e for e in es if e["probe"] == "end-to-end"), None)
        if first is not None and plot_confident_images(out / "runs" / first["run"], fig_dir / f"{study}_images.png"):
            md += [f"Most and least confidently named val images ({first['label']}):", "",
                   f"![identifiable images](figures/{study}_images.png)", ""]
    write_text(out / "report.md", "\n".join(md) + "\n")
    return out / "report.md"

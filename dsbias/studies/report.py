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
from dsbias.stats import DEFF_SHOWN, format_p, holm, mean_std, verdict, wilson_ci
from dsbias.studies.catalogue import STUDIES, paper_value
from dsbias.studies.figures import plot_confident_images, plot_confusions, plot_training_curves

CSV_COLUMNS = ["study", "run", "cell", "label", "sources", "method", "probe", "transform", "seed", "top1", "ci_low",
               "ci_high", "primary", "value", "value_ci_low", "value_ci_high", "balanced_top1", "p_value", "p_holm",
               "verdict", "design_effect", "n_groups", "chance", "majority", "train_top1", "n_val", "n_train", "x",
               "arch", "params", "nmi", "init_top1", "gain_over_init", "gain_ci_low", "gain_ci_high", "underfit",
               "paper", "loss_decreased", "backbone", "init", "per_source", "confusion", "source_names",
               "best_val_top1", "best_val_step"]  # the best logged val eval: chosen on val (top1 is the final one)


def holm_by_study(items: list[dict[str, Any]], key: str) -> list[float | None]:
    """Holm-adjusted ``items[i][key]`` p-values, each study one family (a study's table is one set of claims)."""
    out: list[float | None] = [None] * len(items)
    for study in dict.fromkeys(r["study"] for r in items):
        idx = [i for i, r in enumerate(items) if r["study"] == study]
        for i, p in zip(idx, holm([items[i].get(key) for i in idx])):
            out[i] = p
    return out


def write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    """One line per (run, probe); ``p_holm`` and ``verdict`` are corrected across the study's lines."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        w.writeheader()
        for r, p in zip(rows, holm_by_study(rows, "p_value")):
            w.writerow({**r, "paper": paper_value(r), "p_holm": p, "verdict": verdict(p)})


def pooled_ci(rs: list[dict[str, Any]]) -> tuple[float, float]:
    """One run: its own 95% interval of the primary metric (group-aware). Several seeds: Wilson's over their
    pooled val images, with the count divided by the mean design effect (the seeds' groups are as correlated
    as each run's)."""
    if len(rs) == 1:
        return rs[0]["value_ci_low"], rs[0]["value_ci_high"]
    n = sum(int(r["n_val"] or 0) for r in rs)
    value = sum(r["value"] * int(r["n_val"] or 0) for r in rs) / max(n, 1)
    n_eff = n / max(1.0, float(np.mean([r.get("design_effect") or 1.0 for r in rs])))
    return wilson_ci(value * n_eff, n_eff)


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Group seeds: one entry per (cell, probe) with mean, std, pooled 95% CI, a p-value (the largest over seeds:
    "separable" then means separable in every seed, a valid test whatever the seeds share), Holm-adjusted across
    the study's entries, and the paper's value."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[(r["cell"], r["probe"])].append(r)
    out = []
    for rs in groups.values():
        m, s = mean_std([r["value"] for r in rs])
        ps = [r.get("p_value") for r in rs]
        train = [r["train_top1"] for r in rs if r.get("train_top1") is not None]
        gains = [r["gain_over_init"] for r in rs if r.get("gain_over_init") is not None]
        out.append({**rs[0], "mean": m, "std": s, "seeds": len(rs), "pooled_ci": pooled_ci(rs),
                    "p_max": max(ps) if None not in ps else None,
                    "deff": float(np.mean([r.get("design_effect") or 1.0 for r in rs])),
                    "underfit_any": any(r.get("underfit") for r in rs),
                    "gain_mean": float(np.mean(gains)) if gains else None,
                    "train_mean": float(np.mean(train)) if train else None, "paper": paper_value(rs[0])})
    for e, p in zip(out, holm_by_study(out, "p_max")):
        e["p_holm"], e["verdict"] = p, verdict(p)
    return out


def _pct(x: float | None) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}"


def _gain(e: dict[str, Any]) -> str:
    if e["gain_mean"] is None:
        return "-"
    if e["seeds"] == 1:
        return f"{100 * e['gain_mean']:+.1f} ({100 * e['gain_ci_low']:+.1f} to {100 * e['gain_ci_high']:+.1f})"
    return f"{100 * e['gain_mean']:+.1f} (mean of {e['seeds']})"


def _probe(e: dict[str, Any]) -> str:
    probe = e["probe"]
    if e.get("nmi") is not None:
        probe += f" (purity; NMI {e['nmi']:.3f})"
    return probe + (" [balanced]" if e.get("primary") == "balanced_top1" else "")


def study_table(entries: list[dict[str, Any]]) -> str:
    """A markdown table in the paper's layout (one row per setting and probe), with the verdict."""
    show_train = any(e["train_mean"] is not None for e in entries)
    show_gain = any(e["gain_mean"] is not None for e in entries)
    head = ["setting", "sources", "probe", "top-1 % (mean ± std)", "95% CI", "p (Holm)", "verdict", "chance",
            "majority"]
    head += ["train %"] if show_train else []
    head += ["gain over init, pt (95% CI)"] if show_gain else []
    head += ["paper %", "Δ"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for e in entries:
        lo, hi = e["pooled_ci"]
        p = e["paper"]
        delta = f"{100 * e['mean'] - p:+.1f}" if p is not None else "-"
        spread = f" ± {_pct(e['std'])}" if e["seeds"] > 1 else ""
        cells = [e["label"], e["sources"], _probe(e), f"{_pct(e['mean'])}{spread} (n={e['seeds']})",
                 f"{_pct(lo)}–{_pct(hi)}", format_p(e["p_holm"]),
                 e["verdict"] + (" (underfit)" if e["underfit_any"] else ""), _pct(e["chance"]), _pct(e["majority"])]
        cells += [_pct(e["train_mean"])] if show_train else []
        cells += [_gain(e)] if show_gain else []
        cells += [f"{p:.1f}" if p is not None else "-", delta]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def table_notes(entries: list[dict[str, Any]]) -> list[str]:
    """Lines under a table: design effects that widen the intervals, runs that are likely underfit."""
    lines = []
    wide = [f"{e['label']} {e['probe']} ({e['deff']:.1f})" for e in entries if e["deff"] > DEFF_SHOWN]
    if wide:
        lines.append("Design effect above 1.5 (images of a group are not independent; the intervals resample "
                     "whole groups): " + ", ".join(wide) + ".")
    under = [e["label"] for e in entries if e["underfit_any"]]
    if under:
        lines.append("Likely underfit, so the number understates separability (train accuracy close to val and "
                     "far from 100%, or the loss still falling; see the run's metrics.json warnings): "
                     + ", ".join(under) + ".")
    return [x for line in lines for x in (line, "")]


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
          "- top-1 is val accuracy ([balanced]: mean per-source recall, where the val counts per source differ; "
          "clustering rows: purity, with its label-permuted null as chance); mean ± std over seeds (each seed "
          "resamples the data and the init). The 95% CI resamples val groups (Wilson's with one image per "
          "group); over several seeds it is pooled. p is the one-sided test against chance (the largest over "
          "seeds), Holm-corrected across the rows of the study; verdict: separable when p < 0.05, else not shown. "
          "majority = always the most frequent train source. gain over init = the probe on the trained features "
          "minus the same probe on the same backbone at initialisation, on the same val images. The paper column "
          "is Liu & He's value where the sources are its datasets by name (docs/statistics.md).", ""]
    for study in dict.fromkeys(e["study"] for e in entries):
        es = [e for e in entries if e["study"] == study]
        md += [f"## {study}", "", study_table(es), "", *table_notes(es)]
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

"""``report.html`` of one run dir (a classifier run, a pretraining run with its probes, a frozen backbone's
features): the verdict, every result with its interval, per-source recall and the confusion table, the most and
least confidently named images, cross-source near duplicates, the embedding map, training curves, provenance.

Everything is read from the files the commands wrote (:mod:`dsbias.report.rundata`); sections whose input is
missing say which command makes it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from dsbias.audit.leakage import confidence_extremes
from dsbias.report import html as h
from dsbias.report.images import embedding_map, thumbnail, training_curves
from dsbias.report.rundata import RunData, load_run
from dsbias.report.verdict import pct, run_verdict, score_of
from dsbias.stats import format_p

logger = logging.getLogger(__name__)
PAGE = "report.html"
PER_SOURCE = 4  # most / least confidently named images shown per source
PAIRS = 8  # near-duplicate pairs shown


def _row(name: str, res: dict[str, Any]) -> list[Any]:
    s = score_of(res)
    gain = res.get("gain_over_init")
    gain_s = f"{100 * gain:+.1f} ({100 * res['gain_ci95'][0]:+.1f} to {100 * res['gain_ci95'][1]:+.1f})" if (
        gain is not None) else "-"
    return [name, s.metric, pct(s.value), f"{pct(s.ci[0])} – {pct(s.ci[1])}", format_p(s.p_value),
            h.Raw(f'<span class="{"ok" if s.verdict == "separable" else "muted"}">{h.esc(s.verdict)}</span>'),
            pct(s.chance), pct(s.majority), pct(res.get("train_top1")), gain_s, s.n if s.n is not None else "-"]


def results_section(d: RunData) -> h.Section:
    rows = []
    for name, res in d.results.items():
        rows.append(_row(name, res))
        if isinstance(res.get("init"), dict) and "top1" in res["init"]:
            rows.append(_row(f"{name} at random init", {**res["init"], "n": res["init"].get("n")}))
    for key, label in (("metadata", "metadata-only baseline"), ("tiny", "tiny-image baseline")):
        if isinstance((d.baselines or {}).get(key), dict):
            rows.append(_row(label, d.baselines[key]))
    sec = h.Section("results", "Results")
    sec.add(h.table(["result", "metric", "value", "95% CI", "p", "verdict", "chance", "majority", "train top-1",
                     "gain over init, pt (95% CI)", "val images"], rows, id="results-table"))
    sec.add(h.p("Click a header to sort. The 95% interval resamples val groups (one image per group without "
                "groups); p is the one-sided test against chance; majority = always naming the most frequent "
                "train source; gain over init = the same probe on the same network before training, paired on "
                "the same val images (docs/statistics.md).", "muted"))
    if d.baselines is None:
        sec.add(h.p(h.Raw("Shortcut baselines not run: " + h.code(f"python tools/baselines.py --run {d.root}"))))
    return sec


def recall_section(d: RunData) -> h.Section:
    name, res = d.headline
    sec = h.Section("per-source", f"Per-source recall and confusion ({name})")
    return sec.add(h.confusion_table(res), h.p("Rows: the true source; cells: val images and the share of the row; "
                                               "recall = the diagonal share.", "muted"))


def _card(d: RunData, index: int, caption: str) -> h.Raw:
    row = d.rows[index] if d.rows is not None else None
    img = d.image(index)
    pic = h.img_png(thumbnail(img), row["item"] if row else str(index), cls="") if img is not None else ""
    name = row["item"] if row else f"row {index}"
    return h.Raw(f'<div class="card">{pic}<div>{h.esc(caption)}</div><div class="muted">{h.esc(name)}</div></div>')


def images_section(d: RunData) -> h.Section:
    sec = h.Section("images", "Most and least confidently named images")
    if d.val_probs is None or d.rows is None:
        return sec.add(h.p("Per-image val probabilities come from the end-to-end classifier (probe/classify.py "
                           "writes val_probs.npy); this run has none.", "muted"))
    probs, index = d.val_probs
    rows = [d.rows[int(i)] for i in index]
    labels = np.array([r["source_id"] for r in rows])
    ext = confidence_extremes(probs, labels, rows, d.sources, n=PER_SOURCE)
    for source, lists in ext.items():
        blocks = []
        for kind in ("most", "least"):
            cards = [_card(d, e["index"], f"p={e['p_true']:.2f}" + ("" if e["predicted"] == source
                                                                   else f" → {e['predicted']}"))
                     for e in lists[kind]]
            blocks.append(f"<div><div class='muted'>{kind} confident</div><div class='grid'>{''.join(cards)}</div>"
                          "</div>")
        sec.add(h.Raw(f"<h3>{h.esc(source)}</h3><div class='src'>{''.join(blocks)}</div>"))
    return sec.add(h.p("p = the classifier's probability of the true source; → names the source it predicted "
                       "instead.", "muted"))


def leakage_section(d: RunData) -> h.Section:
    sec = h.Section("leakage", "Near duplicates across sources and splits")
    if d.leakage is None:
        where = d.features_root or d.root
        return sec.add(h.p(h.Raw("Leakage audit not run: " + h.code(f"python tools/leakage.py --features {where}"))))
    c = d.leakage["counts"]
    sec.add(h.p(f"Pairs at cosine >= {d.leakage['threshold']} among each image's {d.leakage['k']} nearest neighbours "
                f"({d.leakage['n']} images): train-val {c['train-val']}, cross-source {c['cross-source']}, "
                f"within-source {c['within-source']}."))
    pairs = [pr for pr in d.leakage.get("top_pairs", []) if pr["kind"] != "within-source"][:PAIRS]
    for pr in pairs:
        a, b = pr["a"], pr["b"]
        ca = _card(d, a["index"], f"{a['split']}/{a['source']}")
        cb = _card(d, b["index"], f"{b['split']}/{b['source']}")
        sec.add(h.Raw(f'<div class="pair">{ca}{cb}<div>{h.esc(pr["kind"])}<br>cosine {pr["cosine"]:.4f}</div></div>'))
    if not pairs:
        sec.add(h.p("No cross-source or train-val pairs above the threshold.", "muted"))
    return sec


def embedding_section(d: RunData) -> h.Section:
    sec = h.Section("embedding", "Embedding map of the val features")
    if d.features is None:
        return sec.add(h.p(h.Raw("No features in this run: " + h.code(f"python ssl/extract.py --run {d.root}")),
                           "muted"))
    fs = d.features
    sec.add(h.img_png(embedding_map(fs.val.features, fs.val.labels, fs.sources), "PCA map of the val features"))
    return sec.add(h.p(f"The {len(fs.val)} val features ({fs.dim}-d, standardised) on their first two principal "
                       "components (scikit-learn PCA), coloured by source; at most 3000 points.", "muted"))


def curves_section(d: RunData) -> h.Section:
    sec = h.Section("curves", "Training curves")
    png = training_curves(d.records, d.headline[1].get("chance"))
    if png is None:
        return sec.add(h.p("No training log (log.jsonl) in this run: a frozen backbone is not trained.", "muted"))
    return sec.add(h.img_png(png, "training loss and val top-1 by step"))


def write_run_page(root: str | Path) -> Path:
    """Write ``report.html`` in run dir ``root`` (a features dir inside a run: the run's own page)."""
    d = load_run(root)
    name, res = d.headline
    sections = [results_section(d), recall_section(d), images_section(d), leakage_section(d), embedding_section(d),
                curves_section(d)]
    sub = f"{d.kind}: {len(d.sources)} sources ({', '.join(d.sources)}); headline: {name}"
    extra = [("files", ", ".join(d.files))]
    return h.write_page(d.root / PAGE, f"dsbias report: {d.root.name}", sub,
                        run_verdict(res, f"the {name}", d.baselines, d.leakage), sections, d.provenance, extra)

"""``report.html`` of a study dir: the verdict, the study's table with the paper's values, the confusion table of
its best row, the study's figures (``figures/``, by relative path), links to every run's own page, provenance.

Read from ``results.csv`` (:func:`dsbias.studies.report.read_csv`) and summarised exactly as ``report.md`` is,
so both show the same numbers.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from dsbias.errors import UserError
from dsbias.report import html as h
from dsbias.report.run_page import PAGE, write_run_page
from dsbias.report.verdict import Sentence, is_baseline, study_verdict
from dsbias.runs import RunDir, read_json
from dsbias.studies.catalogue import STUDIES
from dsbias.studies.report import read_csv, summarise, table_notes, table_rows

logger = logging.getLogger(__name__)


def _best(entries: list[dict[str, Any]]) -> dict[str, Any]:
    models = [e for e in entries if not is_baseline(e) and not str(e["probe"]).endswith("(init)")] or entries
    return max(models, key=lambda e: e["mean"])


def _confusion(e: dict[str, Any], id: str) -> h.Raw:
    res = {"sources": json.loads(e["source_names"]), "confusion": json.loads(e["confusion"]),
           "per_source": json.loads(e["per_source"] or "{}") or {}}
    return h.confusion_table(res, id=id)


def write_study_page(out: str | Path, runs: bool = True) -> Path:
    """Write ``out/report.html`` from ``out/results.csv`` (and, with ``runs``, every run's own page first).

    Raises:
        UserError: No ``results.csv`` in ``out``.
    """
    out = Path(out)
    if not (out / "results.csv").is_file():
        raise UserError(f"{out / 'results.csv'} not found: a study dir is written by tools/study.py")
    rows = read_csv(out / "results.csv")
    entries = summarise(rows)
    run_links = []
    for run in dict.fromkeys(r["run"] for r in rows):
        rdir = out / "runs" / run
        if runs and rdir.is_dir():
            write_run_page(rdir)
        if (rdir / PAGE).is_file():
            run_links.append(h.link(Path("runs") / run / PAGE, run))
    studies = list(dict.fromkeys(e["study"] for e in entries))
    verdict: list[Sentence] = []
    results, per_source, figures = (h.Section("results", "Results"), h.Section("per-source", "Confusion of the best "
                                                                                             "row"),
                                    h.Section("figures", "Figures"))
    for k, study in enumerate(studies):
        es = [e for e in entries if e["study"] == study]
        prefix = f"{study}: " if len(studies) > 1 else ""
        verdict += [Sentence(s.question, prefix + s.text, s.tone) for s in study_verdict(es)]
        head, cells = table_rows(es)
        about = f" ({STUDIES[study].paper}; varies {STUDIES[study].varies})" if study in STUDIES else ""
        wide = h.Raw(f'<div class="wide">{h.table(head, cells, id=f"table-{study}")}</div>')
        results.add(h.Raw(f"<h3>{h.esc(study)}{h.esc(about)}</h3>"), wide,
                    *(h.p(n) for n in table_notes(es) if n))
        best = _best(es)
        per_source.add(h.Raw(f"<h3>{h.esc(study)}: {h.esc(best['label'])} ({h.esc(best['probe'])}), "
                             f"{100 * best['mean']:.1f}%</h3>"), _confusion(best, "confusion" if k == 0 else
                                                                            f"confusion-{study}"))
    results.add(h.p("top-1 is val accuracy, mean ± std over seeds; the 95% CI resamples val groups (pooled over "
                    "seeds); p is the one-sided test against chance, Holm-corrected across the study's rows; paper "
                    "% is Liu & He's value where the sources are its datasets by name (docs/statistics.md).",
                    "muted"))
    for png in sorted((out / "figures").glob("*.png")):
        figures.add(h.Raw(f"<h3>{h.esc(png.stem.replace('_', ' '))}</h3>"),
                    h.img_file(png.relative_to(out), png.stem))
    if not figures.body:
        figures.add(h.p("No figures (figures/ is written by tools/study.py).", "muted"))
    run_sec = h.Section("runs", "Runs").add(h.Raw("<p>" + " · ".join(run_links) + "</p>") if run_links else
                                           h.p("No run pages.", "muted"))
    prov_file = RunDir.at(out).provenance
    prov = read_json(prov_file) if prov_file.is_file() else None
    sub = f"study {', '.join(studies)}: {len({r['run'] for r in rows})} runs, {len(entries)} table rows"
    return h.write_page(out / PAGE, f"dsbias study report: {', '.join(studies)}", sub, verdict,
                        [results, per_source, figures, run_sec], prov, [("files", "results.csv, report.md, figures/")])

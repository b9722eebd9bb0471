"""The verdict at the top of every report page: one sentence per question, computed from the numbers.

Pure functions on the result dicts the commands write (``metrics.json``, ``probe_*.json``, ``baselines.json``,
``leakage.json``; every number made by :func:`dsbias.stats.classification_report`) and on a study's summarised
entries (:func:`dsbias.studies.report.summarise`). Nothing here reads a file, so the rules are tested on made-up
metrics. The questions:

1. separable: the test against chance and its group-aware interval (``separable`` or ``not shown``, never "not
   separable": a test that fails to reject chance shows nothing);
2. by how much: points above chance and above the majority baseline;
3. a shortcut: does a metadata-only or tiny-image baseline name the sources as well as the model? It does when
   it is itself separable and its value reaches the model's 95% interval (it is not clearly below the model);
4. for pretrained features, the gain over the same network at random init (paired interval);
5. warnings: likely underfit, few val images per source, leakage found, the run's own warnings and notes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from dsbias.stats import DEFF_SHOWN, format_p

MIN_VAL_PER_SOURCE = 50  # below this, one source's recall has a 95% interval wider than about +-14 points
BASELINES = {"metadata": ("metadata-only", "the files (size, format, bytes, JPEG quality), not the pixels"),
             "tiny": ("tiny-image", "global colour and layout (an 8x8 thumbnail and colour histograms)")}


@dataclass(frozen=True)
class Sentence:
    """One line of the verdict.

    Attributes:
        question: ``separable``, ``margin``, ``shortcut``, ``init`` or ``warning``.
        text: The sentence, plain text.
        tone: ``good`` (a positive finding), ``null`` (nothing shown), ``warn`` (read the number with care) or
            ``info``.
    """

    question: str
    text: str
    tone: str


@dataclass(frozen=True)
class Score:
    """The headline number of a result: value (top-1, or balanced top-1 when that is primary) and its interval,
    the test, chance and majority."""

    value: float
    ci: tuple[float, float]
    p_value: float | None
    verdict: str
    chance: float
    majority: float | None
    metric: str = "top-1"
    test: str = ""
    n: int | None = None
    n_groups: int | None = None


def pct(x: float | None) -> str:
    """``51.5%`` (``-`` for None or NaN)."""
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}%"


def pts(x: float) -> str:
    """``+18.2 pt``."""
    return f"{100 * x:+.1f} pt"


def score_of(res: dict[str, Any]) -> Score:
    """The :class:`Score` of a result dict (a classification report: metrics.json, a probe, a baseline)."""
    balanced = res.get("primary") == "balanced_top1"
    value = res["balanced_top1"] if balanced else res["top1"]
    lo, hi = res["balanced_ci95"] if balanced else res["ci95"]
    return Score(value=value, ci=(lo, hi), p_value=res.get("p_value"), verdict=res.get("verdict", "not shown"),
                 chance=res["chance"], majority=res.get("majority"), metric="balanced top-1" if balanced else "top-1",
                 test=res.get("test", ""), n=res.get("n", res.get("n_val")), n_groups=res.get("n_groups"))


def score_of_entry(e: dict[str, Any]) -> Score:
    """The :class:`Score` of a study entry (mean over seeds, pooled interval, Holm-adjusted p)."""
    return Score(value=e["mean"], ci=tuple(e["pooled_ci"]), p_value=e.get("p_holm"), verdict=e["verdict"],
                 chance=e["chance"], majority=e.get("majority"),
                 metric="balanced top-1" if e.get("primary") == "balanced_top1" else "top-1",
                 test="Holm-adjusted across the study", n=e.get("n_val"))


def separability(s: Score, what: str = "the model") -> Sentence:
    """Question 1: separable, or not shown, with the interval and the test."""
    groups = (f" over {s.n_groups} val groups" if s.n_groups is not None and s.n is not None and s.n_groups != s.n
              else "")
    body = (f"{what} names the source of {pct(s.value)} of val images ({s.metric}; 95% CI {pct(s.ci[0])} to "
            f"{pct(s.ci[1])}{groups}), chance {pct(s.chance)}, p = {format_p(s.p_value)}"
            + (f" ({s.test})" if s.test else ""))
    if s.verdict == "separable":
        return Sentence("separable", f"Separable: {body}.", "good")
    return Sentence("separable", f"Not shown to be separable: {body}; the test does not reject chance, which "
                                 "does not prove the sources alike.", "null")


def margin(s: Score) -> Sentence:
    """Question 2: points above chance and above the majority baseline."""
    text = f"{pts(s.value - s.chance)} above chance ({pct(s.chance)})"
    if s.majority is not None and not math.isnan(s.majority):
        text += f" and {pts(s.value - s.majority)} above always naming the most frequent source ({pct(s.majority)})"
    lo = s.ci[0] - max(s.chance, s.majority or 0.0)
    text += f"; the interval's lower end is {pts(lo)} above the better of the two."
    return Sentence("margin", text[0].upper() + text[1:], "good" if lo > 0 else "null")


def shortcut(s: Score, baselines: dict[str, Score], what: str = "the model") -> Sentence:
    """Question 3: does a shortcut baseline explain as much as the model?

    Args:
        s: The model's score.
        baselines: ``{"metadata": Score, "tiny": Score}`` (any subset; empty: not run).
        what: How the model is named in the sentence.
    """
    if not baselines:
        return Sentence("shortcut", "No shortcut baselines yet (metadata-only, tiny-image): python "
                                    "tools/baselines.py --run RUN_DIR, then rewrite this page.", "info")
    explains = {k: b for k, b in baselines.items() if b.verdict == "separable" and b.value >= s.ci[0]}
    if explains:
        k, b = max(explains.items(), key=lambda kv: kv[1].value)
        label, where = BASELINES.get(k, (k, "a shortcut"))
        more = "more than" if b.ci[0] > s.ci[1] else "as much as"
        return Sentence("shortcut", f"A shortcut explains {more} {what}: the {label} baseline names the source of "
                                    f"{pct(b.value)} (95% CI {pct(b.ci[0])} to {pct(b.ci[1])}) against {what}'s "
                                    f"{pct(s.value)}, so the bias is in {where}.", "warn")
    k, b = max(baselines.items(), key=lambda kv: kv[1].value)
    label, gap = BASELINES.get(k, (k, ""))[0], 100 * (s.value - b.value)
    return Sentence("shortcut", f"{what[0].upper() + what[1:]} beats every shortcut baseline: the best, {label}, "
                                f"names {pct(b.value)} ({b.verdict}), {gap:.1f} pt below.", "good")


def init_gain(res: dict[str, Any]) -> Sentence | None:
    """Question 4: for pretrained features, the gain over the random-init control (None without a control)."""
    if res.get("gain_over_init") is None:
        return None
    g, (lo, hi) = res["gain_over_init"], res["gain_ci95"]
    init = pct(res.get("init_top1"))
    ci = f"paired 95% CI {pts(lo)} to {pts(hi)}"
    if lo > 0:
        return Sentence("init", f"Pretraining added {pts(g)} over the same network at random init ({init}; {ci}).",
                        "good")
    if hi < 0:
        return Sentence("init", f"The pretrained features separate worse than the same network at random init "
                                f"({pts(g)}; {ci}): the random network's {init} is the number to beat.", "warn")
    return Sentence("init", f"No gain over random init shown ({pts(g)}; {ci}): the same network untrained already "
                            f"names {init}, so the separability is not the pretraining's doing.", "null")


def warnings(res: dict[str, Any], leakage: dict[str, Any] | None = None,
             min_val: int = MIN_VAL_PER_SOURCE) -> list[Sentence]:
    """Question 5: what to read the number with: underfit, few val images per source, leakage, the run's own
    warnings and notes, a large design effect."""
    out = []
    under = res.get("underfit") or {}
    if under.get("likely"):
        why = "; ".join(under.get("reasons", [])) or "train accuracy close to val"
        out.append(f"Likely underfit, so the number understates separability: {why}.")
    conf = res.get("confusion")
    if conf:
        counts = {name: sum(row) for name, row in zip(res["sources"], conf)}
        few = {k: v for k, v in counts.items() if v < min_val}
        if few:
            out.append(f"Few val images per source ({', '.join(f'{k} {v}' for k, v in few.items())}; under "
                       f"{min_val} each): per-source recalls are rough and the interval is wide.")
    if leakage:
        c = leakage.get("counts", {})
        nval = len(leakage.get("val_with_train_duplicate", []))
        if c.get("train-val"):
            out.append(f"Leakage found: {nval} val image(s) have a near duplicate in train (cosine >= "
                       f"{leakage['threshold']}); accuracy may be inflated.")
        if c.get("cross-source"):
            out.append(f"{c['cross-source']} near-duplicate pair(s) across sources (one picture in two sources): "
                       "their labels are ambiguous.")
    if res.get("design_effect", 1.0) > DEFF_SHOWN:
        out.append(f"Design effect {res['design_effect']:.1f}: images of a group are not independent; the interval "
                   "resamples whole groups.")
    seen = {w.lower() for w in out}
    for w in [*res.get("warnings", []), *res.get("notes", [])]:
        if not w.lower().startswith("likely underfit") and w.lower() not in seen:
            out.append(w[0].upper() + w[1:] + ("" if w.endswith(".") else "."))
    return [Sentence("warning", w, "warn") for w in out]


def run_verdict(res: dict[str, Any], what: str, baselines: dict[str, Any] | None = None,
                leakage: dict[str, Any] | None = None) -> list[Sentence]:
    """The verdict of one run: every question about its headline result ``res``.

    Args:
        res: The headline result (metrics.json, or the probe shown first).
        what: How its model is named (``the classifier``, ``the linear probe``).
        baselines: ``baselines.json`` (``{"metadata": report, "tiny": report}``), or None.
        leakage: ``leakage.json``, or None.
    """
    s = score_of(res)
    base = {k: score_of(v) for k, v in (baselines or {}).items() if k in BASELINES and isinstance(v, dict)}
    out = [separability(s, what), margin(s), shortcut(s, base, what)]
    gain = init_gain(res)
    return out + ([gain] if gain else []) + warnings(res, leakage)


def is_baseline(e: dict[str, Any]) -> bool:
    return "baseline" in str(e.get("probe", ""))


def baseline_key(e: dict[str, Any]) -> str:
    return "metadata" if str(e["probe"]).startswith("metadata") else "tiny"


def study_verdict(entries: list[dict[str, Any]]) -> list[Sentence]:
    """The verdict of a study: how many settings are separable, the shortcut baselines against the model per
    setting, the gains over random init, and the settings likely underfit."""
    models = [e for e in entries if not is_baseline(e) and not str(e["probe"]).endswith("(init)")]
    if not models:
        return [Sentence("separable", "No results yet.", "null")]
    sep = [e for e in models if e["verdict"] == "separable"]
    best = max(models, key=lambda e: e["mean"])
    bs = score_of_entry(best)
    out = [Sentence("separable", f"{len(sep)} of {len(models)} rows separable (Holm-adjusted p < 0.05); the highest, "
                                 f"{best['label']} ({best['probe']}), names {pct(bs.value)} (95% CI {pct(bs.ci[0])} to "
                                 f"{pct(bs.ci[1])}), {pts(bs.value - bs.chance)} above chance.",
                    "good" if sep else "null")]
    explained, where = [], set()
    for cell in dict.fromkeys(e["cell"] for e in models):
        ms = [e for e in models if e["cell"] == cell]
        base = {baseline_key(e): score_of_entry(e) for e in entries if is_baseline(e) and e["cell"] == cell}
        top = max(ms, key=lambda e: e["mean"])
        s = score_of_entry(top)
        if base and shortcut(s, base).tone == "warn":
            k, b = max(((k, b) for k, b in base.items() if b.verdict == "separable" and b.value >= s.ci[0]),
                       key=lambda kv: kv[1].value)
            explained.append(f"{top['label']}: {BASELINES[k][0]} {pct(b.value)} vs {top['probe']} {pct(s.value)}")
            where.add(BASELINES[k][1])
    if explained:
        out.append(Sentence("shortcut", f"In {len(explained)} of {len(dict.fromkeys(e['cell'] for e in models))} "
                                        "settings a shortcut baseline names the sources as well as the best model ("
                                        + "; ".join(explained) + "): the bias is in " + " and in ".join(sorted(where))
                                        + ".", "warn"))
    elif any(is_baseline(e) for e in entries):
        out.append(Sentence("shortcut", "In every setting the best model beats the shortcut baselines "
                                        "(metadata-only, tiny-image).", "good"))
    gains = [e for e in models if e.get("gain_mean") is not None]
    if gains:
        shown = [e for e in gains if e["seeds"] == 1 and e.get("gain_ci_low") is not None and e["gain_ci_low"] > 0]
        out.append(Sentence("init", f"Gain over random init shown in {len(shown)} of {len(gains)} feature rows "
                                    "(paired 95% CI above 0).", "good" if shown else "null"))
    under = [e["label"] for e in models if e.get("underfit_any")]
    if under:
        out.append(Sentence("warning", f"Likely underfit (the number understates separability): "
                                       f"{', '.join(dict.fromkeys(under))}.", "warn"))
    return out

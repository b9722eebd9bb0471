"""The verdict rules on made-up metrics: separable or not shown, the margin, a shortcut that explains the
model, the gain over random init, and the warnings (underfit, few val images, leakage)."""

from __future__ import annotations

from dsbias.report.verdict import run_verdict, study_verdict


def result(top1: float, ci: tuple[float, float], p: float, chance: float = 1 / 3, majority: float = 1 / 3,
           n_per_source: int = 100, **extra) -> dict:
    """A made-up classification report with the keys the commands write."""
    s = ["a", "b", "c"]
    right = round(top1 * n_per_source)
    conf = [[right if i == j else (n_per_source - right) // 2 + (j == (i + 1) % 3) * ((n_per_source - right) % 2)
             for j in range(3)] for i in range(3)]
    return {"top1": top1, "ci95": list(ci), "p_value": p, "verdict": "separable" if p < 0.05 else "not shown",
            "chance": chance, "majority": majority, "primary": "top1", "test": "exact binomial test",
            "sources": s, "confusion": conf, "per_source": dict.fromkeys(s, top1), "n": 3 * n_per_source,
            "n_groups": 3 * n_per_source, **extra}


def by(sentences, question):
    return [x for x in sentences if x.question == question]


def test_a_metadata_baseline_above_the_model_is_named_as_the_explanation():
    model = result(0.43, (0.38, 0.48), 1e-4)
    base = {"metadata": result(0.80, (0.76, 0.84), 1e-9), "tiny": result(0.36, (0.31, 0.41), 0.2)}
    v = run_verdict(model, "the classifier", base)
    (sc,) = by(v, "shortcut")
    assert sc.tone == "warn"
    assert "metadata-only" in sc.text and "more than" in sc.text and "80.0%" in sc.text and "files" in sc.text
    # The tiny-image baseline reaches the model's interval only when it is itself separable.
    v2 = run_verdict(model, "the classifier", {"tiny": result(0.40, (0.35, 0.45), 0.09)})
    assert by(v2, "shortcut")[0].tone == "good"


def test_a_baseline_inside_the_models_interval_explains_as_much():
    model = result(0.60, (0.55, 0.65), 1e-6)
    (sc,) = by(run_verdict(model, "the probe", {"tiny": result(0.57, (0.52, 0.62), 1e-5)}), "shortcut")
    assert sc.tone == "warn" and "as much as" in sc.text and "tiny-image" in sc.text and "colour" in sc.text


def test_a_model_above_every_baseline_says_so_with_the_gap():
    model = result(0.90, (0.86, 0.93), 1e-12)
    (sc,) = by(run_verdict(model, "the classifier", {"metadata": result(0.50, (0.45, 0.55), 1e-3)}), "shortcut")
    assert sc.tone == "good" and "50.0% (separable), 40.0 pt below" in sc.text
    (none,) = by(run_verdict(model, "the classifier", None), "shortcut")
    assert none.tone == "info" and "tools/baselines.py" in none.text


def test_not_separable_is_not_shown_never_not_separable():
    v = run_verdict(result(0.35, (0.30, 0.40), 0.3), "the classifier")
    (sep,) = by(v, "separable")
    assert sep.tone == "null" and sep.text.startswith("Not shown") and "p = 0.3" in sep.text
    (mar,) = by(v, "margin")
    assert mar.tone == "null" and "+1.7 pt above chance" in mar.text  # 35.0 - 33.3
    assert by(run_verdict(result(0.6, (0.55, 0.65), 1e-5), "x"), "separable")[0].text.startswith("Separable")


def test_margin_counts_from_the_majority_baseline_when_it_is_higher():
    (mar,) = by(run_verdict(result(0.55, (0.50, 0.60), 1e-3, majority=0.52), "x"), "margin")
    assert "+3.0 pt above always naming" in mar.text and mar.tone == "null"  # lower end 50% < majority 52%


def test_underfit_few_val_images_and_leakage_are_warnings():
    res = result(0.5, (0.4, 0.6), 0.01, n_per_source=20,
                 underfit={"likely": True, "reasons": ["train top-1 52% within 5 points of val"]})
    leak = {"threshold": 0.95, "counts": {"train-val": 3, "cross-source": 2, "within-source": 0},
            "val_with_train_duplicate": [4, 9, 12]}
    w = [x.text for x in by(run_verdict(res, "the classifier", leakage=leak), "warning")]
    assert any(t.startswith("Likely underfit") and "within 5 points" in t for t in w)
    assert any("Few val images per source (a 20, b 20, c 20" in t for t in w)
    assert any(t.startswith("Leakage found: 3 val image(s)") for t in w)
    assert any("2 near-duplicate pair(s) across sources" in t for t in w)
    clean = run_verdict(result(0.5, (0.45, 0.55), 0.01), "x",
                        leakage={"threshold": 0.95, "counts": {"train-val": 0, "cross-source": 0}})
    assert by(clean, "warning") == []


def test_gain_over_init_shown_not_shown_and_negative():
    base = result(0.6, (0.55, 0.65), 1e-6, init_top1=0.5)
    (g,) = by(run_verdict({**base, "gain_over_init": 0.1, "gain_ci95": [0.04, 0.16]}, "p"), "init")
    assert g.tone == "good" and "+10.0 pt" in g.text
    (g,) = by(run_verdict({**base, "gain_over_init": 0.02, "gain_ci95": [-0.02, 0.06]}, "p"), "init")
    assert g.tone == "null" and "50.0%" in g.text
    (g,) = by(run_verdict({**base, "gain_over_init": -0.1, "gain_ci95": [-0.15, -0.05]}, "p"), "init")
    assert g.tone == "warn"
    assert by(run_verdict(result(0.6, (0.55, 0.65), 1e-6), "p"), "init") == []


def entry(cell: str, probe: str, mean: float, ci: tuple[float, float], verdict: str = "separable", **extra) -> dict:
    return {"study": "combos", "cell": cell, "label": cell, "probe": probe, "mean": mean, "pooled_ci": ci,
            "p_holm": 1e-4 if verdict == "separable" else 0.4, "verdict": verdict, "chance": 1 / 3,
            "majority": 1 / 3, "seeds": 1, "gain_mean": None, "underfit_any": False, **extra}


def test_study_verdict_counts_separable_rows_and_names_the_shortcut_settings():
    es = [entry("abc", "end-to-end", 0.43, (0.38, 0.48)), entry("abc", "metadata baseline", 0.80, (0.76, 0.84)),
          entry("abd", "end-to-end", 0.36, (0.31, 0.41), "not shown", underfit_any=True),
          entry("abd", "metadata baseline", 0.30, (0.25, 0.35), "not shown")]
    v = study_verdict(es)
    assert by(v, "separable")[0].text.startswith("1 of 2 rows separable")
    (sc,) = by(v, "shortcut")
    assert sc.text.startswith("In 1 of 2 settings") and "metadata-only" in sc.text
    assert "abd" in by(v, "warning")[0].text
    beaten = [entry("x", "end-to-end", 0.9, (0.85, 0.95)), entry("x", "tiny-image baseline", 0.4, (0.35, 0.45))]
    assert by(study_verdict(es[2:3] + beaten), "shortcut")[0].tone == "good"

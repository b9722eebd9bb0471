"""The published numbers: one way to match source names, and each study's paper value for a result row."""

import json

from dsbias.anatomy.transforms import NEEDS_MODEL, TRANSFORMS
from dsbias.studies.catalogue import paper_value
from dsbias.studies.paper import ZYL_YCD, combo_key


def _row(study, sources, **kw):
    return {"study": study, "probe": kw.pop("probe", "end-to-end"), "source_names": json.dumps(sources), **kw}


def test_paper_names_match():
    assert combo_key(["YFCC100M", "cc12m", "DataComp"]) == "YCD"
    assert combo_key(["alpha", "cc", "datacomp"]) is None


def test_anatomy_values_only_for_matching_sources():
    assert set(ZYL_YCD) - {""} <= set(TRANSFORMS) | set(NEEDS_MODEL)  # keys are our names
    assert paper_value(_row("anatomy", ["DataComp", "yfcc", "CC"], transform="lpf")) == 70.4
    assert paper_value(_row("anatomy", ["yfcc15m", "cc3m", "datacomp1b"], transform="reference")) == 82.0
    assert paper_value(_row("anatomy", ["alpha", "beta", "gamma"], transform="lpf")) is None


def test_each_study_finds_its_table():
    ycd = ["yfcc", "cc", "datacomp"]
    assert paper_value(_row("combos", ["cc", "laion", "datacomp"])) == 62.8
    assert paper_value(_row("archs", ycd, arch="resnet50")) == 83.8
    assert paper_value(_row("augment", ycd, label="crop", n_train=100_000)) == 74.5
    assert paper_value(_row("corrupt", ycd, label="blur_5")) == 78.1
    assert paper_value(_row("ssl", ycd, method="mae", probe="linear")) == 78.4
    assert paper_value(_row("corrupt", ycd, label="blur_5", probe="metadata baseline")) is None
    assert paper_value(_row("pseudo", ["yfcc"])) is None

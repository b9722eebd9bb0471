"""``tools/study.py --only``: a study restricted to some of its rows, by label."""

from __future__ import annotations

import pytest

from dsbias.config import load_config
from dsbias.errors import UserError
from dsbias.studies.catalogue import StudyContext, build_cells


def test_only_selects_rows_by_label_and_names_the_known_ones():
    ctx = StudyContext(load_config(None, ["data=toy4"]).data.sources, tiny=True)
    every = build_cells("anatomy", ctx)
    assert {"reference", "canny", "hog"} <= {c.labels["label"] for c in every}
    picked = build_cells("anatomy", ctx, ["hog", "reference", "canny"])
    assert [c.labels["label"] for c in picked] == ["reference", "canny", "hog"]  # in the study's order
    assert [c.overrides for c in picked] == [c.overrides for c in every if c.labels["label"] in {"reference", "canny",
                                                                                                 "hog"}]
    with pytest.raises(UserError, match=r"--only edges: no such row in study anatomy; rows: reference, grayscale"):
        build_cells("anatomy", ctx, ["canny", "edges"])

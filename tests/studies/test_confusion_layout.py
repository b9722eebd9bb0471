"""The study's confusion grid: titles of neighbouring panels and the rotated tick labels never overlap."""

from __future__ import annotations

import json
from itertools import combinations

from dsbias.studies.figures import confusion_figure


def test_titles_and_tick_labels_do_not_overlap():
    names = ["a_rather_long_source_name", "beta_source", "gamma_dataset", "delta"]
    entries = [{"confusion": json.dumps([[5, 1, 1, 1]] * 4), "source_names": json.dumps(names), "probe": "end-to-end",
                "label": f"alpha+beta+gamma+delta, setting number {i}", "mean": 0.43} for i in range(5)]
    fig = confusion_figure(entries)
    fig.draw_without_rendering()
    r = fig.canvas.get_renderer()
    axes = [ax for ax in fig.axes if ax.get_title()]
    titles = [ax.title.get_window_extent(r) for ax in axes]
    assert len(titles) == 5
    assert not any(a.overlaps(b) for a, b in combinations(titles, 2))
    for ax in axes:
        label = ax.xaxis.label.get_window_extent(r)
        assert not any(t.get_window_extent(r).overlaps(label) for t in ax.get_xticklabels())

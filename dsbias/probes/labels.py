"""The labels a probe is about to score, checked before any number is computed (every probe calls
:func:`check_labels`).

``meta.json`` lists the sources, but the labels actually present decide what a probe can say: features of one
source (every label the same) would score 100% "separable" against a chance of 1/S, and a val source that
train never saw can only be misnamed. The first is an error; thin or unseen sources are warnings, shown under
the table and kept in the result's ``warnings``.
"""

from __future__ import annotations

import logging

import numpy as np

from dsbias.features.store import SPLITS, FeatureError, FeatureSet, split_file

logger = logging.getLogger(__name__)

# Fewer rows than this for a source in a split: its recall (and its share of top-1) rests on a handful of images.
MIN_ROWS = 10


def check_labels(fs: FeatureSet, min_rows: int = MIN_ROWS, splits: tuple[str, ...] = SPLITS,
                 supervised: bool = True) -> list[str]:
    """Check the labels present in the splits a probe uses.

    Args:
        fs: Features from ``load_features`` (labels already checked to index ``fs.sources``).
        min_rows: A source with fewer rows (but some) in a split gets a warning.
        splits: The splits the probe reads (the cluster probe may read one).
        supervised: The probe learns from train and predicts val (kNN, linear): a val source unseen in train
            is a warning. Clustering uses no labels to fit, so it is not.

    Returns:
        Warnings (also logged): a val source absent from train, a source below ``min_rows`` in a split, sources
        listed in ``meta.json`` without any rows.

    Raises:
        FeatureError: Fewer than two sources have rows in train, or in val.
    """
    names = fs.sources
    counts = {s: np.bincount(getattr(fs, s).labels, minlength=len(names)) for s in splits}
    for split in splits:
        present = [names[i] for i in np.flatnonzero(counts[split])]
        if len(present) < 2:
            have = f"only {present[0]}" if present else "none"
            raise FeatureError(f"{split_file(fs.root, split, 'labels')}: rows of {len(present)} source(s) ({have}, "
                               f"of {len(names)} in meta.json); separability needs >= 2 (extract features of "
                               "several sources: check the manifest and data.sources)")
    warnings = []
    unseen = [names[i] for i in np.flatnonzero((counts["val"] > 0) & (counts["train"] == 0))] if supervised else []
    if unseen:
        warnings.append(f"val source(s) {unseen} have no train rows: a probe can never name them, so top-1 is "
                        "not a separability measure (re-extract with train rows for every source)")
    for split in splits:
        thin = {names[i]: int(counts[split][i]) for i in np.flatnonzero((counts[split] > 0)
                                                                         & (counts[split] < min_rows))}
        if thin:
            warnings.append(f"{split}: source(s) with fewer than {min_rows} rows {thin}: their recall rests on a "
                            "handful of images")
    empty = [names[i] for i in np.flatnonzero(sum(counts.values()) == 0)]
    if empty:
        warnings.append(f"source(s) {empty} listed in meta.json have no rows: chance 1/{len(names)} counts them "
                        f"(1/{len(names) - len(empty)} over the sources present)")
    for w in warnings:
        logger.warning("%s: %s", fs.root, w)
    return warnings

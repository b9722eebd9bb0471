"""Exact de-duplication of the sampled images by content hash (``ImageInfo.sha1``).

Three kinds of duplicate group (one image, several rows):

- **cross-source**: the same bytes under two labels. The task is ill-posed for that image, so with
  ``data.dedup=drop`` every copy is dropped and the hash is banned from the replacements.
- **cross-split**: one source has it in train and in val. It would inflate val accuracy, so the val copies are
  dropped (one train copy stays).
- **within-source**: twice in one split of one source (the same file under two names, a re-upload). The label
  is right, but the image would weigh twice, so one copy stays and the others are dropped.

Only the sampled images are compared (hashing whole sources would read every byte of them). Near-duplicates
(on features) are a separate check.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

KINDS = ("cross_source", "cross_split", "within_source")


@dataclass
class DedupPlan:
    """What one pass found.

    Attributes:
        drop: Positions (in the entry list) to drop.
        banned: Hashes no replacement may have (cross-source images).
        found: Kind of every duplicate group found, by hash.
        examples: A few groups, as ``{kind, sha1, rows: [[label, split, item], ...]}``, for the summary.
    """

    drop: list[int] = field(default_factory=list)
    banned: set[str] = field(default_factory=set)
    found: dict[str, str] = field(default_factory=dict)
    examples: list[dict] = field(default_factory=list)


def plan_dedup(entries: list[tuple[str, str, str, str]], policy: str, max_examples: int = 5) -> DedupPlan:
    """Find duplicate groups among ``entries`` and, with ``policy == "drop"``, the rows to drop.

    Args:
        entries: ``(label, split, sha1, item)`` per sampled row.
        policy: ``drop``, ``report`` or ``ignore`` (nothing found).

    Returns:
        The plan (drop positions sorted).
    """
    plan = DedupPlan()
    if policy == "ignore":
        return plan
    by_hash: dict[str, list[int]] = defaultdict(list)
    for i, (_, _, sha1, _) in enumerate(entries):
        if sha1:
            by_hash[sha1].append(i)
    for sha1, pos in by_hash.items():
        if len(pos) < 2:
            continue
        labels = {entries[i][0] for i in pos}
        splits = {entries[i][1] for i in pos}
        if len(labels) > 1:
            kind, drop = "cross_source", pos
            plan.banned.add(sha1)
        else:
            # One copy stays, the first train one (train rows come first in ``entries``; a val-only group keeps
            # its first val row): everything else of the group goes, so no pass leaves a duplicate behind.
            keep = min(pos, key=lambda i: (entries[i][1] != "train", i))
            kind = "cross_split" if len(splits) > 1 else "within_source"
            drop = [i for i in pos if i != keep]
        plan.found[sha1] = kind
        if len(plan.examples) < max_examples:
            rows = [[entries[i][0], entries[i][1], entries[i][3]] for i in pos]
            plan.examples.append({"kind": kind, "sha1": sha1, "rows": rows})
        if policy == "drop":
            plan.drop.extend(drop)
    plan.drop.sort()
    return plan

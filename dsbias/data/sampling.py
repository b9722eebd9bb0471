"""Drawing the images of a manifest: seeded streams of usable items, balanced splits, de-duplication.

Each source's items are visited in its seeded order (uniform over the whole source) and decoded once; the
first ``train`` usable ones go to train and the next ``val`` to val (a source with an official split has one
stream per split). Duplicates found by :mod:`dsbias.data.dedup` are dropped and replaced by the next usable
items of the same stream, until no dropped duplicate is left, so every source keeps its requested counts.

With ``data.group`` the first ``train + val`` usable items of a source form one pool, de-duplicated the same
way, and the pool is then split by group (:mod:`dsbias.data.groups`): no group on both sides, counts as close to
the requested ones as the group sizes allow. Pseudo-sources get whole groups. An official split is kept as given.
"""

from __future__ import annotations

import itertools
import logging
from collections import Counter, deque
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from dsbias.data.config import DataConfig
from dsbias.data.decode import DecodeError, ImageInfo
from dsbias.data.dedup import KINDS, plan_dedup
from dsbias.data.groups import deal_groups, merged_groups, split_groups
from dsbias.data.sources.base import Source
from dsbias.errors import UserError

logger = logging.getLogger(__name__)

SPLITS = ("train", "val")
Pick = tuple[str, str, ImageInfo]  # (origin source, item, info)
Probed = dict[tuple[str, str], "ImageInfo | str"]  # (source, item) -> its info, or why it is unusable


class ShortSourceError(UserError, RuntimeError):
    """A source has fewer usable images than the config asks for (or, with groups, a split got none)."""


def first_chunk(n: int) -> int:
    """Items decoded to find ``n`` usable ones: a little more than needed (a few fail; one round trip beats many)."""
    return max(16, int(n * 1.1) + 4)


class Stream:
    """Usable items of one source, in a given order, decoded on demand in chunks on a shared thread pool."""

    def __init__(self, source: Source, order: Iterable[str], pool: ThreadPoolExecutor,
                 known: Mapping[tuple[str, str], ImageInfo | str] | None = None) -> None:
        self.source = source
        self.known = known or {}  # items already decoded (by other processes): not decoded again
        self.it = iter(order)
        self.pool = pool
        self.ready: deque[Pick] = deque()
        self.skipped: Counter = Counter()

    def _probe(self, item: str) -> tuple[str, ImageInfo | str]:
        hit = self.known.get((self.source.name, item))
        if hit is not None:
            return item, hit
        try:
            return item, self.source.read(item)[1]
        except DecodeError as e:
            return item, e.reason

    def take(self, n: int, banned: set[str] = frozenset()) -> list[Pick]:
        """The next ``n`` usable items (fewer if the source runs out), skipping hashes in ``banned``."""
        out: list[Pick] = []
        while len(out) < n:
            if not self.ready:
                chunk = list(itertools.islice(self.it, first_chunk(n - len(out))))
                if not chunk:
                    break
                for item, res in self.pool.map(self._probe, chunk):
                    if isinstance(res, ImageInfo):
                        self.ready.append((self.source.name, item, res))
                    else:
                        self.skipped[res] += 1
                continue
            pick = self.ready.popleft()
            if pick[2].sha1 in banned:
                self.skipped["duplicate"] += 1
                continue
            out.append(pick)
        return out


@dataclass
class Draw:
    """The sampled rows by label and split, and how they were obtained."""

    labels: list[str]
    chosen: dict[str, dict[str, list[Pick]]]
    skipped: dict[str, dict[str, int]]
    duplicates: dict[str, Any] = field(default_factory=dict)
    groups: dict[tuple[str, str], str] | None = None  # (origin, item) -> group id, with data.group
    group_summary: dict[str, Any] = field(default_factory=dict)


def _streams(data: DataConfig, readers: dict[str, Source], pool: ThreadPoolExecutor, known: Probed | None = None):
    """``(labels, stream_of)``: the labels and, per (label, split), the stream that feeds it."""
    if data.pseudo:
        (origin,) = readers
        shared = Stream(readers[origin], readers[origin].sample_order(data.seed), pool, known)
        labels = [f"{origin}-{j}" for j in range(data.pseudo)]
        return labels, {(lab, s): shared for lab in labels for s in SPLITS}
    out = {}
    for name, src in readers.items():
        split_order = getattr(src, "split_order", None)
        orders = {s: split_order(data.seed, s) for s in SPLITS} if split_order and data.official_split else {}
        if orders and all(o is not None for o in orders.values()):
            out.update({(name, s): Stream(src, orders[s], pool, known) for s in SPLITS})
        else:
            shared = Stream(src, src.sample_order(data.seed), pool, known)
            out.update({(name, s): shared for s in SPLITS})
    return list(readers), out


def _check_short(label: str, got: int, need: int, data: DataConfig, stream: Stream, what: str = "") -> None:
    if got >= need:
        return
    n_tr, n_val = data.per_source.train, data.per_source.val
    k = data.pseudo or 1
    skipped = dict(stream.skipped) or "none"
    msg = (f"data.sources[{label}]{what}: {got} usable images, {need} asked for (data.per_source = {n_tr}/{n_val}"
           f"{f' x {k} pseudo' if k > 1 else ''}; skipped: {skipped})")
    if not data.allow_fewer:
        raise ShortSourceError(msg + " (lower data.per_source or set data.allow_fewer=true)")
    logger.warning("%s; data.allow_fewer is on: using all %d", msg, got)


def _initial(data: DataConfig, labels: list[str], stream_of: dict) -> dict[str, dict[str, list[Pick]]]:
    """First fill: train then val from each stream (dealt round-robin to pseudo-sources)."""
    n_train, n_val = data.per_source.train, data.per_source.val
    k = data.pseudo or 1
    chosen: dict[str, dict[str, list[Pick]]] = {}
    if data.pseudo:
        stream = stream_of[(labels[0], "train")]
        items = stream.take(k * (n_train + n_val))
        _check_short(stream.source.name, len(items), k * (n_train + n_val), data, stream)
        per_label = {lab: items[j::k][: len(items) // k] for j, lab in enumerate(labels)}
    else:
        per_label = {}
        for lab in labels:
            s_tr, s_val = stream_of[(lab, "train")], stream_of[(lab, "val")]
            if s_tr is s_val:
                per_label[lab] = s_tr.take(n_train + n_val)
                _check_short(lab, len(per_label[lab]), n_train + n_val, data, s_tr)
            else:  # official split: each split from its own stream
                tr, va = s_tr.take(n_train), s_val.take(n_val)
                _check_short(lab, len(tr), n_train, data, s_tr, " (train split)")
                _check_short(lab, len(va), n_val, data, s_val, " (val split)")
                chosen[lab] = {"train": tr, "val": va}
    for lab, items in per_label.items():
        n_tr = n_train
        if len(items) < n_train + n_val:  # allow_fewer: keep the requested train:val proportion
            n_tr = round(len(items) * n_train / (n_train + n_val))
        chosen[lab] = {"train": items[:n_tr], "val": items[n_tr:n_tr + n_val]}
    return chosen


def _pools(data: DataConfig, labels: list[str], stream_of: dict) -> dict[str, dict[str, list[Pick]]]:
    """First fill with groups: a source's train + val items as one pool (under "train"), split after de-dup;
    the pseudo-sources' whole pool under the first label. Official splits as in :func:`_initial`."""
    n_train, n_val = data.per_source.train, data.per_source.val
    chosen: dict[str, dict[str, list[Pick]]] = {}
    for lab in labels[:1] if data.pseudo else labels:
        s_tr, s_val = stream_of[(lab, "train")], stream_of[(lab, "val")]
        if s_tr is s_val:
            need = (data.pseudo or 1) * (n_train + n_val)
            items = s_tr.take(need)
            _check_short(s_tr.source.name if data.pseudo else lab, len(items), need, data, s_tr)
            chosen[lab] = {"train": items, "val": []}
        else:
            tr, va = s_tr.take(n_train), s_val.take(n_val)
            _check_short(lab, len(tr), n_train, data, s_tr, " (train split)")
            _check_short(lab, len(va), n_val, data, s_val, " (val split)")
            chosen[lab] = {"train": tr, "val": va}
    for lab in labels[1:] if data.pseudo else []:
        chosen[lab] = {"train": [], "val": []}
    return chosen


def _split_pools(data: DataConfig, labels: list[str], chosen: dict, stream_of: dict, lookup: dict) -> Draw:
    """Split the pools of :func:`_pools` by group; returns a partial Draw (chosen, groups, group summary)."""
    cache: dict[tuple[str, str], str] = {}

    def raw(p: Pick) -> str:
        if (p[0], p[1]) not in cache:
            cache[(p[0], p[1])] = lookup[p[0]](p[1])
        return cache[(p[0], p[1])]

    n_train, n_val = data.per_source.train, data.per_source.val
    pooled = [lab for lab in labels if stream_of[(lab, "train")] is stream_of[(lab, "val")]]
    all_picks = [p for lab in labels for s in SPLITS for p in chosen[lab][s]]
    merged = {}  # images with the same bytes: one group (within an origin), so a copy never straddles the split
    for origin in dict.fromkeys(p[0] for p in all_picks):
        mine = [p for p in all_picks if p[0] == origin]
        merged[origin] = merged_groups(mine, raw, lambda p: p[2].sha1)
    group = {(p[0], p[1]): merged[p[0]][raw(p)] for p in all_picks}

    def key(p: Pick) -> str:
        return group[(p[0], p[1])]

    if data.pseudo and labels[0] in pooled:
        parts = deal_groups(chosen[labels[0]]["train"], key, data.pseudo, "deal", data.seed)
        chosen = {lab: {"train": part, "val": []} for lab, part in zip(labels, parts)}
    summary: dict[str, Any] = {"per_source": {}, "across_split": {}}
    for lab in labels:
        if lab in pooled or data.pseudo:
            pool = chosen[lab]["train"]
            want_val = round(len(pool) * n_val / (n_train + n_val))  # = n_val unless allow_fewer shortened it
            chosen[lab]["train"], chosen[lab]["val"] = split_groups(pool, key, want_val, "split", data.seed, lab)
            if n_val and (not chosen[lab]["val"] or not chosen[lab]["train"]):
                raise ShortSourceError(f"source '{lab}': {len(pool)} images in {len({key(p) for p in pool})} "
                                       f"group(s) cannot be split into train and val by group (data.group); use "
                                       "finer groups or more images per source (data.per_source)")
        gs = {s: {key(p) for p in chosen[lab][s]} for s in SPLITS}
        summary["per_source"][lab] = {s: len(gs[s]) for s in SPLITS}
        both = gs["train"] & gs["val"]
        if both:  # only an official split can put one group on both sides: it is kept as given
            summary["across_split"][lab] = len(both)
            logger.warning("source %s: %d group(s) on both sides of its official split (kept as given)", lab,
                           len(both))
    return Draw(labels, chosen, {}, groups=group, group_summary=summary)


def probe_share(data: DataConfig, readers: dict[str, Source], rank: int, world: int) -> Probed:
    """Decode this process's share of the items a draw reads first: of each stream's first chunk (the items
    :meth:`Stream.take` decodes for the initial fill), every ``world``-th one from position ``rank``.

    The shares of all processes, merged, are the ``known`` of :func:`draw`: the draw then decodes only what the
    first chunks did not cover (refills after failures or de-dup) and is the same draw as a single process's.
    """
    need = (data.pseudo or 1) * (data.per_source.train + data.per_source.val)
    with ThreadPoolExecutor(max_workers=max(1, data.loader_workers() * 2)) as pool:
        _, stream_of = _streams(data, readers, pool)
        out: Probed = {}
        seen: set[int] = set()
        for (lab, split), st in stream_of.items():
            if id(st) in seen:  # a stream shared by both splits (or by pseudo-sources) is read once
                continue
            seen.add(id(st))
            official = stream_of[(lab, "train")] is not stream_of[(lab, "val")]
            n = (data.per_source.train if split == "train" else data.per_source.val) if official else need
            mine = list(itertools.islice(st.it, first_chunk(n)))[rank::world]
            out.update({(st.source.name, item): res for item, res in pool.map(st._probe, mine)})
    return out


def draw(data: DataConfig, readers: dict[str, Source], lookup: dict[str, Any] | None = None,
         known: Probed | None = None) -> Draw:
    """Sample every source, split train/val, de-duplicate (``data.dedup``) and refill.

    Args:
        data: The data config.
        readers: The sources by name.
        lookup: Per source, ``item -> group id`` (:func:`dsbias.data.groups.create_group_lookup`); with it, the
            split is by group.
        known: Items already decoded (:func:`probe_share` of every process, merged); the result is the same.

    Raises:
        ShortSourceError: A source has too few usable images and ``allow_fewer`` is off, or its groups cannot
            be split.
    """
    with ThreadPoolExecutor(max_workers=max(1, data.loader_workers() * 2)) as pool:
        labels, stream_of = _streams(data, readers, pool, known)
        chosen = _initial(data, labels, stream_of) if lookup is None else _pools(data, labels, stream_of)
        target = {(lab, s): len(chosen[lab][s]) for lab in labels for s in SPLITS}
        found: dict[str, str] = {}  # sha1 -> kind of every group found in any pass
        dropped: Counter = Counter()
        examples: list[dict] = []
        banned: set[str] = set()
        while True:
            flat = [(lab, s, i) for lab in labels for s in SPLITS for i in range(len(chosen[lab][s]))]
            entries = [(lab, s, chosen[lab][s][i][2].sha1, chosen[lab][s][i][1]) for lab, s, i in flat]
            plan = plan_dedup(entries, data.dedup)
            examples += [e for e in plan.examples if e["sha1"] not in found][: 5 - len(examples)]
            found.update(plan.found)
            if not plan.drop:
                break
            banned |= plan.banned
            gone = {flat[p] for p in plan.drop}
            for lab, _, _ in gone:
                dropped[lab] += 1
            for lab in labels:
                for s in SPLITS:
                    kept = [x for i, x in enumerate(chosen[lab][s]) if (lab, s, i) not in gone]
                    # Replacements come from the same seeded stream, so the draw stays reproducible.
                    kept += stream_of[(lab, s)].take(target[(lab, s)] - len(kept), banned)
                    chosen[lab][s] = kept
        for (lab, s), n in target.items():
            _check_short(lab, len(chosen[lab][s]), n, data, stream_of[(lab, s)], f" ({s} split, after de-dup)")
    skipped = {name: Counter() for name in readers}
    for st in {id(st): st for st in stream_of.values()}.values():
        skipped[st.source.name].update(st.skipped)
    for name, src in readers.items():
        skipped[name].update(getattr(src, "ignored", {}))  # e.g. shard members with escaping paths
    groups = Counter(found.values())
    duplicates = {"policy": data.dedup, **{k: groups[k] for k in KINDS}, "dropped": dict(dropped),
                  "examples": examples}
    if sum(groups.values()):
        logger.warning("duplicates among sampled images: %s (policy %s, dropped %d)",
                       {k: groups[k] for k in KINDS}, data.dedup, sum(dropped.values()))
    out = Draw(labels, chosen, {k: dict(v) for k, v in skipped.items()}, duplicates)
    if lookup is not None:
        split = _split_pools(data, labels, chosen, stream_of, lookup)
        out.chosen, out.groups, out.group_summary = split.chosen, split.groups, split.group_summary
    return out

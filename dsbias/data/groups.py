"""Groups: which sampled images belong together, and splits that keep every group on one side.

``data.group`` (:class:`~dsbias.data.config.GroupConfig`) gives each image a group id: a regex or a directory
of its item path (any kind), a column of a list file, a key of a shard sample's ``.json``. Kinds provide the
last two through hooks in their registry entry (:class:`~dsbias.data.sources.base.SourceKind`), so a new
tabular kind adds ``column=...`` there and nothing here changes.

The drawn images of a source are then split by group (:func:`split_groups`): whole groups go to val in a seeded
order while that brings the val count closer to ``per_source.val``, the rest to train. Images with the same
bytes are put in one group first (:func:`merged_groups`), so an exact duplicate can never sit on both sides.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Sequence
from pathlib import PurePosixPath
from typing import TypeVar

import numpy as np

from dsbias.data.config import DataConfig, GroupConfig
from dsbias.data.sources.base import Source
from dsbias.data.sources.registry import KINDS, expand_sources
from dsbias.errors import UserError
from dsbias.seeds import stable_seed

T = TypeVar("T")


class GroupError(UserError, ValueError):
    """An item has no group under ``data.group``; the message names the item and the setting."""


def path_group(path: str, spec: GroupConfig, source: str) -> str:
    """The group id of an item path by ``spec.regex`` or ``spec.dir``."""
    if spec.regex is not None:
        m = re.search(spec.regex, path)
        gid = (m.group(1) if m.re.groups else m.group(0)) if m is not None else None
        if not gid:
            raise GroupError(f"data.group.regex={spec.regex!r} does not match '{path}' (source '{source}'): "
                             "every image needs a group; fix the pattern")
        return gid
    parts = PurePosixPath(path).parts[:-1]
    if not -len(parts) <= int(spec.dir or 0) < len(parts):
        raise GroupError(f"data.group.dir={spec.dir}: '{path}' (source '{source}') has {len(parts)} folder(s) "
                         "in its path; choose another index")
    return parts[int(spec.dir or 0)]


def create_group_lookup(data: DataConfig, readers: dict[str, Source]) -> dict[str, Callable[[str], str]] | None:
    """Per source (reader) name, ``item -> group id`` for ``data.group``; None when it is unset.

    Raises:
        GroupError: ``column``/``key`` on a kind that has no such hook.
    """
    spec = data.group
    if spec.kind is None:
        return None
    kinds = {s.name: s.kind for s in expand_sources(data).sources}
    out: dict[str, Callable[[str], str]] = {}
    for name, src in readers.items():
        kind = KINDS[kinds[name]]
        if spec.kind in ("regex", "dir"):
            to_path = kind.item_path or str
            out[name] = lambda item, p=to_path, n=name: path_group(p(item), spec, n)
            continue
        hook = getattr(kind, spec.kind)
        if hook is None:
            raise GroupError(f"data.group.{spec.kind}: source '{name}' is a {kinds[name]} source, which has no "
                             f"per-image {spec.kind}s; use data.group.regex or data.group.dir")
        out[name] = _hooked(hook, src, name, spec)
    return out


def _hooked(hook: Callable[[Source, str, str], object], src: Source, name: str,
            spec: GroupConfig) -> Callable[[str], str]:
    field = str(getattr(spec, spec.kind or ""))

    def lookup(item: str) -> str:
        try:
            value = hook(src, item, field)
        except KeyError as e:
            raise GroupError(f"data.group.{spec.kind}={field}: no value for '{item}' (source '{name}'): "
                             f"{e.args[0] if e.args else e}") from None
        if value is None or value == "":
            raise GroupError(f"data.group.{spec.kind}={field}: empty for '{item}' (source '{name}')")
        return str(value)

    return lookup


def merged_groups(items: Sequence[T], group: Callable[[T], str], sha1: Callable[[T], str]) -> dict[str, str]:
    """``{group: representative}``: groups that share an image (same bytes) become one (union-find)."""
    parent: dict[str, str] = {}

    def find(g: str) -> str:
        while parent.setdefault(g, g) != g:
            parent[g] = parent[parent[g]]
            g = parent[g]
        return g

    first_of_hash: dict[str, str] = {}
    for it in items:
        g, h = find(group(it)), sha1(it)
        if h in first_of_hash:
            a, b = find(first_of_hash[h]), g
            if a != b:
                parent[max(a, b)] = min(a, b)
        else:
            first_of_hash[h] = g
    return {g: find(g) for g in list(parent)}


def _seeded_groups(items: Sequence[T], group: Callable[[T], Hashable], *key: object) -> list[list[T]]:
    """The items by group, the groups in a random order that depends only on ``key`` and their ids."""
    by: dict[Hashable, list[T]] = {}
    for it in items:
        by.setdefault(group(it), []).append(it)
    names = sorted(by, key=str)
    order = np.random.default_rng(stable_seed("groups", *key)).permutation(len(names))
    return [by[names[i]] for i in order]


def split_groups(items: Sequence[T], group: Callable[[T], Hashable], n_val: int,
                 *key: object) -> tuple[list[T], list[T]]:
    """``(train, val)`` with whole groups: each group, in a seeded order, goes to val when that brings the val
    count closer to ``n_val`` (so it is off by at most half the largest group), else to train. Item order is
    kept."""
    val_ids: set[int] = set()
    count = 0
    for members in _seeded_groups(items, group, *key):
        if abs(count + len(members) - n_val) < abs(count - n_val):
            val_ids.update(id(m) for m in members)
            count += len(members)
    return [it for it in items if id(it) not in val_ids], [it for it in items if id(it) in val_ids]


def deal_groups(items: Sequence[T], group: Callable[[T], Hashable], k: int, *key: object) -> list[list[T]]:
    """Whole groups dealt to ``k`` parts, each (in a seeded order) to the part with the fewest items so far."""
    parts: list[list[T]] = [[] for _ in range(k)]
    for members in _seeded_groups(items, group, *key):
        min(parts, key=len).extend(members)
    return parts

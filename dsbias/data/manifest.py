"""The manifest: one row per sampled image, with its source label, split and native metadata.

Sampling (:func:`build_manifest`, drawing in :mod:`dsbias.data.sampling`): each source's items are visited in
a seeded random order (uniform over the whole source); each is decoded once, and the first ``train + val``
usable ones are kept: the first ``train`` for train, the next ``val`` for val (or each split from its own
order for a source with an official split). So the split is disjoint by construction and the same seed gives
the same manifest. Items that fail to decode are skipped and counted per source and reason; exact duplicates
are handled by ``data.dedup`` (:mod:`dsbias.data.dedup`) and counted in the summary.

With ``data.pseudo = K`` the single source gives ``K * (train + val)`` usable items, dealt round-robin to
K pseudo-sources (disjoint random splits of one source: Liu & He's memorisation control).

With ``data.group`` every row records its ``group`` (images that belong together) and the split is by group
(:mod:`dsbias.data.groups`); without it ``group`` is null: every image is its own group.

Rows are ordered train then val, and by source within a split. Row ``i`` is ``index = i`` everywhere
downstream (datasets, feature files, probes). A manifest written once (``tools/manifest.py``) is reused by
any run that sets ``data.manifest``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dsbias.data.config import DataConfig
from dsbias.data.groups import create_group_lookup
from dsbias.data.sampling import SPLITS, Probed, ShortSourceError, draw, probe_share
from dsbias.data.sources.registry import create_sources, expand_sources
from dsbias.errors import UserError
from dsbias.runs import RunDir, atomic_path, sha256_file, write_json
from dsbias.typedconfig import ConfigError, diff_keys, merge, to_dict

logger = logging.getLogger(__name__)

MANIFEST_VERSION = 3  # 3: rows carry ``group``
__all__ = ["SPLITS", "Manifest", "ManifestError", "ShortSourceError", "build_manifest", "decode_share",
           "load_or_build_manifest"]


class ManifestError(UserError, ValueError):
    """A manifest file is unreadable, or does not fit the config or the run dir; the message names the file."""


@dataclass
class Manifest:
    """Rows of sampled images (columns as lists) and the summary of how they were drawn.

    Attributes:
        sources: Label names; ``source_id`` indexes this list.
        rows: One dict per image: ``index, split, source, source_id, origin, item, group, width, height, format,
            bytes, sha1, mode`` (native size/format/bytes of the image as collected; sha1 of the bytes read;
            ``group`` null when the image is its own group).
        summary: Requested and obtained counts, skipped counts by reason, duplicates, seed, data config.
    """

    sources: list[str]
    rows: list[dict[str, Any]]
    summary: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.rows)

    def split_indices(self, split: str) -> np.ndarray:
        """Manifest rows of one split, in manifest order. ``[N_split]`` int64."""
        return np.array([r["index"] for r in self.rows if r["split"] == split], dtype=np.int64)

    def labels(self) -> np.ndarray:
        """Source id of every row. ``[N]`` int64."""
        return np.array([r["source_id"] for r in self.rows], dtype=np.int64)

    @property
    def has_groups(self) -> bool:
        """Some row has a group (``data.group`` was set when it was drawn)."""
        return any(r.get("group") is not None for r in self.rows)

    def group_codes(self) -> np.ndarray:
        """Group of every row as an int code ``[N]``: one code per (source, group); a row without a group gets a
        code of its own. Codes are shared by train and val, so a group on both sides shows."""
        codes: dict[tuple[int, str], int] = {}
        out = np.empty(len(self.rows), dtype=np.int64)
        for i, r in enumerate(self.rows):
            key = (r["source_id"], r["group"]) if r.get("group") is not None else (-1, str(i))
            out[i] = codes.setdefault(key, len(codes))
        return out

    def save(self, path: str | Path) -> None:
        """Write ``manifest.jsonl`` (rows) and ``manifest.json`` (summary, with the rows' sha256) atomically."""
        path = Path(path)
        with atomic_path(path) as tmp, open(tmp, "w") as f:
            for r in self.rows:
                f.write(json.dumps(r) + "\n")
        summary = {**self.summary, "sources": self.sources, "rows": len(self.rows),
                   "sha256": sha256_file(path), "format_version": MANIFEST_VERSION}
        self.summary = summary
        write_json(path.with_suffix(".json"), summary)

    @classmethod
    def load(cls, path: str | Path) -> Manifest:
        """Read a manifest written by :meth:`save`, checking rows against the summary."""
        path = Path(path)
        if not path.is_file() or not path.with_suffix(".json").is_file():
            raise ManifestError(f"{path}: no manifest here (it needs {path.name} and {path.with_suffix('.json').name}; "
                                "draw one with tools/manifest.py)")
        try:
            summary = json.loads(path.with_suffix(".json").read_text())
            with open(path) as f:
                rows = [json.loads(line) for line in f if line.strip()]
            ok = len(rows) == summary["rows"] and all(r["index"] == i for i, r in enumerate(rows))
        except (ValueError, KeyError, TypeError) as e:
            raise ManifestError(f"{path}: unreadable manifest ({type(e).__name__}: {e}) (draw it again with "
                                "tools/manifest.py, or use a new run dir)") from None
        if not ok:
            raise ManifestError(f"{path}: rows do not match {path.with_suffix('.json')} (edited or truncated? draw it "
                                "again, or use a new run dir)")
        return cls(sources=list(summary["sources"]), rows=rows, summary=summary)


def decode_share(data: DataConfig, rank: int, world: int) -> Probed:
    """Process ``rank`` of ``world``'s share of the decoding a manifest build needs (:func:`probe_share`).

    A build across processes (or nodes): every process calls this, the shares are gathered (``accelerate``'s
    ``gather_object``) and merged into one dict, and :func:`build_manifest` with ``known=`` that dict gives the
    manifest a single process would build, decoding only what the shares did not cover.
    """
    return probe_share(data, create_sources(data), rank, world)


def build_manifest(data: DataConfig, known: Probed | None = None) -> Manifest:
    """Sample every source, split train/val, de-duplicate and record native metadata.

    Args:
        data: The data config (sources, per-source counts, seed, pseudo, allow_fewer, dedup).
        known: Items already decoded by the processes of a distributed build (:func:`decode_share`, merged).

    Returns:
        The manifest (not yet saved).

    Raises:
        ShortSourceError: A source has too few usable images and ``allow_fewer`` is off.
    """
    t0 = time.perf_counter()
    expanded = expand_sources(data)
    readers = create_sources(data)
    d = draw(data, readers, create_group_lookup(data, readers), known)
    rows: list[dict[str, Any]] = []
    obtained: dict[str, dict[str, int]] = {}
    for split in SPLITS:
        for sid, lab in enumerate(d.labels):
            part = d.chosen[lab][split]
            obtained.setdefault(lab, {})[split] = len(part)
            for origin, item, info in part:
                group = d.groups[(origin, item)] if d.groups is not None else None
                rows.append({"index": len(rows), "split": split, "source": lab, "source_id": sid,
                             "origin": origin, "item": item, "group": group, "width": info.width,
                             "height": info.height,
                             "format": info.format, "bytes": info.bytes, "sha1": info.sha1, "mode": info.mode})
    cap = data.max_short_side
    above = Counter(r["source"] for r in rows if cap and min(r["width"], r["height"]) > cap)
    summary = {"seed": data.seed, "requested": {"train": data.per_source.train, "val": data.per_source.val},
               "obtained": obtained, "skipped": d.skipped, "duplicates": d.duplicates, "pseudo": data.pseudo,
               "source_kinds": {s.name: s.kind for s in expanded.sources},
               "groups": {"by": to_dict(data.group), **d.group_summary} if d.groups is not None else None,
               # The load-time cap, and per source how many rows are natively larger (resized when read,
               # unless their stored copy is already smaller, as in shards from tools/prepare.py).
               "max_short_side": cap,
               "native_above_cap": {lab: above[lab] for lab in d.labels} if cap else {},
               "build_seconds": round(time.perf_counter() - t0, 3), "data": to_dict(data)}
    return Manifest(sources=d.labels, rows=rows, summary=summary)


def expected_labels(data: DataConfig) -> list[str]:
    """The labels a manifest drawn with ``data`` has (expanded source names, or the pseudo-sources)."""
    names = [s.name for s in expand_sources(data).sources]
    return [f"{names[0]}-{j}" for j in range(data.pseudo)] if data.pseudo else names


def _given_manifest(data: DataConfig, path: Path) -> Manifest:
    """``data.manifest``, checked against the config's sources, copied to ``path`` (or checked against it)."""
    given = Manifest.load(data.manifest or "")
    want = expected_labels(data)
    if given.sources != want:
        raise ManifestError(f"data.manifest={data.manifest}: its sources {given.sources} differ from the config's "
                            f"{want} (give the sources it was drawn with: same names, same order)")
    drawn_cap = given.summary.get("max_short_side", 0)
    if drawn_cap != data.max_short_side:
        raise ManifestError(f"data.manifest={data.manifest}: drawn with data.max_short_side={drawn_cap}, this config "
                            f"has {data.max_short_side} (set data.max_short_side={drawn_cap}, or draw it again with "
                            f"tools/manifest.py data.max_short_side={data.max_short_side}: the same rows)")
    kinds = given.summary.get("source_kinds", {})
    expanded = {s.name: s.kind for s in expand_sources(data).sources}
    bad = sorted(n for n in kinds if n in expanded and kinds[n] != expanded[n])
    if bad:
        raise ManifestError(f"data.manifest={data.manifest}: source kinds differ for {bad}: "
                         f"manifest {[kinds[n] for n in bad]}, config {[expanded[n] for n in bad]}")
    given_group = given.summary.get("data", {}).get("group") or to_dict(type(data.group)())
    if given_group != to_dict(data.group):
        raise ManifestError(f"data.manifest={data.manifest}: drawn with data.group={given_group}, the config has "
                         f"{to_dict(data.group)}; draw the manifest again with the config's data.group")
    if path.exists() and path.with_suffix(".json").exists():
        here = Manifest.load(path)
        if here.summary.get("sha256") != given.summary.get("sha256"):
            raise ManifestError(f"{path}: holds another manifest than data.manifest={data.manifest} "
                                "(use a new run dir)")
        return here
    if path.resolve() != Path(data.manifest or "").resolve():
        copy = dataclasses.replace(given, summary={**given.summary, "copied_from": str(data.manifest)})
        copy.save(path)
    return given


NOT_SAMPLING_KEYS = {"num_workers", "cache_decoded", "transform", "anatomy", "crop_pct"}


def _with_defaults(old: dict[str, Any]) -> dict[str, Any]:
    """A data config recorded by an older dsbias, with the fields added since at their defaults (which draw the
    same images), so a run dir made before a new field stays resumable."""
    try:
        return to_dict(merge(DataConfig(), old, "manifest.json"))
    except ConfigError:
        return old


def load_or_build_manifest(data: DataConfig, path: str | Path, known: Probed | None = None) -> Manifest:
    """The manifest a run uses, saved at ``path`` (the run dir's ``manifest.jsonl``).

    With ``data.manifest`` set, that manifest (its sources checked against the config) is copied to ``path``.
    Otherwise the manifest at ``path`` if it was drawn with the same data config, else a new one saved there.

    Raises:
        ManifestError: ``path`` holds a manifest drawn with a different data config (names the first key), or
            ``data.manifest`` does not match the config's sources.
    """
    path = Path(path)
    if data.manifest:
        return _given_manifest(data, path)
    if path.exists() and path.with_suffix(".json").exists():
        manifest = Manifest.load(path)
        # Keys that change how images are used, not which are drawn, may differ (a transform, workers...).
        # max_short_side is a sampling key: the manifest records how its images are read (older ones: off).
        old, new = ({k: v for k, v in d.items() if k not in NOT_SAMPLING_KEYS}
                    for d in (_with_defaults({"max_short_side": 0, **manifest.summary.get("data", {})}), to_dict(data)))
        changed = sorted({k.split(".")[0] for k in diff_keys(old, new)})
        if changed:
            raise ManifestError(f"{path}: drawn with another data config ({', '.join('data.' + k for k in changed)} "
                                "differs) (use a new run dir, or the data settings it was drawn with)")
        return manifest
    manifest = build_manifest(data, known)
    manifest.save(path)
    logger.info("manifest: %d rows, %s -> %s", len(manifest), manifest.summary["obtained"], path)
    return manifest


def summary_text(manifest: Manifest, path: str | Path) -> str:
    """One screen: per source the counts, skips, formats and median native size; duplicates; where it went."""
    s = manifest.summary
    lines = [f"{'source':<16}{'train':>7}{'val':>6}  {'median WxH':>11}  formats; skipped"]
    for lab in manifest.sources:
        rows = [r for r in manifest.rows if r["source"] == lab]
        w = sorted(r["width"] for r in rows) or [0]
        h = sorted(r["height"] for r in rows) or [0]
        fmts = Counter(r["format"] for r in rows).most_common(3)
        origin = rows[0]["origin"] if rows else lab
        ob = s["obtained"][lab]
        lines.append(f"{lab:<16}{ob['train']:>7}{ob['val']:>6}  {w[len(w) // 2]:>5}x{h[len(h) // 2]:<5}  "
                     f"{', '.join(f'{f} {n}' for f, n in fmts)}; {s['skipped'].get(origin) or '-'}")
    if s.get("max_short_side"):
        above = ", ".join(f"{lab} {n}" for lab, n in s.get("native_above_cap", {}).items())
        lines.append(f"load-time cap: shorter side <= {s['max_short_side']} px (natively larger: {above})")
    dup = s.get("duplicates", {})
    lines.append(f"duplicates ({dup.get('policy')}): cross-source {dup.get('cross_source', 0)}, "
                 f"cross-split {dup.get('cross_split', 0)}, within-source {dup.get('within_source', 0)}; "
                 f"dropped {sum(dup.get('dropped', {}).values())}")
    if s.get("groups"):
        per = s["groups"]["per_source"]
        lines.append("groups (train/val): " + ", ".join(f"{lab} {g['train']}/{g['val']}" for lab, g in per.items())
                     + (f"; on both sides of an official split: {s['groups']['across_split']}"
                        if s["groups"].get("across_split") else ""))
    lines.append(f"{len(manifest)} rows in {s.get('build_seconds', 0):.1f}s -> {path}; "
                 f"use it with data.manifest={path}")
    return "\n".join(lines)


def make_manifest(data: DataConfig, out: str | Path) -> tuple[Manifest, Path]:
    """``tools/manifest.py``: draw a manifest from ``data`` and save it as ``<out>/manifest.jsonl``.

    Raises:
        ManifestError: ``data.manifest`` is set (the tool makes manifests; it does not read one).
    """
    if data.manifest:
        raise ManifestError("data.manifest: set, but the manifest tool draws a new manifest (unset it)")
    path = RunDir.at(out).manifest
    manifest = build_manifest(data)
    manifest.save(path)
    return manifest, path

"""The source registry: every kind by name, checked at config load, built into readers for a run.

The kinds are listed here explicitly (:data:`KINDS`); :func:`register_source` adds one at run time. A kind
whose one config entry stands for several sources (``imagefolder``, ``list``, ``parquet``, ``hf``) also gives
an ``expand`` function, and :func:`expand_sources` applies it before anything is sampled. A kind that needs an
optional extra (``parquet``, ``hf``, a ``.parquet`` list) is stopped at config load when the extra is missing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from dsbias.data.config import DataConfig, SourceConfig
from dsbias.data.sources import folder, hf, imagefolder, listfile, parquet, toy, webdataset
from dsbias.data.sources.base import Source, SourceKind, missing_extra
from dsbias.typedconfig import ConfigError

KINDS: dict[str, SourceKind] = {
    "folder": SourceKind(folder.create),
    "imagefolder": SourceKind(imagefolder.create, expand=imagefolder.expand),
    "webdataset": SourceKind(webdataset.create, item_path=webdataset.item_path, key=webdataset.key_value),
    "list": SourceKind(listfile.create, expand=listfile.expand, requires=listfile.requires,
                       column=listfile.column_value),
    "parquet": SourceKind(parquet.create, expand=parquet.expand, requires=parquet.requires,
                          column=parquet.column_value),
    "hf": SourceKind(hf.create, expand=hf.expand, requires=hf.requires, column=hf.column_value),
    "toy": SourceKind(toy.create, needs_path=False),
}


def register_source(
    kind: str,
    create: Callable[[SourceConfig, DataConfig], Source],
    expand: Callable[[SourceConfig, DataConfig], list[SourceConfig]] | None = None,
    needs_path: bool = True,
    requires: Callable[[SourceConfig], tuple[str, ...]] | None = None,
) -> None:
    """Make ``kind`` available as ``data.sources[i].kind`` (see :class:`~.base.SourceKind`)."""
    KINDS[kind] = SourceKind(create, expand, needs_path, requires)


def source_kinds() -> list[str]:
    """Registered source kinds."""
    return sorted(KINDS)


def check_source_count(pseudo: int, n: int) -> None:
    """``pseudo`` needs exactly one source; otherwise at least two are needed."""
    if pseudo and n != 1:
        raise ConfigError(f"data.pseudo={pseudo}: needs exactly one source, got {n}")
    if not pseudo and n < 2:
        raise ConfigError(f"data.sources: need at least two sources (or data.pseudo >= 2), got {n}")


def check_sources(data: DataConfig) -> None:
    """Config-time checks: every kind is known, has its path and its optional dependencies; the source count
    fits ``pseudo``.

    An entry that may stand for several sources is counted once its files have been looked at
    (:func:`expand_sources`).
    """
    for i, s in enumerate(data.sources):
        if s.kind not in KINDS:
            raise ConfigError(f"data.sources[{i}].kind: unknown kind '{s.kind}' (use one of: "
                              f"{', '.join(source_kinds())})")
        if KINDS[s.kind].needs_path and not s.path:
            raise ConfigError(f"data.sources[{i}].path: a {s.kind} source needs a path")
        for module in KINDS[s.kind].requires(s) if KINDS[s.kind].requires else ():
            if (pip := missing_extra(module)) is not None:
                raise ConfigError(f"data.sources[{i}] ({s.name}, kind {s.kind}): needs {module}, which is not "
                                  f"installed: {pip}")
    if not any(KINDS[s.kind].expand for s in data.sources):
        check_source_count(data.pseudo, len(data.sources))


def expand_sources(data: DataConfig) -> DataConfig:
    """The data config with every multi-source entry replaced by the sources it stands for.

    Raises:
        ConfigError: Duplicate names after expansion, or a source count that ``pseudo`` does not allow.
    """
    out: list[SourceConfig] = []
    for s in data.sources:
        kind = KINDS.get(s.kind)
        out.extend(kind.expand(s, data) if kind is not None and kind.expand else [s])
    names = [s.name for s in out]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise ConfigError(f"data.sources: names {dup} occur twice after expanding multi-source entries")
    check_source_count(data.pseudo, len(out))
    return dataclasses.replace(data, sources=out)


def create_source(cfg: SourceConfig, data: DataConfig) -> Source:
    """Build the source that ``cfg`` (an entry of the *expanded* ``data``) describes.

    Raises:
        ConfigError: Unknown kind (the message names the config key).
        FileNotFoundError: A missing folder or file.
    """
    if cfg.kind not in KINDS:
        raise ConfigError(f"data.sources[{cfg.name}].kind: unknown kind '{cfg.kind}' (use one of: "
                          f"{', '.join(source_kinds())})")
    return KINDS[cfg.kind].create(cfg, data)


def create_sources(data: DataConfig) -> dict[str, Source]:
    """All configured sources by name, in (expanded) config order."""
    data = expand_sources(data)
    return {s.name: create_source(s, data) for s in data.sources}

"""Typed YAML configs: dataclass trees filled from YAML files and ``key=value`` / ``group=name`` overrides.

This module knows no section of dsbias; each subsystem declares its own (``dsbias/data/config.py``,
``dsbias/engine/config.py``...) and :mod:`dsbias.config` assembles the root. A config is built in layers, each
a YAML mapping merged onto the current tree (:func:`merge`): dataclass defaults, then a file, then command-line
overrides in order. Inside any layer, a *string* where a section is expected names a preset: ``data: toy``
loads ``configs/data/toy.yaml`` into ``data`` (:func:`find_preset`).

Every key is checked against the dataclass fields and every value against the field's type; an error names
the key and the file (or ``command line``) it came from, in one line (:class:`ConfigError`).
"""

from __future__ import annotations

import dataclasses
import os
import re
import types
import typing
from pathlib import Path
from typing import Any, Literal

import yaml

from dsbias.errors import UserError


class ConfigError(UserError, ValueError):
    """A config key or value is wrong; the message names the key and where it came from."""


# ----------------------------------------------------------------------------------------------------------
# Presets and files
# ----------------------------------------------------------------------------------------------------------


def config_dirs() -> list[Path]:
    """Where presets (``configs/[<group>/]<name>.yaml``) are looked up, in order.

    ``$DSBIAS_CONFIGS`` first, then ``./configs``, then the ``configs/`` beside the installed package
    (a source checkout).
    """
    dirs = []
    if os.environ.get("DSBIAS_CONFIGS"):
        dirs.append(Path(os.environ["DSBIAS_CONFIGS"]))
    dirs.append(Path.cwd() / "configs")
    dirs.append(Path(__file__).resolve().parent.parent / "configs")
    return dirs


def find_preset(name: str | Path, group: str = "") -> Path:
    """The YAML file that a preset name or a path stands for.

    Args:
        name: A path to a YAML file (ends in ``.yaml``/``.yml``, or an existing file), or a preset name looked up
            as ``configs/<folder>/<name>.yaml`` (``classify/default`` works without a group).
        group: Dotted section the preset is for (``data``, ``method.supervised.augment``); its last part is the
            folder under ``configs/``. Empty for top-level presets (``pretrain``).

    Raises:
        ConfigError: No such file or preset (names where it looked).
    """
    what = f"{group}={name}" if group else f"preset '{name}'"
    p = Path(name).expanduser()
    if str(name).endswith((".yaml", ".yml")) or p.is_file():
        if not p.is_file():
            raise ConfigError(f"{what}: no such file")
        return p
    folder = group.split(".")[-1] if group else ""
    for d in config_dirs():
        cand = (d / folder if folder else d) / f"{name}.yaml"
        if cand.is_file():
            return cand
    tried = ", ".join(str(d / folder if folder else d) for d in config_dirs())
    raise ConfigError(f"{what}: no preset '{name}.yaml' in {tried}")


BOOL_TAG = "tag:yaml.org,2002:bool"
YAML11_BOOLS = {"yes": True, "no": False, "on": True, "off": False, "y": True, "n": False}


class ConfigLoader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2's booleans: only ``true``/``false`` (any case).

    PyYAML reads YAML 1.1, where ``yes``/``no``/``on``/``off`` are booleans too, so ``train.mixed_precision=no``
    (a text option whose default is "no") arrived as ``False`` and was refused. Here those words stay text; a
    ``bool`` field still takes them (:func:`_coerce`).
    """


ConfigLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != BOOL_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
ConfigLoader.add_implicit_resolver(BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


def load_yaml(stream: Any) -> Any:
    """Parse YAML text (or an open file) the way configs are read: :class:`ConfigLoader`."""
    return yaml.load(stream, Loader=ConfigLoader)  # noqa: S506 - a SafeLoader subclass


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping; an empty file is an empty mapping. Errors name the file, line and column."""
    try:
        with open(path) as f:
            data = load_yaml(f)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{path}: not valid YAML{where} ({problem})") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read ({e.strerror})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top, got {type(data).__name__}")
    return data


# ----------------------------------------------------------------------------------------------------------
# Typed merge
# ----------------------------------------------------------------------------------------------------------


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, key: str, origin: str) -> Any:
    """Check ``value`` against the annotation ``tp`` and convert where lossless (int -> float, list -> tuple)."""
    o = typing.get_origin(tp)
    args = typing.get_args(tp)

    def fail() -> ConfigError:
        return ConfigError(
            f"{key}: expected {_type_name(tp)}, got {type(value).__name__} {value!r} (from {origin})"
        )

    if tp is Any:
        return value
    if o in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, key, origin)
            except ConfigError:
                continue
        raise fail()
    if o is Literal:
        if value not in args:
            raise ConfigError(f"{key}: expected one of {list(args)}, got {value!r} (from {origin})")
        return value
    if o is list:
        if not isinstance(value, list | tuple):
            raise fail()
        return [_coerce(v, args[0], f"{key}[{i}]", origin) for i, v in enumerate(value)]
    if o is dict:
        if not isinstance(value, dict):
            raise fail()
        return {str(k): _coerce(v, args[1], f"{key}.{k}", origin) for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise fail()
        return merge(tp(), value, origin, prefix=key)
    if tp is bool:
        if isinstance(value, str) and value.lower() in YAML11_BOOLS:
            return YAML11_BOOLS[value.lower()]  # YAML 1.1's words, which the loader leaves as text
        if not isinstance(value, bool):
            raise fail()
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise fail()
        return value
    if tp is float:
        if isinstance(value, str):
            try:  # PyYAML (YAML 1.1) reads `3e-3` as text: accept any float literal for a float field
                return float(value)
            except ValueError:
                raise fail() from None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise fail()
        return float(value)
    if tp is str:
        if origin == "command line" and isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)  # `out=2024` on a command line means the text
        if not isinstance(value, str):
            raise fail()
        return value
    raise ConfigError(f"{key}: unsupported field type {tp}")


def merge(obj: Any, data: dict[str, Any], origin: str, prefix: str = "") -> Any:
    """Return a copy of dataclass ``obj`` with the mapping ``data`` merged in, checked against its types.

    Nested sections merge key by key; a string given for a section loads that group's preset file.

    Args:
        obj: A dataclass instance (not modified).
        data: Mapping of field names to values.
        origin: Where ``data`` came from, for error messages (a file path or ``command line``).
        prefix: Dotted key of ``obj`` inside the root config.

    Raises:
        ConfigError: An unknown key, a wrong type, or a missing preset.
    """
    hints = typing.get_type_hints(type(obj))
    names = {f.name for f in dataclasses.fields(obj)}
    changes = {}
    for k, v in data.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if k not in names:
            raise ConfigError(f"unknown key '{key}' (from {origin}); known: {', '.join(sorted(names))}")
        tp = hints[k]
        current = getattr(obj, k)
        if dataclasses.is_dataclass(tp):
            if isinstance(v, str):
                path = find_preset(v, group=key)
                changes[k] = merge(current, read_yaml(path), str(path), prefix=key)
            elif isinstance(v, dict):
                changes[k] = merge(current, v, origin, prefix=key)
            else:
                raise ConfigError(
                    f"{key}: expected a mapping or a preset name, got {type(v).__name__} (from {origin})"
                )
        else:
            changes[k] = _coerce(v, tp, key, origin)
    return dataclasses.replace(obj, **changes)


def parse_override(override: str) -> dict[str, Any]:
    """One command-line override as a nested mapping: ``a.b=value`` -> ``{a: {b: value}}`` (value as YAML)."""
    if "=" not in override:
        raise ConfigError(f"override '{override}': expected key=value")
    key, raw = override.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"override '{override}': empty key")
    try:
        value = load_yaml(raw) if raw != "" else ""
    except yaml.YAMLError:
        value = raw  # e.g. a path with a colon: keep it as text
    data: dict[str, Any] = {}
    node = data
    parts = key.split(".")
    for p in parts[:-1]:
        node = node.setdefault(p, {})
    node[parts[-1]] = value
    return data


def diff_keys(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two plain config dicts (:func:`to_dict` output), sorted."""
    if isinstance(old, dict) and isinstance(new, dict):
        return sorted(d for k in new.keys() | old.keys()
                      for d in diff_keys(old.get(k), new.get(k), f"{prefix}.{k}" if prefix else k))
    return [] if old == new else [prefix]


def to_dict(cfg: Any) -> dict[str, Any]:
    """A config as plain YAML-safe data (what ``config.yaml`` holds)."""
    return dataclasses.asdict(cfg)


def dump_yaml(cfg: Any) -> str:
    """A config as YAML text, keys in declaration order."""
    return yaml.safe_dump(to_dict(cfg), sort_keys=False, default_flow_style=None, width=110)

"""What the columnar kinds (``parquet``, ``hf``) share: tables with one encoded image per row.

An image column is a struct ``{bytes, path}`` (the Hugging Face ``Image`` feature, the same in parquet exports
and in ``save_to_disk`` Arrow files) or a plain binary column. A row's image is its cell's bytes; a null cell,
or a struct with neither bytes nor a path, is the ``null_image`` reason; a struct with a path but no bytes
(``datasets``' imagefolder loader stores local paths) is read from that file.

Rows are drawn in a seeded order that is generated lazily (:func:`seeded_rows`), so drawing a few thousand
rows of a table with a billion costs a few thousand steps, not a billion-element permutation. ``pyarrow`` is an
optional dependency: it is imported inside the functions, which only the columnar kinds call.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from dsbias.data.decode import DecodeError
from dsbias.seeds import stable_seed
from dsbias.typedconfig import ConfigError

# Columns that record the native image, as tools/prepare.py writes them (the webdataset kind's .json fields).
NATIVE_COLUMNS = ("original_width", "original_height", "original_format", "original_bytes")
# A source column with more values than this is almost surely not a dataset name (a URL, a caption, an id):
# stop rather than make thousands of sources.
MAX_SOURCES = 1000


def is_image_type(t: Any) -> bool:
    """An Arrow type that holds encoded images: binary, or a struct with a binary ``bytes`` field."""
    import pyarrow as pa

    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return True
    if pa.types.is_struct(t):
        i = t.get_field_index("bytes")
        return i >= 0 and (pa.types.is_binary(t.field(i).type) or pa.types.is_large_binary(t.field(i).type))
    return False


def image_column(schema: Any, wanted: str, key: str, where: str | Path) -> str:
    """The image column of an Arrow ``schema``: ``wanted``, or the first column that holds images.

    Args:
        schema: A ``pyarrow.Schema``.
        wanted: The configured column ("": find it).
        key: The config key, for messages (``data.sources[cc].image_column``).
        where: The file or dataset the schema belongs to, for messages.

    Raises:
        ConfigError: No such column, a column that holds no images, or none found; names the columns there.
    """
    cols = ", ".join(f"{f.name} ({f.type})" for f in schema)
    if wanted:
        if wanted not in schema.names:
            raise ConfigError(f"{key}: no column '{wanted}' in {where}; its columns: {cols}")
        if not is_image_type(schema.field(wanted).type):
            raise ConfigError(f"{key}: column '{wanted}' of {where} is {schema.field(wanted).type}, not binary or "
                              f"a {{bytes, path}} struct; its columns: {cols}")
        return wanted
    for f in schema:
        if is_image_type(f.type):
            return f.name
    raise ConfigError(f"{key}: {where} has no image column (binary or a {{bytes, path}} struct); its columns: "
                      f"{cols}; set {key.rsplit('.', 1)[-1]}")


def cell_bytes(cell: Any, folder: Path) -> bytes:
    """The encoded image of one cell (a ``pyarrow`` scalar of an image column).

    Args:
        cell: The scalar.
        folder: Where a relative ``path`` of a struct cell without bytes is looked up (the data file's folder).

    Raises:
        DecodeError: ``null_image`` for a null cell or a struct with neither bytes nor path; ``missing`` for a
            path that cannot be read.
    """
    value = cell.as_py()
    if isinstance(value, dict):
        data, path = value.get("bytes"), value.get("path")
        if data is None and path:
            try:
                return (folder / path).read_bytes()  # an absolute path ignores the folder
            except OSError as e:
                raise DecodeError("missing", f"{path}: {e.strerror}") from None
        value = data
    if value is None:
        raise DecodeError("null_image")
    return value


def native_meta(table: Any, row: int) -> dict[str, Any]:
    """The native-metadata columns of one row of ``table`` that it has (see :data:`NATIVE_COLUMNS`)."""
    return {c: table.column(c)[row].as_py() for c in NATIVE_COLUMNS if c in table.column_names}


def seeded_rows(n: int, seed: int, *key: object, block: int = 4096) -> Iterator[int]:
    """``0..n-1`` in a uniformly random order that depends only on ``seed`` and ``key``, generated lazily.

    A Fisher-Yates shuffle that remembers only the positions it has displaced: the first ``k`` rows cost
    O(k) time and memory whatever ``n`` is, and every order of the ``n`` rows is equally likely.
    """
    rng = np.random.default_rng(stable_seed("order", seed, *key))
    moved: dict[int, int] = {}  # position -> the row now there, for positions that differ from their row
    for start in range(0, n, block):
        stop = min(n, start + block)
        picks = rng.integers(np.arange(start, stop), n).tolist()  # step i swaps position i with one in [i, n)
        for i, j in zip(range(start, stop), picks):
            here = moved.pop(i, i)  # position i is never looked at again
            if j == i:
                yield here
            else:
                yield moved.get(j, j)
                moved[j] = here


def rows_by_value(values: Any, names: list[str] | None = None) -> tuple[dict[str, np.ndarray], int]:
    """Rows of each distinct value of a column, and how many rows are null.

    Args:
        values: A ``pyarrow`` array or chunked array (strings, integers...).
        names: Class names for an integer class-label column (value ``i`` is ``names[i]``).

    Returns:
        ``({value as str: sorted row numbers [n_value] int64}, null count)``.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    enc = pc.dictionary_encode(values)
    codes = pc.fill_null(enc.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)
    labels = [str(v) if names is None or not 0 <= v < len(names) else names[v] for v in enc.dictionary.to_pylist()]
    order = np.argsort(codes, kind="stable")  # rows grouped by value, ascending within a value
    bounds = np.searchsorted(codes[order], np.arange(len(labels) + 1))  # nulls (-1) | value 0 | value 1 | ...
    out: dict[str, np.ndarray] = {}
    for c, label in enumerate(labels):
        part = order[bounds[c]:bounds[c + 1]]
        out[label] = np.sort(np.concatenate([out[label], part])) if label in out else part  # 1 and "1": one name
    return out, int(bounds[0])


def check_source_count(values: dict[str, np.ndarray], key: str, where: str | Path) -> None:
    """Stop when a source column has more distinct values than :data:`MAX_SOURCES`."""
    if len(values) > MAX_SOURCES:
        raise ConfigError(f"{key}: column has {len(values)} distinct values in {where} (more than {MAX_SOURCES}): "
                          f"not a source name; set source_column to the column that names the dataset, or to ''")


def hf_class_names(schema: Any, column: str) -> list[str] | None:
    """The class names of a ``ClassLabel`` column, from the ``huggingface`` metadata that ``datasets`` writes
    into a parquet or Arrow schema (None when the column is not a class label)."""
    meta = (schema.metadata or {}).get(b"huggingface")
    if not meta:
        return None
    try:
        feature = json.loads(meta)["info"]["features"][column]
    except (ValueError, KeyError, TypeError):
        return None
    if isinstance(feature, dict) and feature.get("_type") == "ClassLabel" and "names" in feature:
        return [str(n) for n in feature["names"]]
    return None

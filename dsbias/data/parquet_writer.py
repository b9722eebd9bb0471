"""``tools/prepare.py --format parquet``: samples into parquet shards in the Hugging Face layout.

One row per image: ``key``, ``image`` as a ``{bytes, path}`` struct (the ``datasets`` Image feature, declared in
the schema's ``huggingface`` metadata, so ``datasets.load_dataset("parquet", ...)`` decodes it), ``source``,
``item`` and the same native-metadata fields as a tar shard's ``.json`` (``original_width`` ... ``format``),
which the ``parquet`` kind reads back as the manifest's native size. Row groups hold ``row_group_size`` rows:
reading one image reads its row group's image column, so small groups keep random reads cheap.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from dsbias.data.sources.base import import_extra

# (column, Arrow type name, datasets dtype) of every column after ``key`` and ``image``.
FIELDS = [("source", "string"), ("item", "string"), ("original_width", "int64"), ("original_height", "int64"),
          ("original_format", "string"), ("original_bytes", "int64"), ("original_sha1", "string"),
          ("original_mode", "string"), ("width", "int64"), ("height", "int64"), ("format", "string")]


def schema() -> Any:
    """The shards' Arrow schema, with the ``datasets`` features in its metadata."""
    pa = import_extra("pyarrow", "tools/prepare.py --format parquet")
    fields = [("key", pa.string()), ("image", pa.struct([("bytes", pa.binary()), ("path", pa.string())]))]
    fields += [(name, getattr(pa, typ)()) for name, typ in FIELDS]
    features = {"key": {"dtype": "string", "_type": "Value"}, "image": {"_type": "Image"},
                **{name: {"dtype": typ, "_type": "Value"} for name, typ in FIELDS}}
    return pa.schema(fields, metadata={"huggingface": json.dumps({"info": {"features": features}})})


class ParquetShardWriter:
    """Samples into ``<folder>/<prefix>-NNNNN.parquet``, ``shard_size`` per file, ``row_group_size`` per row
    group; each file is written under a temporary name and renamed when complete (as the tar writer does)."""

    def __init__(self, folder: Path, prefix: str, shard_size: int, row_group_size: int) -> None:
        self.pa = import_extra("pyarrow", "tools/prepare.py --format parquet")
        self.pq = import_extra("pyarrow.parquet", "tools/prepare.py --format parquet")
        self.folder, self.prefix, self.shard_size, self.row_group_size = folder, prefix, shard_size, row_group_size
        self.schema = schema()
        self.shards: list[Path] = []
        self.count = 0
        self._rows: list[dict[str, Any]] = []
        self._writer = None
        folder.mkdir(parents=True, exist_ok=True)

    def add(self, body: bytes, ext: str, meta: dict[str, Any]) -> None:
        """Add one image (its bytes, file extension and metadata) under the next key."""
        if self.count % self.shard_size == 0:
            self._finish()
            self.shards.append(self.folder / f"{self.prefix}-{len(self.shards):05d}.parquet")
            self._writer = self.pq.ParquetWriter(self._tmp(self.shards[-1]), self.schema)
        key = f"{self.count:09d}"
        row = {"key": key, "image": {"bytes": body, "path": f"{key}.{ext}"}, **{f: meta.get(f) for f, _ in FIELDS}}
        row["format"] = meta.get("format", meta.get("original_format"))  # kept bytes: the original format
        self._rows.append(row)
        self.count += 1
        if len(self._rows) == self.row_group_size:
            self._flush()

    @staticmethod
    def _tmp(path: Path) -> Path:
        return path.with_name(f".{path.name}.{os.getpid()}.tmp")  # two writers never share a temporary file

    def _flush(self) -> None:
        if self._rows:
            table = self.pa.Table.from_pylist(self._rows, schema=self.schema)
            self._writer.write_table(table, row_group_size=self.row_group_size)
            self._rows = []

    def _finish(self) -> None:
        if self._writer is not None:
            self._flush()
            self._writer.close()
            os.replace(self._tmp(self.shards[-1]), self.shards[-1])
            self._writer = None

    def close(self) -> None:
        """Complete the last shard."""
        self._finish()

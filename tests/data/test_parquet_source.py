"""The parquet kind reads the same images as a direct read (struct and binary columns, several row groups),
skips bad rows, files and row groups alone and counts them, names missing columns, expands a source column,
and draws rows uniformly with a seed without reading them."""

from __future__ import annotations

import io
import itertools
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import noise_png, write_images, write_parquet
from PIL import Image
from scipy.stats import chisquare

from dsbias.config import ConfigError, load_config
from dsbias.data.decode import content_hash
from dsbias.data.manifest import build_manifest
from dsbias.data.sources import rowgroups
from dsbias.data.sources.columnar import seeded_rows
from dsbias.data.sources.registry import create_sources, expand_sources


def cfg_with(sources: str, *over: str):
    return load_config(None, [f"data.sources={sources}", *over])


def pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def direct_cell(path: Path, column: str, group: int, row: int):
    """The cell as pyarrow's whole-file reader sees it: the row-group offset added by hand."""
    md = pq.read_metadata(path)
    offset = sum(md.row_group(g).num_rows for g in range(group))
    return pq.read_table(path).column(column)[offset + row].as_py()


@pytest.fixture
def two_layouts(tmp_path: Path) -> dict[str, Path]:
    """A: struct ``image`` column (13 rows, row groups of 5) with native metadata for even rows. B: two files
    with a plain binary column after a string column (row groups of 4)."""
    n = 13
    write_parquet(tmp_path / "a" / "part-0.parquet", {
        "caption": [f"c{i}" for i in range(n)],
        "image": [{"bytes": noise_png(i), "path": f"{i}.png"} for i in range(n)],
        "original_width": [700 + i if i % 2 == 0 else None for i in range(n)],
        "original_height": [500 if i % 2 == 0 else None for i in range(n)],
        "original_format": ["JPEG" if i % 2 == 0 else None for i in range(n)]}, row_group_size=5)
    for k in range(2):
        write_parquet(tmp_path / "b" / "sub" / f"b-{k}.parquet",
                      {"key": [f"{k}{i}" for i in range(9)], "jpg": [noise_png(100 + 10 * k + i) for i in range(9)]},
                      row_group_size=4)
    return {"a": tmp_path / "a", "b": tmp_path / "b" / "**" / "b-*.parquet"}


def test_struct_and_binary_columns_give_the_same_images_as_a_direct_read(two_layouts):
    cfg = cfg_with(f"[{{name: a, kind: parquet, path: '{two_layouts['a']}'}}, "
                   f"{{name: b, kind: parquet, path: '{two_layouts['b']}'}}]", "data.per_source={train: 10, val: 3}")
    m = build_manifest(cfg.data)
    readers = create_sources(cfg.data)
    assert readers["b"].index.rows == 18 and len(readers["a"].index.starts) == 4  # 3 row groups of 5, 5, 3
    base = {"a": Path(two_layouts["a"]), "b": Path(two_layouts["b"]).parent.parent}
    for r in m.rows:
        file, rest = r["item"].split("::")
        group, row = map(int, rest.split(":"))
        col = "image" if r["source"] == "a" else "jpg"
        cell = direct_cell(base[r["source"]] / file, col, group, row)
        data = cell["bytes"] if col == "image" else cell
        img, info = readers[r["origin"]].read(r["item"])
        assert np.array_equal(np.asarray(img), pixels(data))
        assert r["sha1"] == content_hash(data) == info.sha1
        if r["source"] == "a":
            i = int(direct_cell(base["a"] / file, "caption", group, row)[1:])
            native = (700 + i, 500, "JPEG") if i % 2 == 0 else (12 + i % 3, 12, "PNG")
            assert (r["width"], r["height"], r["format"]) == native  # the prepare.py columns, when present
    assert m.summary["obtained"] == {"a": {"train": 10, "val": 3}, "b": {"train": 10, "val": 3}}


def _break_row_group(path: Path, group: int, column: str) -> None:
    """Overwrite the page header of one column chunk of one row group (the file stays readable)."""
    md = pq.read_metadata(path)
    names = [md.schema.column(j).path for j in range(md.num_columns)]
    chunk = md.row_group(group).column(names.index(column))
    raw = bytearray(path.read_bytes())
    raw[chunk.data_page_offset: chunk.data_page_offset + 24] = b"\xff" * 24
    path.write_bytes(bytes(raw))


def test_bad_cells_files_and_row_groups_are_skipped_alone_and_counted(tmp_path):
    good = [noise_png(i) for i in range(12)]
    cells = [{"bytes": b, "path": None} for b in good]
    cells[1] = None  # a null cell
    cells[4] = {"bytes": None, "path": None}  # a struct with nothing in it
    cells[6] = {"bytes": b"", "path": None}
    cells[9] = {"bytes": b"\x89PNG not really", "path": None}
    write_parquet(tmp_path / "d" / "0.parquet", {"image": cells}, row_group_size=12)
    broken = write_parquet(tmp_path / "d" / "1.parquet", {"image": [{"bytes": noise_png(50 + i), "path": None}
                                                                     for i in range(9)]}, row_group_size=3)
    _break_row_group(broken, 1, "image.bytes")
    (tmp_path / "d" / "2.parquet").write_bytes(b"PAR1 this is not parquet PAR1")
    write_images(tmp_path / "f", 4, (9, 9, 9))
    cfg = cfg_with(f"[{{name: p, kind: parquet, path: '{tmp_path / 'd'}'}}, "
                   f"{{name: f, kind: folder, path: '{tmp_path / 'f'}'}}]",
                   "data.per_source={train: 30, val: 0}", "data.allow_fewer=true", "data.dedup=ignore")
    m = build_manifest(cfg.data)
    assert m.summary["skipped"]["p"] == {"null_image": 2, "empty": 1, "not_an_image": 1, "corrupt_row_group": 3,
                                         "unreadable_file": 1}
    assert m.summary["obtained"]["p"]["train"] == 12 - 4 + 9 - 3  # every other row, each once
    assert len({r["item"] for r in m.rows}) == len(m.rows)
    assert not any(r["item"].startswith("1.parquet::1:") for r in m.rows)  # the broken row group alone is lost


def test_missing_and_wrong_columns_are_one_line_naming_the_columns(tmp_path, capsys):
    from dsbias.cli.manifest import main

    write_parquet(tmp_path / "x.parquet", {"url": ["u"], "caption": ["c"]}, row_group_size=1)
    write_parquet(tmp_path / "y.parquet", {"img": [noise_png(0)], "caption": ["c"]}, row_group_size=1)
    entry = f"[{{name: x, kind: parquet, path: '{tmp_path / 'x.parquet'}'}}, {{name: y, kind: parquet, " \
            f"path: '{tmp_path / 'y.parquet'}', image_column: %s}}]"
    with pytest.raises(ConfigError, match=r"data.sources\[x\].image_column: .*x.parquet has no image column .*"
                                          r"url \(string\), caption \(string\)"):
        build_manifest(cfg_with(entry % "img").data)
    with pytest.raises(ConfigError, match=r"image_column: no column 'image' in .*y.parquet; its columns: "
                                          r"img \(binary\), caption \(string\)$"):
        create_sources(cfg_with(entry.replace("x.parquet", "y.parquet") % "image").data)["y"].sample_order(0)
    with pytest.raises(ConfigError, match="column 'caption' of .* is string, not binary"):
        create_sources(cfg_with(entry.replace("x.parquet", "y.parquet") % "caption").data)["y"].sample_order(0)
    assert main([f"data.sources={entry % 'img'}", "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: data.sources[x].image_column") and "\n" not in err
    with pytest.raises(ConfigError, match="no parquet files at"):
        create_sources(cfg_with(f"[{{name: a, kind: parquet, path: '{tmp_path}/none-*.parquet'}}, "
                                f"{{name: b, kind: parquet, path: '{tmp_path}/x.parquet'}}]").data)


def test_source_column_gives_one_source_per_value_and_class_labels_their_names(tmp_path):
    n = 30
    write_parquet(tmp_path / "mix" / "0.parquet", {"image": [noise_png(i) for i in range(n)],
                                                   "source": ["cc" if i % 3 else "yfcc" for i in range(n)]},
                  row_group_size=7)
    odd = write_parquet(tmp_path / "mix" / "1.parquet", {"image": [noise_png(50 + i) for i in range(9)],
                                                         "source": [None] + ["cc"] * 8}, row_group_size=3)
    _break_row_group(odd, 2, "source")  # its 3 rows have no known source: left out, counted once
    cfg = cfg_with(f"[{{name: mix, kind: parquet, path: '{tmp_path / 'mix'}'}}]", "data.per_source={train: 6, val: 2}")
    assert [s.name for s in expand_sources(cfg.data).sources] == ["cc", "yfcc"]
    m = build_manifest(cfg.data)
    table = pq.read_table(tmp_path / "mix" / "0.parquet")
    for r in m.rows:
        group, row = map(int, r["item"].split("::")[1].split(":"))
        if r["item"].startswith("1.parquet"):
            assert r["source"] == "cc" and (group, row) not in ((0, 0), (2, 0), (2, 1), (2, 2))
        else:
            assert table.column("source")[7 * group + row].as_py() == r["source"]
    assert m.summary["skipped"] == {s: {"unreadable_row_group": 1, "null_source": 1} for s in ("cc", "yfcc")}
    assert create_sources(cfg.data)["cc"].rows.size == 20 + 5  # 2/3 of file 0, the readable non-null rows of 1
    # A datasets ClassLabel column (int codes + names in the schema metadata) names the sources by class.
    meta = {b"huggingface": json.dumps({"info": {"features": {
        "image": {"_type": "Image"}, "label": {"names": ["laion", "coyo"], "_type": "ClassLabel"}}}}).encode()}
    schema = pa.schema([("image", pa.binary()), ("label", pa.int64())], metadata=meta)
    write_parquet(tmp_path / "cl.parquet", {"image": [noise_png(i) for i in range(8)],
                                            "label": [i % 2 for i in range(8)]}, 3, schema=schema)
    cl = cfg_with(f"[{{name: c, kind: parquet, path: '{tmp_path / 'cl.parquet'}', source_column: label}}]")
    assert [s.name for s in expand_sources(cl.data).sources] == ["coyo", "laion"]
    off = cfg_with(f"[{{name: a, kind: parquet, path: '{tmp_path / 'mix'}', source_column: ''}}, "
                   f"{{name: b, kind: parquet, path: '{tmp_path / 'cl.parquet'}'}}]")
    assert [s.name for s in expand_sources(off.data).sources] == ["a", "b"]  # '' reads the files as one source
    write_parquet(tmp_path / "mix" / "2.parquet", {"image": [noise_png(0)]}, row_group_size=1)
    with pytest.raises(ConfigError, match=r"source_column: 'source' is in some files but not in .*2.parquet"):
        expand_sources(cfg.data)


def test_order_is_seeded_uniform_over_all_rows_of_all_files_and_reads_no_row(tmp_path, monkeypatch):
    for k, n in enumerate((17, 23)):
        write_parquet(tmp_path / f"{k}.parquet", {"image": [b"x"] * n}, row_group_size=5)
    cfg = cfg_with(f"[{{name: a, kind: parquet, path: '{tmp_path}'}}, {{name: b, kind: parquet, path: '{tmp_path}'}}]")
    monkeypatch.setattr(rowgroups, "read", lambda *a, **k: pytest.fail("sampling read a row group"))
    src = create_sources(cfg.data)["a"]
    order = list(src.sample_order(3))
    assert len(set(order)) == 40 and order == list(src.sample_order(3)) != list(src.sample_order(4))
    assert order != list(create_sources(cfg.data)["b"].sample_order(3))  # sources draw independently
    draws, k = 2000, 5
    counts = Counter(x for seed in range(draws) for x in itertools.islice(src.sample_order(seed), k))
    assert sorted(counts) == sorted(order)  # never "the first N rows"
    p = chisquare([counts[x] for x in order]).pvalue
    assert p > 1e-3, f"inclusion counts not uniform (chi-square p={p:.2g})"


def test_seeded_rows_is_an_exactly_uniform_lazy_permutation():
    n = 4
    perms = Counter(tuple(seeded_rows(n, seed)) for seed in range(4800))
    assert len(perms) == 24 and all(sorted(p) == list(range(n)) for p in perms)
    assert chisquare(list(perms.values())).pvalue > 1e-3  # all 24 orders equally likely
    first = list(itertools.islice(seeded_rows(10**12, 7), 1000))  # a trillion rows: no permutation array
    assert len(set(first)) == 1000 and max(first) < 10**12 and first == list(itertools.islice(seeded_rows(10**12, 7),
                                                                                              1000))


def test_keys_of_other_kinds_are_refused_not_ignored(tmp_path):
    with pytest.raises(ConfigError, match=r"data.sources\[0\].split: only hf sources have splits .*test-\*.parquet"):
        cfg_with(f"[{{name: a, kind: parquet, path: '{tmp_path}', split: test}}, {{name: b, kind: toy}}]")
    with pytest.raises(ConfigError, match=r"data.sources\[1\].image_column: only parquet and hf sources"):
        cfg_with(f"[{{name: a, kind: toy}}, {{name: b, kind: folder, path: '{tmp_path}', image_column: img}}]")

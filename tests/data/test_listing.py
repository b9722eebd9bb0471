"""Folder listing under symlinks (issue 13, item 1): each real directory and file once, loops counted."""

from __future__ import annotations

import os
import threading
from collections import Counter

from conftest import write_images

from dsbias.config import load_config
from dsbias.data.manifest import build_manifest
from dsbias.data.sources.base import list_images


def _listed(root, timeout=20.0):
    """``list_images`` in a thread, so a regression to an endless walk fails the test instead of hanging it."""
    out: dict = {}
    t = threading.Thread(target=lambda: out.update(files=list_images(root, out.setdefault("c", Counter()))),
                         daemon=True)
    t.start()
    t.join(timeout)
    assert not t.is_alive(), "listing did not end (symlink loop followed?)"
    return out["files"], out["c"]


def test_two_loops_end_and_are_counted(tmp_path):
    write_images(tmp_path / "a", 5, (90, 90, 90))
    os.symlink(".", tmp_path / "a" / "l1")  # os.walk(followlinks=True) never ends on two of these
    os.symlink(".", tmp_path / "a" / "l2")
    files, skipped = _listed(tmp_path / "a")
    assert files == [f"img_{i:04d}.png" for i in range(5)]
    assert skipped == Counter(symlink_loop=2)


def test_each_real_dir_and_file_once(tmp_path):
    root = tmp_path / "src"
    write_images(root / "sub", 4, (90, 90, 90))
    write_images(tmp_path / "elsewhere", 3, (0, 200, 0))
    os.symlink(".", root / "dirloop")  # a loop
    os.symlink("sub", root / "alias")  # a second name for a folder already listed
    os.symlink(tmp_path / "elsewhere", root / "ext")  # a folder outside root: listed once, under its link
    os.symlink("sub/img_0000.png", root / "same.png")  # a second name for a file
    os.link(root / "sub" / "img_0001.png", root / "hard.png")  # a hard link: the same file
    os.symlink("missing.png", root / "dangling.png")
    files, skipped = _listed(root)
    assert len(files) == len(set(files)) == 7
    assert sum(f.startswith("ext/") for f in files) == 3
    assert len({os.stat(root / f).st_ino for f in files}) == 7  # no file twice under another name
    assert skipped == Counter(symlink_loop=1, linked_twice=3, dangling_link=1)
    assert _listed(root)[0] == files  # the same listing every time


def test_loop_counted_in_manifest_summary(tmp_path):
    write_images(tmp_path / "a", 12, (200, 0, 0))
    write_images(tmp_path / "b", 12, (0, 0, 200), seed=1)
    os.symlink(".", tmp_path / "a" / "dirloop")
    srcs = ", ".join(f"{{name: {n}, kind: folder, path: '{tmp_path / n}'}}" for n in "ab")
    cfg = load_config(None, [f"data.sources=[{srcs}]", "data.per_source={train: 8, val: 4}", "data.num_workers=0"])
    m = build_manifest(cfg.data)
    assert m.summary["skipped"]["a"]["symlink_loop"] == 1
    a_items = [r["item"] for r in m.rows if r["source"] == "a"]
    assert len(set(a_items)) == 12 and not any("dirloop" in i for i in a_items)
    assert m.summary["duplicates"]["within_source"] == 0

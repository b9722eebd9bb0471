"""A manifest built across processes (each decoding its share) is the single-process manifest."""

from __future__ import annotations

import os
import socket

import pytest
import torch.distributed as dist
import torch.multiprocessing as mp
from conftest import write_images

from dsbias.config import load_config
from dsbias.data import sampling
from dsbias.data.manifest import Manifest, build_manifest, decode_share

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _cfg(tmp_path):
    roots = {"red": tmp_path / "red", "blue": tmp_path / "blue"}
    write_images(roots["red"], 30, (200, 60, 60), seed=1)
    write_images(roots["blue"], 30, (60, 60, 200), seed=2)
    (roots["red"] / "broken.png").write_bytes(b"not an image")  # a failure: refilled from the stream
    (roots["blue"] / "dup.png").write_bytes((roots["red"] / "img_0003.png").read_bytes())  # a cross-source dup
    src = "[" + ", ".join(f"{{name: {n}, kind: folder, path: '{p}'}}" for n, p in roots.items()) + "]"
    return load_config(None, [f"data.sources={src}", "data.per_source={train: 18, val: 6}", "data.num_workers=1"]).data


def _same(a: Manifest, b: Manifest) -> None:
    assert a.rows == b.rows and a.sources == b.sources
    def kept(m: Manifest) -> dict:
        return {k: v for k, v in m.summary.items() if k != "build_seconds"}

    assert kept(a) == kept(b)


def test_shares_merged_give_the_single_process_manifest(tmp_path, monkeypatch):
    data = _cfg(tmp_path)
    single = build_manifest(data)
    shares = [decode_share(data, r, 3) for r in range(3)]
    assert all(not set(a) & set(b) for i, a in enumerate(shares) for b in shares[i + 1:])  # disjoint shares
    known = {k: v for s in shares for k, v in s.items()}
    assert any(isinstance(v, str) for v in known.values())  # the broken file's reason travels too
    decoded = []
    real = sampling.Stream._probe
    monkeypatch.setattr(sampling.Stream, "_probe",
                        lambda self, item: decoded.append(item) or real(self, item)
                        if (self.source.name, item) not in self.known else real(self, item))
    _same(build_manifest(data, known), single)
    assert len(decoded) < len(single) // 4  # only refills are decoded by the building process


def _worker(rank: int, world: int, port: int, data, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    shares = [None] * world
    dist.all_gather_object(shares, decode_share(data, rank, world))
    if rank == 0:
        build_manifest(data, {k: v for s in shares for k, v in s.items()}).save(out)
    dist.barrier()
    dist.destroy_process_group()


def test_two_processes_build_the_single_process_manifest(tmp_path):
    data = _cfg(tmp_path)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "two" / "manifest.jsonl"
    out.parent.mkdir()
    mp.start_processes(_worker, args=(2, port, data, str(out)), nprocs=2, start_method="fork")
    build_manifest(data).save(tmp_path / "one.jsonl")
    one, two = Manifest.load(tmp_path / "one.jsonl"), Manifest.load(out)
    _same(one, two)
    assert one.summary["sha256"] == two.summary["sha256"]

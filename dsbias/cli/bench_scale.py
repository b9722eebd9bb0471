"""``python tools/bench_scale.py [--rows 1000000] [--queries 10000] [--dim 768] [--images 200000] [--only ...]``

Scale rehearsal: kNN, the streamed linear probe and the clustering probe on memory-mapped features of
``--rows`` x ``--dim`` (float16 and float32 on disk), feature extraction from ~500-px JPEGs, and the manifest
build over ``--images`` small images in tar shards; time, peak RSS and the extrapolation to Liu & He's scale.
Writes its files under ``--dir`` (default: the system temp dir) and deletes them; the float32 features at the
defaults take 3 GiB of disk.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from dsbias.bench import scale
from dsbias.bench.timer import machine_line
from dsbias.cli import args as cli

PAPER_ROWS, PAPER_QUERIES, PAPER_IMAGES = 3_000_000, 30_000, 3_000_000  # 3 sources x (1M train, 10k val)
NODE_CORES, NODE_GPUS = 64, 8
STAGES = ("knn", "linear", "cluster", "extract", "manifest")


def memory(r: dict) -> str:
    """The peak memory cell: the process's own, then all it had resident (the memory-mapped features' file pages
    and shared pages too, which the kernel can drop: a memory-mapped file shows up here, not in the first)."""
    return f"{r['peak_private_gib']:.2f} ({r['peak_rss_gib']:.2f})"


def minutes_or_hours(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


@cli.guarded
def main(argv: list[str]) -> int:
    p = cli.parser("tools/bench_scale.py", __doc__, config=False)
    p.add_argument("--rows", type=int, default=1_000_000, help="feature rows (train)")
    p.add_argument("--queries", type=int, default=10_000, help="kNN queries (val rows)")
    p.add_argument("--dim", type=int, default=768)
    p.add_argument("--dtypes", nargs="+", default=["float16", "float32"], choices=["float16", "float32"])
    p.add_argument("--images", type=int, default=200_000, help="images in the generated webdataset")
    p.add_argument("--processes", type=int, nargs="+", default=[1, 2], help="manifest build processes to time")
    p.add_argument("--only", nargs="+", choices=STAGES, default=list(STAGES))
    p.add_argument("--extract-images", type=int, default=128, help="~500-px JPEGs the extraction stage reads")
    p.add_argument("--backbone", default="timm:vit_small_patch16_224", help="the extraction stage's backbone "
                   "(random init, nothing downloaded)")
    p.add_argument("--gpu-img-per-s", type=float, default=None,
                   help="one GPU's extraction images/s with the same --backbone (tools/bench_extract.py on a GPU "
                        "machine): gives the 8-GPU extrapolation")
    p.add_argument("--dir", default=None, help="where to write the temporary files (default: system temp)")
    args = cli.parse(p, argv)
    print(machine_line() + "\n")
    rows = []
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="dsbias-scale-") as tmp:
        root = Path(tmp)
        if {"knn", "linear", "cluster"} & set(args.only):
            gemm = scale.gemm(args.dim, args.rows, args.queries)
            print(f"float32 GEMM rate, torch.mm on the kNN's tiles: {gemm:.0f} GFLOP/s\n")
        for dtype in args.dtypes if {"knn", "linear", "cluster"} & set(args.only) else []:
            feats = scale.synthetic_features(root / dtype, args.rows, args.queries, args.dim, dtype)
            shape = f"{args.rows // 1000}k x {args.dim} {dtype}"
            if "knn" in args.only:
                r = scale.bench_knn(feats)
                factor = PAPER_ROWS * PAPER_QUERIES / (args.rows * args.queries)
                rows.append([f"kNN, {args.queries // 1000}k queries, k=20 ({r['engine']})", shape, f"{r['sec']:.0f} s",
                             f"{r['gflops']:.0f} GFLOP/s = {r['gflops'] / gemm:.0%} of GEMM",
                             memory(r), f"3M x 30k queries: {minutes_or_hours(r['sec'] * factor)} here"])
                print("kNN notes:", "; ".join(r["notes"]))
            if "linear" in args.only:
                r = scale.bench_linear(feats)
                factor = PAPER_ROWS / args.rows
                rows.append([f"linear, streamed L-BFGS: one loss + gradient pass ({r['passes_timed']} timed)", shape,
                             f"{r['sec_per_pass']:.1f} s/pass", "", memory(r),
                             f"full protocol ~{r['protocol_passes']} passes: "
                             f"{minutes_or_hours(r['protocol_sec'])} here, "
                             f"3M rows: {minutes_or_hours(r['protocol_sec'] * factor)} (in RAM it would hold "
                             f"{r['matrix_gib']:.1f} GiB)"])
            if "cluster" in args.only:
                r = scale.bench_cluster(feats)
                rows.append([f"cluster, k-means k=3 + {r['rows_clustered'] // 1000}k-row subsample scored",
                             f"{r['rows'] // 1000}k x {args.dim} {dtype}", f"{r['sec']:.0f} s", "",
                             memory(r), "3M rows: the same subsample size, about the same time"])
            shutil.rmtree(root / dtype)
        if "extract" in args.only:
            r = scale.bench_extract(args.extract_images, args.backbone, root)
            cores = len(os.sched_getaffinity(0))
            floor = PAPER_IMAGES / (r["loader_img_per_s"] / cores * NODE_CORES)  # decode + preprocess on the node
            if args.gpu_img_per_s:
                gpus = PAPER_IMAGES / (args.gpu_img_per_s * NODE_GPUS)
                eight = (f"{NODE_GPUS} GPUs at {args.gpu_img_per_s:.0f} img/s each: {max(gpus, floor) / 60:.0f} min "
                         f"({'GPU' if gpus >= floor else 'CPU decoding'}-bound)")
            else:
                eight = (f"{NODE_GPUS} GPUs: no GPU figure (pass --gpu-img-per-s from tools/bench_extract.py on one "
                         f"GPU); the {NODE_CORES} cores' decoding alone takes {floor / 60:.0f} min, a floor")
            rows.append([f"extraction, `{args.backbone}` {r['image_size']} px, random init (loader alone: "
                         f"{r['loader_img_per_s']:.0f} img/s)", f"{r['n']} ~500-px JPEGs", f"{r['sec']:.0f} s",
                         f"{r['img_per_s']:.1f} img/s (bare forward {r['bare_img_per_s']:.1f})",
                         memory(r),
                         f"3M images here: {PAPER_IMAGES / r['img_per_s'] / 86400:.1f} days; {eight}"])
        if "manifest" in args.only:
            sources = scale.make_shards(root / "shards", args.images)
            rates, cores = {}, len(os.sched_getaffinity(0))
            for w in args.processes:
                r = scale.bench_manifest(sources, args.images, w)
                rates[w] = r["items_per_s"]
                per_core = r["items_per_s"] / cores  # 1 process already runs 2 decode threads on all cores
                rows.append([f"manifest build, webdataset, {w} process(es)", f"{args.images // 1000}k 16-px JPEGs",
                             f"{r['sec']:.0f} s", f"{r['items_per_s']:.0f} items/s ({r['cpu_ms_per_item']:.2f} CPU "
                             "ms/item)", memory(r),
                             f"3M images, {NODE_CORES} cores at this per-core rate: "
                             f"{PAPER_IMAGES / (per_core * NODE_CORES) / 60:.1f} min"])
    print("| stage | data | time | rate | peak memory GiB: own (all resident) | extrapolation |")
    print("|---|---|---|---|---:|---|")
    print("\n".join("| " + " | ".join(r) + " |" for r in rows))
    return 0

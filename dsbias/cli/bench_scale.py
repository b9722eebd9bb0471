"""``python tools/bench_scale.py [--rows 1000000] [--queries 10000] [--dim 768] [--images 200000] [--only ...]``

Scale rehearsal: kNN and the streamed linear probe on memory-mapped features of ``--rows`` x ``--dim`` (float16
and float32 on disk), and the manifest build over ``--images`` small images in tar shards; time, peak RSS and the
extrapolation to Liu & He's scale. Writes its files under ``--dir`` (default: the system temp dir) and deletes
them; the float32 features at the defaults take 3 GiB of disk.
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
NODE_CORES = 64


@cli.guarded
def main(argv: list[str]) -> int:
    p = cli.parser("tools/bench_scale.py", __doc__, config=False)
    p.add_argument("--rows", type=int, default=1_000_000, help="feature rows (train)")
    p.add_argument("--queries", type=int, default=10_000, help="kNN queries (val rows)")
    p.add_argument("--dim", type=int, default=768)
    p.add_argument("--dtypes", nargs="+", default=["float16", "float32"], choices=["float16", "float32"])
    p.add_argument("--images", type=int, default=200_000, help="images in the generated webdataset")
    p.add_argument("--processes", type=int, nargs="+", default=[1, 2], help="manifest build processes to time")
    p.add_argument("--only", nargs="+", choices=("knn", "linear", "manifest"), default=["knn", "linear", "manifest"])
    p.add_argument("--dir", default=None, help="where to write the temporary files (default: system temp)")
    args = cli.parse(p, argv)
    print(machine_line() + "\n")
    rows = []
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="dsbias-scale-") as tmp:
        root = Path(tmp)
        if {"knn", "linear"} & set(args.only):
            gemm = scale.gemm(args.dim, args.rows, args.queries)
            print(f"float32 GEMM rate, torch.mm on the kNN's tiles: {gemm:.0f} GFLOP/s\n")
        for dtype in args.dtypes if {"knn", "linear"} & set(args.only) else []:
            feats = scale.synthetic_features(root / dtype, args.rows, args.queries, args.dim, dtype)
            shape = f"{args.rows // 1000}k x {args.dim} {dtype}"
            if "knn" in args.only:
                r = scale.bench_knn(feats)
                factor = PAPER_ROWS * PAPER_QUERIES / (args.rows * args.queries)
                rows.append([f"kNN, {args.queries // 1000}k queries, k=20 ({r['engine']})", shape, f"{r['sec']:.0f} s",
                             f"{r['gflops']:.0f} GFLOP/s = {r['gflops'] / gemm:.0%} of GEMM",
                             f"{r['peak_rss_gib']:.2f}", f"3M x 30k queries: {r['sec'] * factor / 3600:.1f} h here"])
                print("kNN notes:", "; ".join(r["notes"]))
            if "linear" in args.only:
                r = scale.bench_linear(feats)
                factor = PAPER_ROWS / args.rows
                rows.append([f"linear, streamed L-BFGS: one loss + gradient pass ({r['passes_timed']} timed)", shape,
                             f"{r['sec_per_pass']:.1f} s/pass", "", f"{r['peak_rss_gib']:.2f}",
                             f"full protocol ~{r['protocol_passes']} passes: {r['protocol_sec'] / 60:.0f} min here, "
                             f"3M rows: {r['protocol_sec'] * factor / 3600:.1f} h (in RAM it would hold "
                             f"{r['matrix_gib']:.1f} GiB)"])
            shutil.rmtree(root / dtype)
        if "manifest" in args.only:
            sources = scale.make_shards(root / "shards", args.images)
            rates, cores = {}, len(os.sched_getaffinity(0))
            for w in args.processes:
                r = scale.bench_manifest(sources, args.images, w)
                rates[w] = r["items_per_s"]
                per_core = r["items_per_s"] / cores  # 1 process already runs 2 decode threads on all cores
                rows.append([f"manifest build, webdataset, {w} process(es)", f"{args.images // 1000}k 16-px JPEGs",
                             f"{r['sec']:.0f} s", f"{r['items_per_s']:.0f} items/s ({r['cpu_ms_per_item']:.2f} CPU "
                             "ms/item)", f"{r['peak_rss_gib']:.2f}",
                             f"3M images, {NODE_CORES} cores at this per-core rate: "
                             f"{PAPER_IMAGES / (per_core * NODE_CORES) / 60:.1f} min"])
    print("| stage | data | time | rate | peak RSS GiB | extrapolation |\n|---|---|---|---|---:|---|")
    print("\n".join("| " + " | ".join(r) + " |" for r in rows))
    return 0

"""``python probe/cluster.py --features RUN_OR_FEATURES_DIR [--k S ...]``

Clustering probe of cached features: faiss k-means (k = number of sources by default) on the L2-normalised
features of every row, scored against the sources by NMI, ARI and purity, each beside the same score for
label-permuted features (the null). Writes ``probe_cluster.json`` beside the features and prints the table.
"""

from __future__ import annotations

import time

from dsbias.cli import args as cli
from dsbias.features.store import load_features
from dsbias.probes.cluster import MAX_ROWS, N_PERM, rows_of, run_cluster
from dsbias.probes.result import run_with_control, summary_text, write_result
from dsbias.stats import format_p

PROTOCOL = ("spherical faiss k-means on L2-normalised features (no labels); NMI, ARI, purity against the sources; "
            "null: the same scores with source labels permuted among groups")


def score_lines(res: dict) -> list[str]:
    """One line per score: value, null mean and 95th percentile, p-value."""
    return [f"{name.upper():>6} {res[name]['value']:.3f}   null {res[name]['null_mean']:.3f} "
            f"(95th pct {res[name]['null_q95']:.3f})   p = {format_p(res[name]['p_value'])}"
            for name in ("nmi", "ari", "purity")]


@cli.guarded
def main(argv: list[str]) -> int:
    p = cli.parser("probe/cluster.py", __doc__, config=False)
    p.add_argument("--features", default="out/", help="run dir or features dir (default: out/)")
    p.add_argument("--k", type=int, nargs="+", default=None, help="clusters; the first is primary (default: S)")
    p.add_argument("--split", choices=("all", "train", "val"), default="all", help="rows to cluster (default all)")
    p.add_argument("--seed", type=int, default=0, help="k-means and permutation seed")
    p.add_argument("--niter", type=int, default=25, help="k-means iterations")
    p.add_argument("--permutations", type=int, default=N_PERM, help="label permutations of the null")
    p.add_argument("--max-rows", type=int, default=MAX_ROWS, help="cluster at most this many rows (whole groups)")
    p.add_argument("--threads", type=int, default=None, help="faiss OpenMP threads (default: faiss's)")
    p.add_argument("--no-init", action="store_true", help="skip the random-init control (features_init/)")
    args = cli.parse(p, argv)
    t0 = time.perf_counter()
    fs = load_features(args.features)
    res = run_with_control(fs, lambda f: run_cluster(f, args.k, args.split, args.seed, args.niter, args.permutations,
                                                     args.threads, args.max_rows), not args.no_init,
                           rows=lambda f: rows_of(f, args.split, args.max_rows, args.seed)[1:])
    settings = {"protocol": PROTOCOL, "k": args.k or [len(fs.sources)], "split": args.split, "seed": args.seed,
                "niter": args.niter, "permutations": args.permutations, "max_rows": args.max_rows,
                "threads": args.threads}
    extra = score_lines(res)
    for k, r in res["per_k"].items():
        if k != str(res["k"]):
            extra.append(f"k={k}: NMI {r['nmi']['value']:.3f} (null {r['nmi']['null_mean']:.3f}), purity "
                         f"{100 * r['top1']:.1f}% (null {100 * r['chance']:.1f}%), {r['verdict']}")
    seconds = time.perf_counter() - t0
    out = write_result(fs, "cluster", res, settings, seconds)
    title = f"clustering probe (k-means, k={res['k']}, {args.split} rows): top-1 = purity, chance = its null mean"
    print(summary_text(res, title, extra, seconds, out))
    return 0

"""``python probe/linear.py --features RUN_OR_FEATURES_DIR [--seeds N] [--sklearn]``

Linear probe of cached features (MAE protocol: train-standardised features + a linear layer, weight decay
chosen on a held-out slice of train), with a group-aware interval, a test against chance and, on a pretraining
run, the random-init control; writes ``probe_linear.json`` beside the features and prints the table.
"""

from __future__ import annotations

import argparse
import time

from dsbias.cli import args as cli
from dsbias.errors import UserError
from dsbias.features.store import load_features
from dsbias.probes.linear import WD_GRID, run_linear
from dsbias.probes.result import run_with_control, summary_text, write_result
from dsbias.report.write import refresh

PROTOCOL = ("MAE linear probe: train-standardised features (BN without affine) + linear layer, multinomial logistic "
            "regression, weight decay chosen on a held-out slice of train, refit on all of train, val predicted once")


@cli.guarded
def main(argv: list[str]) -> int:
    p = cli.parser("probe/linear.py", __doc__, config=False)
    p.add_argument("--features", default="out/", help="run dir or features dir (default: out/)")
    p.add_argument("--seeds", type=int, default=1, help="repeat with N held-out slices; report mean +- std")
    p.add_argument("--seed", type=int, default=0, help="first seed")
    p.add_argument("--holdout", type=float, default=0.15, help="fraction of train held out to choose weight decay")
    p.add_argument("--wd", type=float, nargs="+", default=list(WD_GRID), help="weight-decay grid")
    p.add_argument("--max-iter", type=int, default=100, help="L-BFGS iterations per fit")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="torch device (auto: CUDA if any)")
    p.add_argument("--sklearn", action="store_true", help="solve with scikit-learn LogisticRegression (baseline)")
    p.add_argument("--no-init", action="store_true", help="skip the random-init control (features_init/)")
    p.add_argument("--stream", action=argparse.BooleanOptionalAction, default=None,
                   help="read the features from file on every pass, one block in RAM (default: when train is "
                        "over 2 GiB as float32)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = cli.parse(p, argv)
    if not 0 < args.holdout < 1:
        raise UserError(f"--holdout {args.holdout}: must be in (0, 1)")
    t0 = time.perf_counter()
    fs = load_features(args.features)
    res = run_with_control(fs, lambda f: run_linear(f, args.seeds, args.seed, args.wd, args.holdout, args.max_iter,
                                                    args.device, args.sklearn, args.stream), not args.no_init)
    settings = {"protocol": PROTOCOL,
                "solver": "sklearn LogisticRegression(lbfgs)" if args.sklearn else "torch L-BFGS (strong Wolfe)",
                "seeds": args.seeds, "seed": args.seed, "holdout": args.holdout, "wd_grid": args.wd,
                "max_iter": args.max_iter, "device": args.device, "stream": args.stream}
    s = res["seeds"]
    extra = [f"chosen weight decay per seed: {', '.join(f'{w:.0e}' for w in s['weight_decay'])}"]
    if s["n"] > 1:
        extra.append(f"top-1 over {s['n']} seeds: {100 * s['mean']:.2f} +- {100 * s['std']:.2f}%")
    seconds = time.perf_counter() - t0
    out = write_result(fs, "linear", res, settings, seconds)
    print(summary_text(res, "linear probe", extra, seconds, out))
    refresh(fs.root)
    return 0

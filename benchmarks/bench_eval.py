"""Time evaluation: next-click predictions per second with full ranking.

For every data set (a folder of ``--data-dir`` with ``train_sessions.txt`` and
``test_sessions.txt``) and its configuration (``--config-dir``/<name>.json),
one model is built with the full training catalogue (one epoch on the first
``--fit-sessions`` sessions: throughput does not depend on how well it is
trained), and `rnnrec.evaluation.evaluate_next_click` scores every test
prediction against all V training items with it. Three scorers go through the
same evaluator, alternating round by round in one process on the same threads:

- ``rnnrec``: the model itself (Numba backend);
- ``numpy``: the same weights on the NumPy reference backend;
- ``torch``: the same weights in the PyTorch twin (`torch_twin.py`), whose
  ``score_next`` runs the GRU step and the ``(B, V)`` product in PyTorch.

The ranking (counting, for every prediction, the items scored above the
target) is rnnrec's in all three, so the differences are those of the scoring
step. Every scorer's Recall@20, MRR@20 and NDCG@20 must agree (relative 1e-6),
or the script reports no timing and exits with status 1.

Usage::

    python benchmarks/bench_eval.py --threads 1 --out
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)  # benchmarks/ is a folder of scripts: import a sibling
import bench_train  # noqa: E402

DEFAULT_OUT = os.path.join(HERE, "results", "bench_eval.json")
SCORERS = ("rnnrec", "numpy", "torch")


def build_scorers(config, train, fit_sessions, twin):
    """One model on the full catalogue, and the same weights in every scorer."""
    from rnnrec.model import SessionRecommender

    # A subset of the sessions keeps the full item index, so V is the catalogue's.
    few = train.select_sessions(np.arange(min(fit_sessions, train.n_sessions)))
    model = SessionRecommender(**{**config, "n_epochs": 1}).fit(few)
    reference = copy.deepcopy(model)
    for layer in reference.layers_:
        layer.backend = "numpy"
    return {
        "rnnrec": model,
        "numpy": reference,
        "torch": twin.TorchRecommender.from_rnnrec(model),
    }


def time_scorer(scorer, test, cutoffs):
    """Evaluate once; return the metrics and the wall time."""
    from rnnrec.evaluation import evaluate_next_click

    start = time.perf_counter()
    metrics = evaluate_next_click(scorer, test, cutoffs=cutoffs)
    return metrics, time.perf_counter() - start


def bench_dataset(name, split, config, args, twin):
    """Time every scorer ``args.rounds`` times; return the rows."""
    scorers = build_scorers(config, split.train, args.fit_sessions, twin)
    warm = split.test.select_sessions(np.arange(min(50, split.test.n_sessions)))
    for scorer in scorers.values():
        time_scorer(scorer, warm, (20,))  # compilation and first calls

    rows, reference = [], None
    for r in range(args.rounds):
        order = SCORERS if r % 2 == 0 else SCORERS[::-1]
        for which in order:
            metrics, seconds = time_scorer(scorers[which], split.test, (20,))
            if reference is None:
                reference = metrics
            # The same weights: every metric equal up to the scorers' rounding.
            agree = all(
                math.isclose(metrics[k], reference[k], rel_tol=1e-6, abs_tol=1e-9)
                for k in ("recall@20", "mrr@20", "ndcg@20")
            )
            rows.append(
                {
                    "dataset": name,
                    "scorer": which,
                    "round": r,
                    "n_items": int(split.train.n_items),
                    "predictions": int(metrics["n"]),
                    "seconds": seconds,
                    "predictions_per_second": metrics["n"] / seconds,
                    "recall@20": metrics["recall@20"],
                    "mrr@20": metrics["mrr@20"],
                    "agrees": bool(agree),
                }
            )
            print(
                f"  {name} round {r} {which:<7}{seconds:8.2f} s "
                f"{rows[-1]['predictions_per_second']:10,.0f} predictions/s "
                f"recall@20 {metrics['recall@20']:.4f}",
                flush=True,
            )
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(bench_train.DATASETS))
    parser.add_argument(
        "--data-dir",
        default=os.path.join(os.path.dirname(bench_train.ROOT), "shared", "data"),
    )
    parser.add_argument("--config-dir", default=os.path.join(HERE, "configs"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--fit-sessions", type=int, default=500)
    parser.add_argument(
        "--max-test-sessions", type=int, help="score the first N test sessions"
    )
    parser.add_argument(
        "--out",
        nargs="?",
        const=DEFAULT_OUT,
        help="write JSON (to benchmarks/results/bench_eval.json if no path)",
    )
    args = parser.parse_args(argv)

    import torch
    from threadpoolctl import threadpool_limits

    import rnnrec.kernels

    torch.set_num_threads(args.threads)
    twin = bench_train.load_sibling("torch_twin")
    rows = []
    with threadpool_limits(limits=args.threads):
        rnnrec.kernels.set_blas_threads(args.threads)
        for name in args.datasets:
            split = bench_train.load_split(
                os.path.join(args.data_dir, name),
                max_test_sessions=args.max_test_sessions,
            )
            config = bench_train.load_config(
                os.path.join(args.config_dir, f"{name}.json")
            )
            print(f"{name}: {split.train.n_items:,} items, {split.n_test_pairs:,} "
                  "predictions", flush=True)  # fmt: skip
            rows += bench_dataset(name, split, config, args, twin)
    result = {"threads": args.threads, "rows": rows}
    print(bench_train.load_sibling("report").eval_table(result))
    if not all(row["agrees"] for row in rows):
        print(
            "error: the scorers' metrics disagree; no timing is valid", file=sys.stderr
        )
        return 1
    if args.out:
        from rnnrec.io import atomic_write_text

        atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

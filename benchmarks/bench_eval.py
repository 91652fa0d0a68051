"""Time evaluation: next-click predictions per second with full ranking.

For every data set (a folder of ``--data-dir`` with ``train_sessions.txt`` and
``test_sessions.txt``) and its configuration (``--config-dir``/<name>.json),
one model is built with the full training catalogue (one epoch on the first
``--fit-sessions`` sessions: throughput does not depend on how well it is
trained), and every test prediction is ranked against all V training items
with it. Four evaluations of the same weights alternate round by round in one
process on the same threads:

- ``rnnrec``: `rnnrec.evaluation.evaluate_next_click` on the model itself
  (Numba backend);
- ``numpy``: the same evaluator on the same weights, NumPy reference backend;
- ``torch``: the same evaluator driving the PyTorch twin (`torch_twin.py`)
  as a scorer: its ``score_next`` runs the GRU step and the ``(B, V)`` product
  in PyTorch, the ranking is rnnrec's;
- ``torch-e2e``: the twin's own evaluation, `TorchRecommender.evaluate`, which
  walks the test sessions, scores, ranks and averages the metrics in PyTorch.

``rnnrec`` against ``torch-e2e`` is the comparison of the target (rnnrec's
evaluation at least twice PyTorch's predictions per second); ``rnnrec``
against ``torch`` isolates the scoring step. Every evaluation's Recall@20,
MRR@20 and NDCG@20 must agree (relative 1e-6), or the script reports no timing
and exits with status 1.

Usage::

    python benchmarks/bench_eval.py --threads 1 --out
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)  # benchmarks/ is a folder of scripts: import a sibling
import bench_train  # noqa: E402

DEFAULT_OUT = os.path.join(HERE, "results", "bench_eval.json")
SCORERS = ("rnnrec", "numpy", "torch", "torch-e2e")


def build_evaluations(config, train, fit_sessions, twin):
    """One model on the full catalogue; every evaluation of its weights.

    Returns a dict of scorer name to a function ``(test, cutoffs) -> metrics``.
    """
    from rnnrec.evaluation import evaluate_next_click
    from rnnrec.model import SessionRecommender

    # A subset of the sessions keeps the full item index, so V is the catalogue's.
    few = train.select_sessions(np.arange(min(fit_sessions, train.n_sessions)))
    model = SessionRecommender(**{**config, "n_epochs": 1}).fit(few)
    reference = copy.deepcopy(model)
    for layer in reference.layers_:
        layer.backend = "numpy"
    torch_model = twin.TorchRecommender.from_rnnrec(model)

    def through_rnnrec(scorer):
        return lambda test, cutoffs: evaluate_next_click(scorer, test, cutoffs=cutoffs)

    return {
        "rnnrec": through_rnnrec(model),
        "numpy": through_rnnrec(reference),
        "torch": through_rnnrec(torch_model),
        "torch-e2e": lambda test, cutoffs: torch_model.evaluate(test, cutoffs=cutoffs),
    }


def time_evaluation(evaluate, test, cutoffs):
    """Evaluate once; return the metrics and the wall time."""
    start = time.perf_counter()
    metrics = evaluate(test, cutoffs)
    return metrics, time.perf_counter() - start


def bench_dataset(name, split, config, args, twin):
    """Time every scorer ``args.rounds`` times; return the rows."""
    evaluations = build_evaluations(config, split.train, args.fit_sessions, twin)
    warm = split.test.select_sessions(np.arange(min(50, split.test.n_sessions)))
    for evaluate in evaluations.values():
        time_evaluation(evaluate, warm, (20,))  # compilation and first calls

    rows, reference = [], None
    for r in range(args.rounds):
        order = SCORERS if r % 2 == 0 else SCORERS[::-1]
        for which in order:
            metrics, seconds = time_evaluation(evaluations[which], split.test, (20,))
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
                    "ndcg@20": metrics["ndcg@20"],
                    "agrees": bool(agree),
                }
            )
            print(
                f"  {name} round {r} {which:<10}{seconds:8.2f} s "
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
        rnnrec.kernels.set_threads(args.threads)  # the row loops stay on one
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
            "error: the evaluations' metrics disagree; no timing is valid",
            file=sys.stderr,
        )
        return 1
    if args.out:
        bench_train.write_result(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Time training on several threads: which thread pools run which work.

A training step alternates matrix products with loops over rows (the GRU's
gate arithmetic, coalescing item rows, Adagrad). On ``n`` threads these can
run in four arrangements, all timed here in one process, alternating round by
round on the same data, with the same configuration (``--config``):

- ``one``: everything on one thread (`rnnrec.kernels.set_threads(1)`);
- ``blas``: the products on OpenBLAS's own ``n`` threads, the row loops on one
  (``set_threads(1)``, then ``set_blas_threads(n)``);
- ``pool``: one pool, Numba's: row loops and products, split into column
  blocks, on its ``n`` threads, the BLAS on one thread inside
  (``set_threads(n)``, rnnrec's way);
- ``both``: Numba's pool for the row loops and the split products, and
  OpenBLAS's own ``n`` threads inside every product (``set_threads(n)``, then
  ``set_blas_threads(n)``): two pools that spin against each other.

Throughput is training events per second of one epoch as ``fit`` records it,
on the most recent ``--max-sessions`` sessions of the data set; the best round
of each arrangement is reported with its ratio to ``one``.

``--profile pool`` also runs one more fit under ``cProfile`` and prints where
its time went (the README's "where the time went" comes from such runs).

Usage::

    python benchmarks/bench_threads.py --threads 2 --out
    python benchmarks/bench_threads.py --threads 2 --rounds 1 --max-sessions 20000 \
        --arrangements pool --profile pool
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)  # benchmarks/ is a folder of scripts: import a sibling
import bench_train  # noqa: E402

DEFAULT_OUT = os.path.join(HERE, "results", "bench_threads.json")
ARRANGEMENTS = ("one", "blas", "pool", "both")


def arrange(which, n):
    """Set the thread counts of one arrangement."""
    from rnnrec.kernels import set_blas_threads, set_threads

    set_threads(1 if which in ("one", "blas") else n)
    if which in ("blas", "both"):
        set_blas_threads(n)


def add_fit_arguments(parser):
    """Add the options of one timed fit (data, configuration, threads, rounds)."""
    parser.add_argument("--dataset", default="yoochoose1_64")
    parser.add_argument(
        "--data-dir", default=os.path.join(os.path.dirname(ROOT), "shared", "data")
    )
    parser.add_argument(
        "--config",
        default=os.path.join(HERE, "configs", "gru4rec_yoochoose.json"),
        help="SessionRecommender settings (default: GRU4Rec's yoochoose ones)",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-sessions", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=2)


def check_fit_arguments(parser, args):
    """Stop with a usage error if a count given to `add_fit_arguments` is < 1."""
    if args.threads < 1 or args.max_sessions < 1 or args.rounds < 1:
        parser.error("--threads, --max-sessions and --rounds must be at least 1")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_fit_arguments(parser)
    parser.add_argument(
        "--arrangements", nargs="+", choices=ARRANGEMENTS, default=list(ARRANGEMENTS)
    )
    parser.add_argument(
        "--profile",
        choices=ARRANGEMENTS,
        help="also profile one more fit in this arrangement (cProfile, the 20 "
        "functions of most own time)",
    )
    parser.add_argument(
        "--out",
        nargs="?",
        const=DEFAULT_OUT,
        help=f"write JSON (to {os.path.relpath(DEFAULT_OUT, ROOT)} if no path)",
    )
    args = parser.parse_args(argv)
    check_fit_arguments(parser, args)

    from rnnrec.model import SessionRecommender

    split = bench_train.load_split(
        os.path.join(args.data_dir, args.dataset), args.max_sessions
    )
    config = bench_train.load_config(args.config, epochs=1)
    machine = bench_train.load_sibling("bench_cells").machine_info(args.threads)
    warm = split.train.select_sessions(np.arange(min(300, split.train.n_sessions)))
    for which in args.arrangements:  # compilation and first calls
        arrange(which, args.threads)
        SessionRecommender(**config).fit(warm)

    rows = []
    for r in range(args.rounds):
        order = args.arrangements if r % 2 == 0 else args.arrangements[::-1]
        for which in order:
            arrange(which, args.threads)
            model = SessionRecommender(**config).fit(split.train)
            record = model.history_[-1]
            rows.append(
                {
                    "arrangement": which,
                    "round": r,
                    "seconds": record["seconds"],
                    "events_per_second": record["events_per_second"],
                    "loss": record["loss"],
                }
            )
            print(
                f"  round {r} {which:<5} {record['seconds']:7.2f} s "
                f"{record['events_per_second']:8,.0f} events/s "
                f"loss {record['loss']:.4f}",
                flush=True,
            )
    if args.profile:
        import cProfile
        import pstats

        from rnnrec.data import n_pairs

        arrange(args.profile, args.threads)
        model = SessionRecommender(**config)
        profiler = cProfile.Profile()
        profiler.runcall(model.fit, split.train)
        steps = -(-n_pairs(split.train) // config["batch_size"])
        print(f"profile of {args.profile}: about {steps:,} steps")
        pstats.Stats(profiler).sort_stats("tottime").print_stats(20)
    arrange("one", 1)

    result = {
        "kind": "threads",
        "machine": machine,
        "command": " ".join(["python", *sys.argv]) if argv is None else None,
        "settings": {
            "dataset": args.dataset,
            "config": os.path.basename(args.config),
            "threads": args.threads,
            "max_sessions": args.max_sessions,
            "train_sessions": split.train.n_sessions,
            "rounds": args.rounds,
        },
        "rows": rows,
    }
    print(bench_train.load_sibling("report").threads_table(result))
    if args.out:
        bench_train.write_result(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())

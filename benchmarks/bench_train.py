"""Time training: rnnrec's session recommender against its PyTorch twin.

For every data set (a folder of ``--data-dir`` with one-session-per-line files
``train_sessions.txt`` and ``test_sessions.txt``) and its configuration
(``--config-dir``/<name>.json), both implementations train from the same
initial weights on the same batches and negatives (`torch_twin.py`), in one
process and on the same number of threads, alternating: each round fits rnnrec
and then the twin, the order swapping from round to round, so that a change in
the machine's load touches both alike.

Throughput is training events (predicted clicks) per second of epoch time as
each ``fit`` records it: data loading, building the model and evaluation are
left out. A warm-up fit on a few sessions comes first, so that Numba's
compilation (or its cache loading) and PyTorch's first calls are not timed.
With ``--evaluate`` both models of the last round are scored by
`rnnrec.evaluation.evaluate_next_click` (Recall@20, MRR@20) after the same
number of epochs.

Usage::

    python benchmarks/bench_train.py --quick
    python benchmarks/bench_train.py --threads 2 --evaluate --out

``--quick`` trains one epoch on the most recent 2,000 sessions and scores 500
test sessions; ``--out`` alone writes ``benchmarks/results/bench_train.json``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DATASETS = ("yoochoose1_64", "diginetica")
DEFAULT_OUT = os.path.join(HERE, "results", "bench_train.json")
IMPLEMENTATIONS = ("rnnrec", "torch")
WARMUP_SESSIONS = 200


def load_sibling(name):
    """Import another script of ``benchmarks/`` (the folder is not a package)."""
    spec = importlib.util.spec_from_file_location(
        name, os.path.join(HERE, f"{name}.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_split(folder, max_sessions=None, max_test_sessions=None):
    """Read a data set; keep its most recent training and first test sessions."""
    from rnnrec import data

    train = data.read_session_lines(os.path.join(folder, "train_sessions.txt"))
    test = data.read_session_lines(os.path.join(folder, "test_sessions.txt"))
    if max_sessions and max_sessions < train.n_sessions:
        train = train.select_sessions(
            np.arange(train.n_sessions - max_sessions, train.n_sessions)
        )
    if max_test_sessions and max_test_sessions < test.n_sessions:
        test = test.select_sessions(np.arange(max_test_sessions))
    return data.index_test_like_train(train, test)


def write_result(path, result):
    """Write a benchmark's result as JSON, creating its folder; say where."""
    from rnnrec.io import atomic_write_text

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    atomic_write_text(path, json.dumps(result, indent=1) + "\n")
    print(f"wrote {path}")


def load_config(path, epochs=None):
    """Read a configuration file as `SessionRecommender` keyword arguments."""
    with open(path, encoding="utf-8") as f:
        config = json.load(f)
    config["layers"] = tuple(config["layers"])
    if epochs is not None:
        config["n_epochs"] = epochs
    return config


def make_model(implementation, config, twin, mask_source):
    """Return a fresh, unfitted model of either implementation."""
    if implementation == "rnnrec":
        from rnnrec.model import SessionRecommender

        return SessionRecommender(**config)
    return twin.TorchRecommender(mask_source=mask_source, **config)


def timed_fit(model, train):
    """Fit; return the per-epoch records and the wall time of the whole fit."""
    start = time.perf_counter()
    model.fit(train)
    return model.history_, time.perf_counter() - start


def bench_dataset(name, split, config, args, twin):
    """Train both implementations ``args.rounds`` times; return the rows."""
    from rnnrec.data import n_pairs

    warm = split.train.select_sessions(
        np.arange(min(WARMUP_SESSIONS, split.train.n_sessions))
    )
    for implementation in IMPLEMENTATIONS:
        model = make_model(implementation, {**config, "n_epochs": 1}, twin, args.mask)
        model.fit(warm)

    rows, last = [], {}
    events = n_pairs(split.train)
    for r in range(args.rounds):
        order = IMPLEMENTATIONS if r % 2 == 0 else IMPLEMENTATIONS[::-1]
        for implementation in order:
            model = make_model(implementation, config, twin, args.mask)
            history, wall = timed_fit(model, split.train)
            seconds = [h["seconds"] for h in history]
            rows.append(
                {
                    "dataset": name,
                    "implementation": implementation,
                    "round": r,
                    "epochs": len(history),
                    "events_per_epoch": events,
                    "seconds_per_epoch": float(np.mean(seconds)),
                    "epoch_seconds": seconds,
                    "events_per_second": events * len(seconds) / sum(seconds),
                    "fit_seconds": wall,
                    "final_loss": history[-1]["loss"],
                }
            )
            print(format_row(rows[-1]), flush=True)
            last[implementation] = model
    if args.evaluate:
        from rnnrec.evaluation import evaluate_next_click

        for implementation, model in last.items():
            start = time.perf_counter()
            metrics = evaluate_next_click(model, split.test, cutoffs=(20,))
            row = next(
                row for row in reversed(rows) if row["implementation"] == implementation
            )
            row.update(
                {
                    "recall@20": metrics["recall@20"],
                    "mrr@20": metrics["mrr@20"],
                    "n_predictions": metrics["n"],
                    "eval_seconds": time.perf_counter() - start,
                }
            )
    return rows


def summarise(rows):
    """Per data set: each implementation's best round and rnnrec's speed-up."""
    summary = []
    for name in dict.fromkeys(row["dataset"] for row in rows):
        best = {}
        for row in rows:
            if row["dataset"] != name:
                continue
            old = best.get(row["implementation"])
            if old is None or row["events_per_second"] > old["events_per_second"]:
                best[row["implementation"]] = row
        torch_speed = best["torch"]["events_per_second"]
        for implementation, row in best.items():
            evaluated = next(
                (
                    r
                    for r in rows
                    if r["dataset"] == name
                    and r["implementation"] == implementation
                    and "recall@20" in r
                ),
                {},
            )
            summary.append(
                {
                    "dataset": name,
                    "implementation": implementation,
                    "epochs": row["epochs"],
                    "events_per_epoch": row["events_per_epoch"],
                    "seconds_per_epoch": row["seconds_per_epoch"],
                    "events_per_second": row["events_per_second"],
                    "speed_vs_torch": row["events_per_second"] / torch_speed,
                    "recall@20": evaluated.get("recall@20"),
                    "mrr@20": evaluated.get("mrr@20"),
                }
            )
    return summary


def format_row(row):
    return (
        f"  {row['dataset']} round {row['round']} {row['implementation']:<7}"
        f"{row['epochs']} epoch(s), {row['seconds_per_epoch']:.2f} s/epoch, "
        f"{row['events_per_second']:,.0f} events/s, loss {row['final_loss']:.4f}"
    )


HEADER = (
    f"{'data set':<15} {'impl':<7} {'epochs':>6} {'events':>9} {'s/epoch':>9} "
    f"{'events/s':>9} {'vs torch':>8} {'recall@20':>9} {'mrr@20':>7}"
)


def format_summary(row):
    def metric(key, width):
        value = row[key]
        return f"{value:{width}.4f}" if value is not None else f"{'-':>{width}}"

    return (
        f"{row['dataset']:<15} {row['implementation']:<7} {row['epochs']:>6} "
        f"{row['events_per_epoch']:>9,} {row['seconds_per_epoch']:9.2f} "
        f"{row['events_per_second']:9,.0f} {row['speed_vs_torch']:8.2f} "
        f"{metric('recall@20', 9)} {metric('mrr@20', 7)}"
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    parser.add_argument(
        "--data-dir", default=os.path.join(os.path.dirname(ROOT), "shared", "data")
    )
    parser.add_argument("--config-dir", default=os.path.join(HERE, "configs"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--epochs", type=int, help="default: the configuration's")
    parser.add_argument(
        "--max-sessions", type=int, help="train on the most recent N sessions"
    )
    parser.add_argument(
        "--max-test-sessions", type=int, help="score the first N test sessions"
    )
    parser.add_argument("--rounds", type=int, default=1, help="alternating rounds")
    parser.add_argument(
        "--evaluate", action="store_true", help="Recall@20 and MRR@20 after training"
    )
    parser.add_argument(
        "--mask",
        choices=("numpy", "torch"),
        default="numpy",
        help="the twin's dropout masks: from rnnrec's NumPy stream, or PyTorch's",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="1 epoch on 2,000 sessions, 500 test sessions, with --evaluate",
    )
    parser.add_argument(
        "--out",
        nargs="?",
        const=DEFAULT_OUT,
        help=f"write JSON (to {os.path.relpath(DEFAULT_OUT, ROOT)} if no path)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.max_sessions = args.max_sessions or 2000
        args.max_test_sessions = args.max_test_sessions or 500
        args.epochs = args.epochs or 1
        args.evaluate = True

    import torch
    from threadpoolctl import threadpool_limits

    import rnnrec.kernels

    twin = load_sibling("torch_twin")
    machine = load_sibling("bench_cells").machine_info(args.threads)
    torch.set_num_threads(args.threads)
    rows, datasets = [], {}
    with threadpool_limits(limits=args.threads):
        rnnrec.kernels.set_threads(args.threads)  # the row loops stay on one
        for name in args.datasets:
            split = load_split(
                os.path.join(args.data_dir, name),
                args.max_sessions,
                args.max_test_sessions,
            )
            config_path = os.path.join(args.config_dir, f"{name}.json")
            config = load_config(config_path, args.epochs)
            datasets[name] = {
                "config": config,
                "train_sessions": split.train.n_sessions,
                "items": split.train.n_items,
                "test_predictions": split.n_test_pairs,
            }
            print(
                f"{name}: {split.train.n_sessions:,} training sessions, "
                f"{split.train.n_items:,} items, {config['n_epochs']} epoch(s)",
                flush=True,
            )
            rows += bench_dataset(name, split, config, args, twin)
    summary = summarise(rows)
    print(HEADER)
    for row in summary:
        print(format_summary(row))
    if args.out:
        settings = {
            key: getattr(args, key)
            for key in (
                "threads",
                "epochs",
                "max_sessions",
                "max_test_sessions",
                "rounds",
                "mask",
            )
        }
        result = {
            "machine": machine,
            "command": " ".join(["python", *sys.argv]) if argv is None else None,
            "settings": settings,
            "datasets": datasets,
            "summary": summary,
            "rows": rows,
        }
        write_result(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())

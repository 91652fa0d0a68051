r"""Tune a recommender configuration on a validation tail of the training data.

The test set is never looked at: the last ``--valid-fraction`` of the training
sessions (the file's order is time order) becomes the validation set, indexed
by the items of the remaining training sessions exactly as the test set is by
the full training set. Every combination of the ``--set`` values is trained
on the rest and scored on the validation set; each finished trial is appended
to ``--out`` (JSON), and a rerun skips the trials already there. With
``--test TEST`` the grid is trained on the whole training file and scored on
TEST instead: that is for reporting settings already chosen (the cell table
of the README), never for choosing them.

Usage::

    python benchmarks/tune.py ../shared/data/yoochoose1_64/train_sessions.txt \
        --config benchmarks/configs/yoochoose1_64.json \
        --set bptt 1 2 --set learning_rate 0.1 0.2 \
        --out benchmarks/results/tune_yoochoose1_64.json

Values are read as JSON (``100``, ``0.2``, ``"bpr-max"``, ``[480]``); a value
that is not JSON is taken as a string. Set ``OPENBLAS_NUM_THREADS`` to pin the
threads; run one script per core to use two.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time

from rnnrec import data
from rnnrec.evaluation import evaluate_next_click
from rnnrec.io import atomic_write_text
from rnnrec.model import SessionRecommender


def parse_value(text):
    """Read one ``--set`` value as JSON, falling back to the raw string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def grid(settings):
    """Every combination of the ``--set`` values, as a list of dicts."""
    names = [name for name, _ in settings]
    values = [[parse_value(v) for v in vs] for _, vs in settings]
    return [
        dict(zip(names, combo, strict=True)) for combo in itertools.product(*values)
    ]


def validation_split(path, fraction):
    """Carve the last ``fraction`` of the sessions in ``path`` off as validation."""
    sessions = data.read_session_lines(path)
    fit_part, valid_part = data.split_by_time(sessions, test_fraction=fraction)
    return data.index_test_like_train(fit_part, valid_part)


def test_split(train_path, test_path):
    """The full training file and a test file, indexed by the training items."""
    return data.index_test_like_train(
        data.read_session_lines(train_path), data.read_session_lines(test_path)
    )


def run_trial(split, config, cutoffs):
    """Train one configuration and score it on the validation set."""
    model = SessionRecommender(verbose=False, **config)
    start = time.perf_counter()
    model.fit(split.train)
    seconds = time.perf_counter() - start
    metrics = evaluate_next_click(model, split.test, cutoffs=cutoffs)
    return {
        "metrics": metrics,
        "seconds": seconds,
        "events_per_second": model.history_[-1]["events_per_second"],
        "seconds_per_epoch": seconds / len(model.history_),
        "final_loss": model.history_[-1]["loss"],
        "n_parameters": model.n_parameters,
    }


def _load(path):
    if path is None or not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        return json.load(f)["trials"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("train", help="one-session-per-line training file")
    parser.add_argument("--config", required=True, help="base configuration (JSON)")
    parser.add_argument(
        "--set",
        nargs="+",
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="a setting and the values to try (repeat for a grid)",
    )
    parser.add_argument("--valid-fraction", type=float, default=0.1)
    parser.add_argument(
        "--test", help="score on this file instead of a validation tail"
    )
    parser.add_argument("--cutoffs", type=int, nargs="+", default=[20])
    parser.add_argument("--out", help="JSON file the trials are appended to")
    args = parser.parse_args(argv)
    for entry in args.set:
        if len(entry) < 2:
            parser.error(f"--set {entry[0]} needs at least one value")

    with open(args.config, encoding="utf-8") as f:
        base = json.load(f)
    if args.test:
        split = test_split(args.train, args.test)
    else:
        split = validation_split(args.train, args.valid_fraction)
    print(
        f"fit on {split.train.n_sessions} sessions, score on "
        f"{split.test.n_sessions} ({split.n_test_pairs} predictions)",
        flush=True,
    )
    trials = _load(args.out)
    done = [t["settings"] for t in trials]
    k = max(args.cutoffs)
    for settings in grid([(e[0], e[1:]) for e in args.set]):
        if settings in done:
            print(f"skip {settings} (in {args.out})")
            continue
        config = {**base, **settings}
        if "layers" in config:
            config["layers"] = tuple(config["layers"])
        result = run_trial(split, config, tuple(args.cutoffs))
        trials.append({"settings": settings, "config": config, **result})
        m = result["metrics"]
        print(
            f"{json.dumps(settings)}: recall@{k} {m[f'recall@{k}']:.4f}  "
            f"mrr@{k} {m[f'mrr@{k}']:.4f}  {result['seconds']:.0f} s  "
            f"{result['events_per_second']:,.0f} events/s  "
            f"{result['n_parameters']:,} parameters",
            flush=True,
        )
        if args.out:
            record = {
                "train": args.train,
                "scored_on": args.test or f"last {args.valid_fraction} of train",
                "threads": os.environ.get("OPENBLAS_NUM_THREADS"),
                "trials": trials,
            }
            atomic_write_text(args.out, json.dumps(record, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

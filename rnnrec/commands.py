"""The recommender's subcommands: ``train``, ``evaluate``, ``recommend``, ``baselines``.

Each ``add_*`` function adds a subcommand to the ``rnnrec`` parser (see
`rnnrec.cli`); each ``run_*`` function carries it out and returns the exit status.
Output is one fixed table or line per result; errors in the user's input reach
`rnnrec.cli.main`, which prints them on one line and exits with status 2.
"""

from __future__ import annotations

import json
import os
import time

import numpy as np

FORMATS = ("sessions", "events", "diginetica")

# The model trained on the built-in synthetic data when no DATA and no --config
# are given: it beats the Markov baseline there in about half a minute.
SYNTHETIC_CONFIG = {
    "layers": [100],
    "embedding": 0,
    "loss": "bpr-max",
    "bpreg": 1.0,
    "n_sample": 256,
    "dropout_p_hidden": 0.1,
    "learning_rate": 0.05,
    "momentum": 0.1,
    "batch_size": 32,
    "n_epochs": 6,
    "seed": 0,
}
BASELINES = ("popularity", "session-popularity", "item-knn", "markov")

# Model options: (flag, keyword, type, help). Defaults come from the model.
MODEL_OPTIONS = [
    ("--cell", "cell", str, "gru, lstm or rnn"),
    ("--layers", "layers", int, "hidden sizes of the stacked layers"),
    ("--embedding", "embedding", str, "0 (one-hot), a size, or tied"),
    ("--loss", "loss", str, "cross-entropy, bpr-max, top1-max, bpr or top1"),
    ("--final-act", "final_act", str, "linear or elu-<alpha>"),
    ("--bpreg", "bpreg", float, "score regularisation of bpr-max"),
    ("--logq", "logq", float, "weight of the log-Q correction (cross-entropy)"),
    ("--n-sample", "n_sample", int, "extra negatives per mini-batch"),
    ("--sample-alpha", "sample_alpha", float, "negatives ~ popularity^alpha"),
    ("--dropout-p-embed", "dropout_p_embed", float, "input dropout"),
    ("--dropout-p-hidden", "dropout_p_hidden", float, "hidden dropout"),
    ("--l2", "l2", float, "L2 penalty"),
    ("--optimizer", "optimizer", str, "adagrad, adam or sgd"),
    ("--learning-rate", "learning_rate", float, "learning rate"),
    ("--momentum", "momentum", float, "momentum"),
    ("--batch-size", "batch_size", int, "session-parallel slots"),
    ("--n-epochs", "n_epochs", int, "epochs"),
    ("--bptt", "bptt", int, "steps backpropagated through"),
    ("--clip-grad-norm", "clip_grad_norm", float, "clip the global gradient norm"),
    ("--gru-variant", "gru_variant", str, "torch or cho"),
    ("--dtype", "dtype", str, "float32 or float64"),
    ("--seed", "seed", int, "seed (default 0)"),
]


def _add_data_arguments(parser, *, data_optional):
    parser.add_argument(
        "data",
        nargs="?" if data_optional else None,
        metavar="DATA",
        help="training data (default: the built-in synthetic set)"
        if data_optional
        else "training data",
    )
    parser.add_argument("--test", metavar="TEST", help="test data of the same format")
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="sessions",
        help="sessions: one session per line, item ids separated by spaces; "
        "events: a GRU4Rec-style log (SessionId, ItemId, Time, tab-separated); "
        "diginetica: the raw CIKM Cup 2016 item views (default: sessions)",
    )
    parser.add_argument(
        "--test-days",
        type=float,
        default=7.0,
        help="without --test: test sessions start in the last N days (default 7)",
    )
    parser.add_argument(
        "--cutoffs", type=int, nargs="+", default=[5, 10, 20], help="K of the metrics"
    )


def add_train(subparsers):
    """Add ``rnnrec train``.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The ``rnnrec`` subcommands.
    """
    p = subparsers.add_parser(
        "train",
        help="train the session recommender and evaluate it against baselines",
        description="Train the session recommender on DATA (default: the built-in "
        "synthetic data), evaluate it on the test sessions (every click after the "
        "first, ranked among all items) beside the popularity and Markov baselines.",
    )
    _add_data_arguments(p, data_optional=True)
    p.add_argument("--config", metavar="FILE", help="model options as a JSON object")
    group = p.add_argument_group("model options (override --config)")
    for flag, dest, kind, text in MODEL_OPTIONS:
        nargs = "+" if dest == "layers" else None
        group.add_argument(flag, dest=dest, type=kind, nargs=nargs, help=text)
    p.add_argument("--save", metavar="PATH", help="save the trained model (.npz)")
    p.add_argument(
        "--metrics-json", metavar="PATH", help="write the metrics and run as JSON"
    )
    p.add_argument(
        "--baselines",
        nargs="*",
        choices=BASELINES,
        default=["popularity", "markov"],
        help="baselines evaluated beside the model (default: popularity markov)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run_train)


def add_evaluate(subparsers):
    """Add ``rnnrec evaluate``.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The ``rnnrec`` subcommands.
    """
    p = subparsers.add_parser("evaluate", help="evaluate a saved model on test data")
    p.add_argument("model", metavar="MODEL", help="a model saved by rnnrec train")
    p.add_argument("test", metavar="TEST", help="test data")
    p.add_argument("--format", choices=FORMATS, default="sessions")
    p.add_argument("--cutoffs", type=int, nargs="+", default=[5, 10, 20])
    p.set_defaults(run=run_evaluate)


def add_recommend(subparsers):
    """Add ``rnnrec recommend``.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The ``rnnrec`` subcommands.
    """
    p = subparsers.add_parser(
        "recommend", help="recommend the next items for a session's clicks"
    )
    p.add_argument("model", metavar="MODEL", help="a model saved by rnnrec train")
    p.add_argument("items", metavar="ITEM", nargs="+", help="the clicks, oldest first")
    p.add_argument("-k", type=int, default=20, help="recommendations (default 20)")
    p.add_argument("--exclude-seen", action="store_true")
    p.set_defaults(run=run_recommend)


def add_baselines(subparsers):
    """Add ``rnnrec baselines``.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The ``rnnrec`` subcommands.
    """
    p = subparsers.add_parser(
        "baselines", help="evaluate the four baselines on a train/test split"
    )
    _add_data_arguments(p, data_optional=False)
    p.set_defaults(run=run_baselines)


# -- data ---------------------------------------------------------------------


def _read(path, fmt):
    from rnnrec import data

    if fmt == "sessions":
        return data.read_session_lines(path)
    if fmt == "events":
        return data.read_events(path)
    return data.read_diginetica(path)


def load_split(args):
    """Read the data the arguments name and return a `rnnrec.data.TrainTest`.

    Parameters
    ----------
    args : argparse.Namespace
        ``data``, ``test``, ``format`` and ``test_days``.

    Returns
    -------
    TrainTest
        Train and test sets sharing the training item index.
    """
    from rnnrec import data

    if args.data is None:
        train, test = data.make_synthetic()
        return data.TrainTest(train=train, test=test)
    sessions = _read(args.data, args.format)
    if args.test is not None:
        return data.index_test_like_train(sessions, _read(args.test, args.format))
    if args.format == "sessions":
        raise ValueError(
            "one-session-per-line data has no times to split by; give --test TEST"
        )
    return data.preprocess(sessions, test_days=args.test_days)


def _describe(split):
    train, test = split.train, split.test
    return (
        f"train: {train.n_sessions} sessions, {train.n_clicks} clicks, "
        f"{train.n_items} items; test: {test.n_sessions} sessions, "
        f"{split.n_test_pairs} predictions"
        + (
            f" ({split.n_unknown_clicks} clicks on items unknown to training dropped)"
            if split.n_unknown_clicks
            else ""
        )
    )


# -- train --------------------------------------------------------------------


def model_config(args):
    """Merge ``--config`` and the model options into SessionRecommender arguments.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed ``train`` arguments.

    Returns
    -------
    dict
        Keyword arguments of `rnnrec.model.SessionRecommender`.
    """
    config = dict(SYNTHETIC_CONFIG) if args.data is None and not args.config else {}
    if args.config:
        with open(args.config, encoding="utf-8") as f:
            try:
                config = json.load(f)
            except json.JSONDecodeError as err:
                raise ValueError(
                    f"--config {args.config}: not valid JSON: {err}"
                ) from None
        if not isinstance(config, dict):
            raise ValueError(f"--config {args.config} must hold a JSON object")
    for _, dest, _, _ in MODEL_OPTIONS:
        value = getattr(args, dest)
        if value is not None:
            config[dest] = value
    if isinstance(config.get("embedding"), str) and config["embedding"] != "tied":
        try:
            config["embedding"] = int(config["embedding"])
        except ValueError:
            raise ValueError(
                f"--embedding must be 0, a size or tied, got {config['embedding']!r}"
            ) from None
    # The command line is reproducible by default: the same command, the same
    # model (the library's own default, None, draws a fresh seed).
    config.setdefault("seed", 0)
    if "layers" in config:
        config["layers"] = tuple(config["layers"])
    if "dtype" in config:
        config["dtype"] = {"float32": np.float32, "float64": np.float64}.get(
            config["dtype"], config["dtype"]
        )
    return config


def _baseline(name):
    from rnnrec import baselines

    return {
        "popularity": baselines.Popularity,
        "session-popularity": baselines.SessionPopularity,
        "item-knn": baselines.ItemKNN,
        "markov": baselines.Markov,
    }[name]()


def _table(rows, cutoffs):
    names = [f"recall@{k}" for k in cutoffs] + [f"mrr@{k}" for k in cutoffs]
    lines = [f"{'model':<22}" + "".join(f"{n:>11}" for n in names)]
    for label, metrics in rows:
        lines.append(f"{label:<22}" + "".join(f"{metrics[n]:>11.4f}" for n in names))
    return "\n".join(lines)


def run_train(args):
    """Carry out ``rnnrec train``; return the exit status.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed arguments.

    Returns
    -------
    int
        0.
    """
    from rnnrec.evaluation import evaluate_next_click
    from rnnrec.io import atomic_write_text
    from rnnrec.model import SessionRecommender

    _check_cutoffs(args.cutoffs)
    for path in (args.save, args.metrics_json):
        _check_writable(path)
    config = model_config(args)
    model = SessionRecommender(verbose=not args.quiet, **config)
    model._check_config()  # fail on bad options before reading the data
    split = load_split(args)
    print(_describe(split), flush=True)
    start = time.perf_counter()
    model.fit(split.train)
    seconds = time.perf_counter() - start
    for record in model.history_:
        print(
            f"epoch {record['epoch']:>3}  loss {record['loss']:.4f}  "
            f"{record['seconds']:.1f} s  {record['events_per_second']:,.0f} events/s",
            flush=True,
        )
    cutoffs = tuple(args.cutoffs)
    metrics = evaluate_next_click(model, split.test, cutoffs=cutoffs)
    rows = [(f"{model.cell} ({model.loss})", metrics)]
    for name in args.baselines:
        baseline = _baseline(name).fit(split.train)
        rows.append((name, evaluate_next_click(baseline, split.test, cutoffs=cutoffs)))
    print(_table(rows, cutoffs))
    if args.save:
        model.save(args.save)
        print(f"saved {args.save}")
    if args.metrics_json:
        result = {k: v for k, v in metrics.items()}
        result["run"] = {
            "data": args.data or "synthetic",
            "test": args.test,
            "config": model.get_config(),
            "seconds": seconds,
            "events_per_second": model.history_[-1]["events_per_second"],
            "history": model.history_,
            "baselines": {name: m for name, m in rows[1:]},
        }
        atomic_write_text(args.metrics_json, json.dumps(result, indent=2) + "\n")
    return 0


# -- evaluate, recommend, baselines --------------------------------------------


def run_evaluate(args):
    """Carry out ``rnnrec evaluate``; return the exit status.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed arguments.

    Returns
    -------
    int
        0.
    """
    from rnnrec.data import Sessions, index_test_like_train
    from rnnrec.evaluation import evaluate_next_click
    from rnnrec.model import SessionRecommender

    _check_cutoffs(args.cutoffs)
    model = SessionRecommender.load(args.model)
    ids = model.item_ids_
    known = Sessions(
        items=np.arange(len(ids), dtype=np.int64),
        offsets=np.array([0, len(ids)], dtype=np.int64),
        item_ids=ids,
    )
    split = index_test_like_train(known, _read(args.test, args.format))
    order = np.argsort(ids, kind="stable")
    if not np.array_equal(split.train.item_ids, ids[order]):
        raise ValueError(f"{args.test}: item ids do not match the model's")
    # The split indexes items by sorted id; the model by its own order.
    test = split.test
    test = Sessions(
        items=order[test.items], offsets=test.offsets, item_ids=ids, times=test.times
    )
    metrics = evaluate_next_click(model, test, cutoffs=tuple(args.cutoffs))
    print(_table([(os.path.basename(args.model), metrics)], args.cutoffs))
    print(
        f"{metrics['n']} predictions; {split.n_unknown_clicks} test clicks on "
        "unknown items dropped"
    )
    return 0


def run_recommend(args):
    """Carry out ``rnnrec recommend``; return the exit status.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed arguments.

    Returns
    -------
    int
        0.
    """
    from rnnrec.model import SessionRecommender

    model = SessionRecommender.load(args.model)
    kind = model.item_ids_.dtype.kind
    items = args.items
    if kind in "iu":
        try:
            items = [int(i) for i in items]
        except ValueError:
            raise ValueError(
                f"the model's item ids are integers, got {items}"
            ) from None
    top, scores = model.recommend(items, k=args.k, exclude_seen=args.exclude_seen)
    for rank, (item, score) in enumerate(zip(top, scores, strict=True), start=1):
        print(f"{rank:>3}  {item}  {score:.4f}")
    return 0


def run_baselines(args):
    """Carry out ``rnnrec baselines``; return the exit status.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed arguments.

    Returns
    -------
    int
        0.
    """
    from rnnrec.evaluation import evaluate_next_click

    _check_cutoffs(args.cutoffs)
    split = load_split(args)
    print(_describe(split))
    rows = []
    for name in BASELINES:
        baseline = _baseline(name).fit(split.train)
        rows.append(
            (
                name,
                evaluate_next_click(baseline, split.test, cutoffs=tuple(args.cutoffs)),
            )
        )
    print(_table(rows, args.cutoffs))
    return 0


def _check_cutoffs(cutoffs):
    if any(k < 1 for k in cutoffs):
        raise ValueError(f"--cutoffs must be positive integers, got {cutoffs}")


def _check_writable(path):
    if path is None:
        return
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ValueError(f"cannot write {path}: the folder {folder} does not exist")

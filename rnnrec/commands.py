"""The recommender's subcommands: ``train``, ``evaluate``, ``recommend``, ``baselines``.

It also holds ``study``, the gradient-dynamics studies of `rnnrec.dynamics`.

Each ``add_*`` function adds a subcommand to the ``rnnrec`` parser (see
`rnnrec.cli`); each ``run_*`` function carries it out and returns the exit status.
Output is one fixed table or line per result; errors in the user's input reach
`rnnrec.cli.main`, which prints them on one line and exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import numpy as np

from rnnrec.cli import _int_at_least  # cli imports this module lazily: no cycle

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
        "--checkpoint",
        metavar="PATH",
        help="write a checkpoint (.npz) after every epoch, each replacing the last "
        "atomically (default with --resume: the file resumed from)",
    )
    p.add_argument(
        "--checkpoint-every",
        metavar="N",
        type=_int_at_least(1),
        help="also write the checkpoint every N steps",
    )
    p.add_argument(
        "--resume",
        metavar="PATH",
        help="carry on from a checkpoint, with the same data; its settings are "
        "the defaults (change --n-epochs to train longer)",
    )
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
    p.add_argument(
        "--threads",
        metavar="N",
        type=_int_at_least(1),
        help="threads of the training step: row loops and large products on "
        "one pool of N threads, the BLAS on one thread inside (default: one)",
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
        split = data.index_test_like_train(sessions, _read(args.test, args.format))
    elif args.format == "sessions":
        raise ValueError(
            "one-session-per-line data has no times to split by; give --test TEST"
        )
    else:
        split = data.preprocess(sessions, test_days=args.test_days)
    _check_test_set(split, args.test or f"the last {args.test_days:g} days")
    return split


def _check_test_set(split, source):
    """Refuse a test set left without predictions: its metrics would be NaN."""
    if split.n_test_pairs == 0:
        raise ValueError(
            f"the test set ({source}) has no prediction left: "
            f"{split.n_unknown_clicks} of its clicks are on items unknown to "
            f"training and {split.n_dropped_test_sessions} sessions were dropped "
            "as shorter than 2 clicks"
        )


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
    if getattr(args, "resume", None):
        from rnnrec.model.checkpoint import read_checkpoint_config

        # Resuming: the checkpoint's settings are the defaults.
        config = read_checkpoint_config(args.resume)
        config.pop("verbose", None)
    elif args.data is None and not args.config:
        config = dict(SYNTHETIC_CONFIG)
    else:
        config = {}
    if args.config:
        with open(args.config, encoding="utf-8") as f:
            try:
                loaded = json.load(f)
            except json.JSONDecodeError as err:
                raise ValueError(
                    f"--config {args.config}: not valid JSON: {err}"
                ) from None
        if not isinstance(loaded, dict):
            raise ValueError(f"--config {args.config} must hold a JSON object")
        from rnnrec.model.saving import CONFIG_NAMES

        allowed = [name for name in CONFIG_NAMES if name != "verbose"]  # --quiet
        unknown = sorted(set(loaded) - set(allowed))
        if unknown:
            raise ValueError(
                f"--config {args.config}: unknown settings {unknown}; the settings "
                f"are {', '.join(allowed)}"
            )
        config.update(loaded)
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
        0, or 130 if interrupted (Ctrl-C).
    """
    from rnnrec.evaluation import evaluate_next_click
    from rnnrec.io import atomic_write_text
    from rnnrec.model import SessionRecommender

    _check_cutoffs(args.cutoffs)
    checkpoint = args.checkpoint or args.resume
    for path in (args.save, args.metrics_json, checkpoint):
        _check_writable(path)
    config = model_config(args)
    model = SessionRecommender(verbose=not args.quiet, **config)
    model._check_config()  # fail on bad options before reading the data
    if args.threads is not None:
        from rnnrec.kernels import set_threads

        set_threads(args.threads)
    split = load_split(args)
    print(_describe(split), flush=True)
    if args.resume:
        print(f"resuming from {args.resume}", flush=True)
    start = time.perf_counter()
    try:
        model.fit(
            split.train,
            checkpoint=checkpoint,
            checkpoint_every=args.checkpoint_every,
            resume=args.resume,
        )
    except KeyboardInterrupt:
        hint = ""
        if checkpoint and os.path.exists(checkpoint):
            hint = f"; carry on with the same command and --resume {checkpoint}"
        print(f"rnnrec train: interrupted{hint}", file=sys.stderr)
        return 130
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
    _check_test_set(split, args.test)
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


# -- study ----------------------------------------------------------------------

# Sizes of each study: the full run, and --quick, which finishes in seconds.
STUDY_SIZES = {
    "gradient-flow": {
        "full": {"steps": [10, 50, 100], "hidden": 32, "batch_size": 8},
        "quick": {"steps": [5, 10], "hidden": 8, "batch_size": 2},
    },
    "clipping": {
        "full": {"steps": 100, "hidden": 16, "batch_size": 16, "updates": 1500},
        "quick": {"steps": 10, "hidden": 8, "batch_size": 8, "updates": 40},
    },
    "tasks": {
        "full": {
            "steps": [20, 50, 100, 200],
            "hidden": 32,
            "batch_size": 32,
            "updates": 2000,
        },
        "quick": {"steps": [5, 10], "hidden": 8, "batch_size": 8, "updates": 30},
    },
}


def _non_negative_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def _clip_threshold(text):
    if text.lower() == "none":
        return None
    value = _non_negative_float(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be 'none' or a number > 0, got 0")
    return value


def _add_study_options(p, name):
    sizes = STUDY_SIZES[name]
    full, quick = sizes["full"], sizes["quick"]
    p.add_argument(
        "--hidden",
        type=_int_at_least(1),
        help=f"hidden size H (default {full['hidden']}; --quick {quick['hidden']})",
    )
    p.add_argument(
        "--batch-size",
        type=_int_at_least(1),
        help=f"sequences per batch (default {full['batch_size']}; "
        f"--quick {quick['batch_size']})",
    )
    if "updates" in full:
        p.add_argument(
            "--updates",
            type=_int_at_least(1),
            help=f"updates per training run (default {full['updates']}; "
            f"--quick {quick['updates']})",
        )
    p.add_argument("--seed", type=_int_at_least(0), default=0, help="default 0")
    p.add_argument(
        "--quick",
        action="store_true",
        help="small sizes that finish in seconds (options given explicitly win)",
    )
    p.add_argument(
        "--out", metavar="DIR", default=".", help="folder for the CSV and PNG files"
    )
    p.add_argument("--no-plot", action="store_true", help="write the CSV files only")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run_study)


def add_study(subparsers):
    """Add ``rnnrec study gradient-flow|clipping|tasks``.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The ``rnnrec`` subcommands.
    """
    from rnnrec.dynamics.studies import CELLS
    from rnnrec.dynamics.tasks import TASKS

    p = subparsers.add_parser(
        "study",
        help="watch gradients vanish and explode, and clipping tame them",
        description="Gradient dynamics studies. Each writes CSV files and, with "
        "matplotlib installed, a PNG figure into --out, and prints a table.",
    )
    studies = p.add_subparsers(dest="study", required=True, metavar="STUDY")

    flow = studies.add_parser(
        "gradient-flow",
        help="||dL/dh_t|| against the distance T - t, per cell and radius",
        description="For a loss on the last step, measure ||dL/dh_t|| (exact, "
        "from BPTT) and the spectral norm of dh_T/dh_t (power iteration) at every "
        "distance, for each cell, spectral radius of W_hh and length T.",
    )
    flow.add_argument("--cells", nargs="+", choices=CELLS, default=list(CELLS))
    flow.add_argument(
        "--radius",
        nargs="+",
        type=_non_negative_float,
        default=[0.5, 1.0, 1.5],
        help="spectral radii of W_hh's gate blocks (default 0.5 1.0 1.5)",
    )
    flow.add_argument(
        "--steps",
        nargs="+",
        type=_int_at_least(1),
        help="lengths T (default 10 50 100; --quick 5 10)",
    )
    _add_study_options(flow, "gradient-flow")

    clip = studies.add_parser(
        "clipping",
        help="train with and without gradient clipping",
        description="Train one model per clipping threshold from the same start "
        "on the same batches; record the loss and the gradient norm before "
        "clipping at every update.",
    )
    clip.add_argument("--task", choices=tuple(TASKS), default="adding")
    clip.add_argument("--cell", choices=CELLS, default="rnn")
    clip.add_argument(
        "--steps", type=_int_at_least(1), help="T (default 100; --quick 10)"
    )
    clip.add_argument(
        "--clip",
        nargs="+",
        type=_clip_threshold,
        default=[None, 0.5, 1.0, 5.0],
        help="thresholds of the global gradient norm, 'none' for no clipping "
        "(default none 0.5 1 5)",
    )
    clip.add_argument(
        "--radius",
        type=_non_negative_float,
        default=2.0,
        help="spectral radius of W_hh's gate blocks (default 2)",
    )
    clip.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd")
    clip.add_argument(
        "--learning-rate", type=_non_negative_float, default=0.1, help="default 0.1"
    )
    _add_study_options(clip, "clipping")

    tasks = studies.add_parser(
        "tasks",
        help="which cells solve which lengths of the memory tasks",
        description="Train every cell on every task and length (Adam, gradients "
        "clipped) and report the held-out error.",
    )
    tasks.add_argument(
        "--task", nargs="+", choices=tuple(TASKS), default=list(TASKS), dest="tasks"
    )
    tasks.add_argument("--cells", nargs="+", choices=CELLS, default=list(CELLS))
    tasks.add_argument(
        "--steps",
        nargs="+",
        type=_int_at_least(1),
        help="lengths T (default 20 50 100 200; --quick 5 10)",
    )
    tasks.add_argument(
        "--learning-rate", type=_non_negative_float, default=0.01, help="default 0.01"
    )
    tasks.add_argument(
        "--clip",
        type=_clip_threshold,
        default=1.0,
        help="gradient-norm threshold, or 'none' (default 1)",
    )
    _add_study_options(tasks, "tasks")


def _study_sizes(args):
    """Fill the size options the user left out from the full or quick defaults."""
    defaults = STUDY_SIZES[args.study]["quick" if args.quick else "full"]
    for name, value in defaults.items():
        if getattr(args, name, None) is None:
            setattr(args, name, value)


def _write_figure(draw, data, path, args):
    """Draw a figure if asked and possible; return the line to print."""
    from rnnrec.dynamics import plots

    if args.no_plot:
        return None
    if not plots.matplotlib_available():
        return f"no figure: matplotlib is not installed ({plots.PLOT_HINT})"
    draw(data, path)
    return f"wrote {path}"


def run_study(args):
    """Carry out ``rnnrec study``; return the exit status.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed arguments.

    Returns
    -------
    int
        0.
    """
    from rnnrec.dynamics import plots, studies
    from rnnrec.progress import progress_bar

    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise ValueError(f"--out {args.out}: a file is in the way, not a folder")
    try:
        os.makedirs(args.out, exist_ok=True)
    except OSError as err:
        raise ValueError(
            f"--out {args.out}: cannot create the folder ({err})"
        ) from None
    _study_sizes(args)
    out = args.out
    written = []

    if args.study == "gradient-flow":
        total = len(args.cells) * len(args.radius) * len(args.steps)
        bar = progress_bar(total, "gradient flow", not args.quiet)
        rows = studies.gradient_flow_study(
            args.cells,
            args.radius,
            args.steps,
            hidden_size=args.hidden,
            batch_size=args.batch_size,
            seed=args.seed,
            progress=bar,
        )
        table = studies.format_gradient_flow(rows)
        csv_path = os.path.join(out, "gradient_flow.csv")
        studies.write_csv(csv_path, rows)
        written.append(f"wrote {csv_path}")
        draw, data, png = plots.plot_gradient_flow, rows, "gradient_flow.png"

    elif args.study == "clipping":
        bar = progress_bar(len(args.clip) * args.updates, "clipping", not args.quiet)
        runs = studies.clipping_study(
            args.task,
            args.steps,
            args.clip,
            cell=args.cell,
            hidden_size=args.hidden,
            radius=args.radius,
            optimizer=args.optimizer,
            learning_rate=args.learning_rate,
            n_updates=args.updates,
            batch_size=args.batch_size,
            seed=args.seed,
            progress=bar,
        )
        table = studies.format_clipping(runs)
        csv_path = os.path.join(out, "clipping.csv")
        studies.write_csv(csv_path, studies.clipping_rows(runs))
        written.append(f"wrote {csv_path}")
        draw, data, png = plots.plot_clipping, runs, "clipping.png"

    else:
        total = len(args.tasks) * len(args.cells) * len(args.steps) * args.updates
        bar = progress_bar(total, "tasks", not args.quiet)
        rows = studies.tasks_study(
            args.tasks,
            args.cells,
            args.steps,
            hidden_size=args.hidden,
            n_updates=args.updates,
            batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            clip=args.clip,
            seed=args.seed,
            progress=bar,
        )
        table = studies.format_tasks(rows)
        csv_path = os.path.join(out, "tasks.csv")
        studies.write_csv(csv_path, rows)
        written.append(f"wrote {csv_path}")
        draw, data, png = plots.plot_tasks, rows, "tasks.png"

    if bar is not None:
        bar.close()
    figure = _write_figure(draw, data, os.path.join(out, png), args)
    print(table)
    for line in [*written, figure]:
        if line is not None:
            print(line)
    return 0

"""The ``rnnrec`` command.

Subcommands:

``rnnrec gradcheck``
    Check every cell's hand-written BPTT: float64 layers against central finite
    differences, float32 layers against their float64 twins. One row per tensor;
    exit status 1 if any check fails.
``rnnrec train``, ``evaluate``, ``recommend``, ``baselines``
    The session recommender (see `rnnrec.commands`).
``rnnrec study gradient-flow``, ``clipping``, ``tasks``
    Gradient dynamics: watch gradients vanish and explode, and clipping tame
    them (see `rnnrec.dynamics`).
``rnnrec sweep``
    Many trials of one task, on a local process pool or a Dask cluster (see
    `rnnrec.sweep`).
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings

import numpy as np

CELLS = ("rnn", "lstm", "gru")


def _layer_configs(cells):
    """Yield (label, class, keyword arguments) for every variant of the cells."""
    from rnnrec import GRU, LSTM, RNN

    for cell in cells:
        if cell == "rnn":
            yield "rnn-tanh", RNN, {"nonlinearity": "tanh"}
            yield "rnn-relu", RNN, {"nonlinearity": "relu"}
        elif cell == "lstm":
            yield "lstm", LSTM, {}
        else:
            yield "gru-torch", GRU, {"variant": "torch"}
            yield "gru-cho", GRU, {"variant": "cho"}


def run_gradcheck(cells, backends, dtypes, *, seed=0, trials=2):
    """Run the gradient checks the ``gradcheck`` subcommand prints.

    Parameters
    ----------
    cells : sequence of {"rnn", "lstm", "gru"}
        Cells to check (every variant of each).
    backends : sequence of {"numba", "numpy"}
        Backends to check.
    dtypes : sequence of {"float64", "float32"}
        Dtypes to check.
    seed : int, default 0
        Seed of the random shapes and problems.
    trials : int, default 2
        Random problems per configuration.

    Returns
    -------
    list of GradCheckReport
        One report per configuration and trial.
    """
    from rnnrec.gradcheck import check_layer, compare_with_float64_twin

    rng = np.random.default_rng(seed)
    reports = []
    for label, cls, kwargs in _layer_configs(cells):
        for backend in backends:
            for dtype in dtypes:
                for _ in range(trials):
                    T, B = int(rng.integers(1, 13)), int(rng.integers(1, 6))
                    D, H = (int(v) for v in rng.integers(1, 9, size=2))
                    layer = cls(
                        D,
                        H,
                        dtype=np.dtype(dtype),
                        backend=backend,
                        seed=rng,
                        **kwargs,
                    )
                    sub = int(rng.integers(2**31))
                    if dtype == "float64":
                        report = check_layer(layer, T, B, seed=sub)
                    else:
                        report = compare_with_float64_twin(layer, T, B, seed=sub)
                    report.label = f"{label} {backend} {dtype[-2:]} T{T}B{B}D{D}H{H}"
                    reports.append(report)
    return reports


def _gradcheck(args):
    from rnnrec.gradcheck import reports_to_json

    cells = CELLS if args.cell == "all" else (args.cell,)
    backends = ("numba", "numpy") if args.backend == "all" else (args.backend,)
    dtypes = ("float64", "float32") if args.dtype == "all" else (args.dtype,)
    reports = run_gradcheck(cells, backends, dtypes, seed=args.seed, trials=args.trials)
    passed = all(r.passed for r in reports)
    if args.json:
        text = reports_to_json(reports)
        if args.json == "-":
            print(text)
        else:
            from rnnrec.io import atomic_write_text

            atomic_write_text(args.json, text + "\n")
    if args.json != "-":
        header, *_ = str(reports[0]).splitlines()
        print(header)
        for r in reports:
            print("\n".join(str(r).splitlines()[1:]))
        n_checks = sum(len(r.checks) for r in reports)
        n_bad = sum(not c.passed for r in reports for c in r.checks)
        verdict = "all OK" if passed else f"{n_bad} NOT OK"
        print(f"{n_checks} tensors checked in {len(reports)} problems: {verdict}")
    return 0 if passed else 1


def _int_at_least(minimum):
    """Return an argparse type: an integer >= minimum, with a message that says so."""

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"must be an integer, got {text!r}"
            ) from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


def build_parser():
    """Build the ``rnnrec`` argument parser.

    Returns
    -------
    argparse.ArgumentParser
        The parser, with one sub-parser per subcommand.
    """
    parser = argparse.ArgumentParser(
        prog="rnnrec",
        description="Recurrent networks with hand-written BPTT.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    grad = sub.add_parser(
        "gradcheck",
        help="check the hand-written gradients of every cell",
        description=(
            "Check BPTT of every cell: float64 against central finite differences "
            "(relative error < 1e-6), float32 against the float64 twin on the same "
            "weights (relative error < 1e-4). Exit status 1 if any check fails."
        ),
    )
    grad.add_argument("--cell", choices=(*CELLS, "all"), default="all")
    grad.add_argument("--backend", choices=("numba", "numpy", "all"), default="all")
    grad.add_argument("--dtype", choices=("float64", "float32", "all"), default="all")
    grad.add_argument(
        "--seed", type=_int_at_least(0), default=0, help="seed (default 0)"
    )
    grad.add_argument(
        "--trials",
        type=_int_at_least(1),
        default=2,
        help="random problems per configuration (default 2)",
    )
    grad.add_argument(
        "--json",
        nargs="?",
        const="-",
        metavar="PATH",
        help="write the results as JSON to PATH (to standard output without PATH)",
    )
    grad.set_defaults(run=_gradcheck)

    from rnnrec import commands

    commands.add_train(sub)
    commands.add_evaluate(sub)
    commands.add_recommend(sub)
    commands.add_baselines(sub)
    commands.add_study(sub)

    from rnnrec.sweep.command import add_sweep

    add_sweep(sub)
    return parser


def _one_line_warning(command):
    """Return a `warnings.showwarning` that prints ``rnnrec CMD: warning: ...``."""

    def show(message, category, filename, lineno, file=None, line=None):
        print(f"rnnrec {command}: warning: {message}", file=sys.stderr)

    return show


def main(argv=None):
    """Run the ``rnnrec`` command.

    Parameters
    ----------
    argv : list of str, optional
        Arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit status.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    path = getattr(args, "json", None)
    if path not in (None, "-"):
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            parser.error(f"--json: the folder {folder} does not exist")
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _one_line_warning(args.command)
            return args.run(args)
    except FloatingPointError as err:
        # Training diverged: where, and what to change, on one line; status 1.
        print(f"rnnrec {args.command}: error: {err}", file=sys.stderr)
        return 1
    except (ValueError, TypeError, KeyError, OSError, ImportError) as err:
        # The user's input was wrong: one line, no traceback, exit status 2.
        if isinstance(err, OSError) or not err.args:
            message = str(err) or err.__class__.__name__
        else:
            message = err.args[0]
        print(f"rnnrec {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

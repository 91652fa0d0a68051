"""``rnnrec sweep SPEC [--scheduler ADDRESS] [--workers N] [--out DIR]``."""

from __future__ import annotations

import os
import sys
import time

from rnnrec.cli import _int_at_least  # cli imports this module lazily: no cycle
from rnnrec.sweep.results import number


def add_sweep(subparsers):
    """Add ``rnnrec sweep``.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The ``rnnrec`` subcommands.
    """
    p = subparsers.add_parser(
        "sweep",
        help="run a grid or random search of trials, locally or on a Dask cluster",
        description="Run the trials a SPEC (TOML, or YAML with PyYAML) describes: "
        "training the recommender, or one of the gradient-dynamics studies, over "
        "a grid or a random search and a list of seeds. Each finished trial is "
        "appended to DIR/trials.csv; a rerun skips the trials finished there. "
        "At the end the best points are printed and written to DIR/best.csv, and "
        "with matplotlib DIR/<metric>.png plots the metric against each searched "
        "setting. Exit status 1 if a trial failed.",
    )
    p.add_argument("spec", metavar="SPEC", help="the sweep's SPEC file")
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run on the Dask cluster of this scheduler (tcp://host:port); needs "
        "pip install rnnrec[dask]; data paths must be readable by the workers",
    )
    p.add_argument(
        "--workers",
        metavar="N",
        type=_int_at_least(1),
        help="local worker processes (default: the number of CPUs); with "
        "--scheduler, wait for N workers to join",
    )
    p.add_argument(
        "--out",
        metavar="DIR",
        help="folder of the results, created if missing (default: the SPEC's "
        "name without its extension, in the current folder)",
    )
    p.add_argument(
        "--top", type=_int_at_least(1), default=10, help="best points shown (10)"
    )
    p.add_argument("--no-plot", action="store_true", help="write no figure")
    p.add_argument("--quiet", action="store_true", help="no line per trial")
    p.set_defaults(run=run_sweep_command)


def _out_folder(args):
    out = args.out or os.path.splitext(os.path.basename(args.spec))[0]
    parent = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(parent):
        raise ValueError(f"--out {out}: the folder {parent} does not exist")
    if os.path.exists(out) and not os.path.isdir(out):
        raise ValueError(f"--out {out}: exists and is not a folder")
    os.makedirs(out, exist_ok=True)
    return out


def _trial_line(spec, trial, row, n, total):
    params = " ".join(f"{k}={_show(v)}" for k, v in trial.params.items())
    head = f"[{n}/{total}] {trial.trial} {params} seed={trial.seed}".replace("  ", " ")
    if row["status"] != "ok":
        return f"{head}: failed: {row['error']}"
    return (
        f"{head}: {spec.metric} {number(row[spec.metric])}  "
        f"{row['seconds']:.1f} s  {row['worker']}"
    )


def _show(value):
    return "none" if value is None else value


def run_sweep_command(args):
    """Carry out ``rnnrec sweep``; return the exit status.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed arguments.

    Returns
    -------
    int
        0 if every trial finished, 1 if some failed, 130 if interrupted.
    """
    from rnnrec.dynamics.plots import PLOT_HINT, matplotlib_available
    from rnnrec.sweep import results
    from rnnrec.sweep.executors import make_executor
    from rnnrec.sweep.runner import run_sweep
    from rnnrec.sweep.spec import load_spec

    spec = load_spec(args.spec)
    if args.scheduler is None or spec.data.get("ship"):  # read on this machine
        for name in ("train", "test"):
            path = spec.data.get(name)
            if path is not None and not os.path.isfile(path):
                raise ValueError(f"SPEC {args.spec} [data] {name}: no file {path}")
    out = _out_folder(args)
    start = time.perf_counter()
    with make_executor(args.scheduler, args.workers) as executor:
        n_trials = len(spec.trials())
        print(
            f"{spec.task}: {len(spec.points)} points x {len(spec.seeds)} seeds = "
            f"{n_trials} trials on {executor.description}",
            flush=True,
        )

        def report(trial, row, n, total):
            if not args.quiet:
                print(_trial_line(spec, trial, row, n, total), flush=True)

        try:
            outcome = run_sweep(spec, out, executor, on_trial=report)
        except KeyboardInterrupt:
            print(
                "rnnrec sweep: interrupted; the finished trials are in "
                f"{os.path.join(out, 'trials.csv')}, and the same command carries on",
                file=sys.stderr,
            )
            return 130
    print(
        f"{outcome.ok} finished, {outcome.failed} failed, {outcome.skipped} skipped "
        f"(finished before) in {time.perf_counter() - start:.1f} s; "
        f"results in {outcome.path}"
    )
    summary = results.summarize(spec, outcome.rows)
    if summary:
        print(results.format_best(spec, summary, top=args.top))
        best = os.path.join(out, "best.csv")
        results.write_best(best, spec, summary)
        print(f"wrote {best}")
        if spec.searched and not args.no_plot:
            if matplotlib_available():
                png = os.path.join(out, f"{spec.metric.replace('@', '_at_')}.png")
                results.plot_metric(spec, outcome.rows, png)
                print(f"wrote {png}")
            else:
                print(f"no figure: matplotlib is not installed ({PLOT_HINT})")
    return 1 if outcome.failed else 0

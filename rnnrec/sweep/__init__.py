"""Sweeps: many trials of one task, on a local process pool or a Dask cluster.

A sweep is a SPEC file (`rnnrec.sweep.spec`) naming a task, the fixed settings,
the search (a grid, or random draws from ranges) and the seeds; every point of
the search runs once per seed. `run_sweep` sends the trials that have not
finished yet to an executor (`rnnrec.sweep.executors`: a local pool, or Dask
with ``--scheduler``) and appends a row to ``trials.csv`` as each one ends
(`rnnrec.sweep.results`). A trial is a pure function of its settings, seed and
data (`rnnrec.sweep.tasks`), so the results do not depend on where it ran.

From Python::

    from rnnrec.sweep import LocalExecutor, load_spec, run_sweep

    spec = load_spec("benchmarks/sweeps/clipping_seeds.toml")
    with LocalExecutor(workers=2) as pool:
        outcome = run_sweep(spec, "clipping_seeds", pool)
"""

from rnnrec.sweep.executors import DaskExecutor, Executor, LocalExecutor, WorkerLost
from rnnrec.sweep.results import ResultsFile, format_best, plot_metric, summarize
from rnnrec.sweep.runner import SweepOutcome, run_sweep
from rnnrec.sweep.spec import SweepSpec, Trial, load_spec, parse_spec
from rnnrec.sweep.tasks import TASK_NAMES, TrialJob, run_trial

__all__ = [
    "TASK_NAMES",
    "DaskExecutor",
    "Executor",
    "LocalExecutor",
    "ResultsFile",
    "SweepOutcome",
    "SweepSpec",
    "Trial",
    "TrialJob",
    "WorkerLost",
    "format_best",
    "load_spec",
    "parse_spec",
    "plot_metric",
    "run_sweep",
    "run_trial",
    "summarize",
]

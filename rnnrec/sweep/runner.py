"""Running a sweep: skip what is done, run the rest, record each trial as it ends."""

from __future__ import annotations

import os
from dataclasses import dataclass

from rnnrec.sweep.executors import LocalExecutor
from rnnrec.sweep.results import ResultsFile, columns_for
from rnnrec.sweep.tasks import TrialJob, load_data, run_trial

RESULTS_NAME = "trials.csv"


@dataclass
class SweepOutcome:
    """What a call of `run_sweep` did.

    Attributes
    ----------
    total : int
        Trials in the SPEC.
    skipped : int
        Trials already finished in the results file.
    ok, failed : int
        Trials run now that finished, and that failed.
    rows : list of dict
        Every row of the results file afterwards (`ResultsFile.rows`).
    path : str
        The results file.
    """

    total: int
    skipped: int
    ok: int
    failed: int
    rows: list
    path: str


def run_sweep(spec, out, executor=None, *, on_trial=None):
    """Run every trial of a SPEC that has not finished yet in ``out``.

    Parameters
    ----------
    spec : SweepSpec
        The checked SPEC (`rnnrec.sweep.load_spec`).
    out : str or os.PathLike
        The folder of the results; ``trials.csv`` there is created or resumed.
    executor : Executor, optional
        Where trials run; default a `LocalExecutor` on every CPU, closed at the
        end (an executor given is left open).
    on_trial : callable, optional
        ``on_trial(trial, row, n_done, n_todo)`` after each trial is recorded
        (the command prints a line there).

    Returns
    -------
    SweepOutcome
        Counts and the rows of the results file.
    """
    out = os.fspath(out)
    if not os.path.isdir(out):
        raise ValueError(f"--out {out}: the folder does not exist")
    results = ResultsFile(os.path.join(out, RESULTS_NAME), columns_for(spec))
    trials = spec.trials()
    finished = results.finished()
    todo = [t for t in trials if t.trial not in finished]
    by_id = {t.trial: t for t in todo}
    jobs = [TrialJob(t.trial, spec.task, t.settings, t.seed, spec.data) for t in todo]

    shared = None
    if spec.data.get("ship") and jobs:  # read here, sent to each worker once
        shared = load_data(spec.data)
    own = executor is None
    if own:
        executor = LocalExecutor()
    ok = failed = 0
    try:
        for n, (job, outcome) in enumerate(
            executor.run(run_trial, jobs, shared), start=1
        ):
            trial = by_id[job.trial]
            if isinstance(outcome, Exception):
                outcome = {
                    "status": "failed",
                    "metrics": {},
                    "seconds": None,
                    "worker": "",
                    "error": f"{type(outcome).__name__}: {outcome}",
                }
            row = {
                "trial": trial.trial,
                "status": outcome["status"],
                "seed": trial.seed,
                **{k: "none" if v is None else v for k, v in trial.settings.items()},
                **outcome["metrics"],
                "seconds": outcome["seconds"],
                "worker": outcome["worker"],
                "error": outcome["error"],
            }
            results.append(row)
            if row["status"] == "ok":
                ok += 1
            else:
                failed += 1
            if on_trial is not None:
                on_trial(trial, row, n, len(jobs))
    finally:
        if own:
            executor.close()
    return SweepOutcome(
        total=len(trials),
        skipped=len(trials) - len(todo),
        ok=ok,
        failed=failed,
        rows=results.rows(),
        path=results.path,
    )

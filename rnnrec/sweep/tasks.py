"""What one trial of a sweep does: the tasks a SPEC can name, and `run_trial`.

A task turns settings and a seed into metrics. Three are known:

``recommender``
    Train `rnnrec.SessionRecommender` with the settings on the spec's data (the
    built-in synthetic set by default) and score it with
    `rnnrec.evaluate` (Recall@K and MRR@K for each cutoff, final training loss).
``clipping``
    One run of `rnnrec.dynamics.studies.clipping_study` with one threshold
    ``clip``: final loss, held-out error, share of updates clipped, largest
    gradient norm, whether it diverged.
``tasks``
    One run of `rnnrec.dynamics.studies.tasks_study`: one memory task, one
    cell, one length; held-out error and whether it counts as solved.

Every metric is a pure function of the settings, the seed and the data, so a
trial gives the same numbers wherever it runs (with BLAS on one thread, which
both executors arrange). Wall time and the worker are recorded beside the
metrics, not among them.

Data reach the workers in one of two ways, and either way once per worker,
not once per trial:

* by path (the default): each worker process reads the files named in the spec
  (or draws the synthetic set) the first time a trial needs them and keeps
  them for the trials that follow. The paths must name the same files on
  every worker: a shared file system, or the same folder layout everywhere.
* shipped (``ship = true`` in ``[data]``): the machine running the sweep
  reads the data and the executor sends the split to each worker once (see
  `rnnrec.sweep.executors`), for workers that cannot see its files.
"""

from __future__ import annotations

import json
import math
import os
import socket
import sys
import time
import traceback
from dataclasses import dataclass, field

from rnnrec._validation import check_choice, check_positive_int

TASK_NAMES = ("recommender", "clipping", "tasks")


@dataclass(frozen=True)
class TaskInfo:
    """What a SPEC may say about one task.

    Attributes
    ----------
    name : str
        The task's name in the SPEC.
    settings : tuple of str
        The settings a trial accepts (fixed or searched).
    metrics : tuple of str
        The metrics a trial reports, in the column order of the results.
    goals : dict
        ``"min"`` or ``"max"`` per metric: which way is better.
    default_metric : str
        The metric optimised when the SPEC names none.
    """

    name: str
    settings: tuple
    metrics: tuple
    goals: dict
    default_metric: str


CLIPPING_SETTINGS = (
    "task",
    "steps",
    "clip",
    "cell",
    "hidden_size",
    "radius",
    "optimizer",
    "learning_rate",
    "n_updates",
    "batch_size",
)
TASKS_SETTINGS = (
    "task",
    "cell",
    "steps",
    "hidden_size",
    "n_updates",
    "batch_size",
    "learning_rate",
    "clip",
)
# Every SessionRecommender argument but the seed (the trial's) and verbose.
RECOMMENDER_SETTINGS = (
    "cell",
    "layers",
    "embedding",
    "loss",
    "final_act",
    "bpreg",
    "logq",
    "n_sample",
    "sample_alpha",
    "dropout_p_embed",
    "dropout_p_hidden",
    "l2",
    "optimizer",
    "learning_rate",
    "momentum",
    "batch_size",
    "n_epochs",
    "bptt",
    "clip_grad_norm",
    "gru_variant",
    "dtype",
    "backend",
)
# Settings whose value "none" (TOML has no null) means None.
NONE_SETTINGS = ("clip", "clip_grad_norm", "final_act")


def task_info(name, cutoffs=(20,)):
    """Return what a SPEC may say about the task ``name``.

    Parameters
    ----------
    name : {"recommender", "clipping", "tasks"}
        The task.
    cutoffs : sequence of int, default (20,)
        K of the recommender's metrics.

    Returns
    -------
    TaskInfo
        Its settings, metrics and their goals.
    """
    check_choice(name, "task", TASK_NAMES)
    if name == "recommender":
        ranking = [f"{m}@{k}" for m in ("recall", "mrr") for k in cutoffs]
        goals = {m: "max" for m in ranking} | {"final_loss": "min"}
        return TaskInfo(
            name,
            RECOMMENDER_SETTINGS,
            (*ranking, "final_loss"),
            goals,
            f"recall@{max(cutoffs)}",
        )
    if name == "clipping":
        metrics = ("final_loss", "final_error", "share_clipped", "max_grad_norm")
        goals = dict.fromkeys(metrics, "min") | {"diverged": "min"}
        return TaskInfo(
            name, CLIPPING_SETTINGS, (*metrics, "diverged"), goals, "final_loss"
        )
    goals = {"error": "min", "solved": "max"}
    return TaskInfo(name, TASKS_SETTINGS, ("error", "solved"), goals, "error")


# -- checking settings on the client, before anything runs -------------------------


def check_settings(task, settings):
    """Raise ValueError or TypeError if a trial's settings cannot run.

    Parameters
    ----------
    task : {"recommender", "clipping", "tasks"}
        The task.
    settings : dict
        The trial's settings (fixed and searched together).
    """
    if task == "recommender":
        from rnnrec.model import SessionRecommender

        SessionRecommender(**_recommender_config(settings, seed=0))._check_config()
        return
    from rnnrec.dynamics.studies import CELLS
    from rnnrec.dynamics.tasks import TASKS

    check_choice(settings.get("task", "adding"), "task", tuple(TASKS))
    check_choice(settings.get("cell", "rnn"), "cell", CELLS)
    if task == "clipping":
        check_choice(settings.get("optimizer", "sgd"), "optimizer", ("sgd", "adam"))
    for name in ("steps", "hidden_size", "n_updates", "batch_size"):
        if name in settings:
            check_positive_int(settings[name], name)
    for name in ("radius", "learning_rate", "clip"):
        value = settings.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"{name} must be a number, got {value!r}")
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"{name} must be a finite number >= 0, got {value}")
    if settings.get("clip") == 0:
        raise ValueError("clip must be 'none' or a number > 0, got 0")


def _recommender_config(settings, seed):
    config = dict(settings)
    if "layers" in config:
        layers = config["layers"]
        config["layers"] = (layers,) if isinstance(layers, int) else tuple(layers)
    config["seed"] = seed
    return config


# -- running one trial on a worker -----------------------------------------------


@dataclass(frozen=True)
class TrialJob:
    """Everything a worker needs to run one trial; small and picklable.

    Attributes
    ----------
    trial : str
        The trial's id (a hash of what follows).
    task : str
        The task's name.
    settings : dict
        Its settings.
    seed : int
        Its seed.
    data : dict
        The spec's ``[data]`` table (for the recommender), paths absolute.
    """

    trial: str
    task: str
    settings: dict
    seed: int
    data: dict = field(default_factory=dict)


# Data sets this process has read or drawn, by their spec: loaded once per worker.
_DATA_CACHE = {}


def load_data(data):
    """Return the recommender's train/test split for a ``[data]`` table, cached.

    Parameters
    ----------
    data : dict
        ``synthetic`` (arguments of `rnnrec.data.make_synthetic`), or ``train``
        with optional ``test``, ``format`` and ``test_days`` (as for
        ``rnnrec train``); ``cutoffs`` and ``ship`` are ignored here.

    Returns
    -------
    rnnrec.data.TrainTest
        The split; the same object for every trial of this process.
    """
    read = {k: v for k, v in data.items() if k not in ("cutoffs", "ship")}
    key = json.dumps(read, sort_keys=True)
    if key not in _DATA_CACHE:
        from argparse import Namespace

        from rnnrec import data as rdata

        if "train" in data:
            from rnnrec.commands import load_split

            args = Namespace(
                data=data["train"],
                test=data.get("test"),
                format=data.get("format", "sessions"),
                test_days=float(data.get("test_days", 7.0)),
            )
            split = load_split(args)
        else:
            train, test = rdata.make_synthetic(**data.get("synthetic", {}))
            split = rdata.TrainTest(train=train, test=test)
        _DATA_CACHE[key] = split
    return _DATA_CACHE[key]


def _run_recommender(settings, seed, data, shared):
    from rnnrec.evaluation import evaluate_next_click
    from rnnrec.model import SessionRecommender

    split = load_data(data) if shared is None else shared
    cutoffs = tuple(data.get("cutoffs", (20,)))
    model = SessionRecommender(verbose=False, **_recommender_config(settings, seed))
    model.fit(split.train)
    scores = evaluate_next_click(model, split.test, cutoffs=cutoffs)
    names = task_info("recommender", cutoffs).metrics[:-1]
    metrics = {name: float(scores[name]) for name in names}
    metrics["final_loss"] = float(model.history_[-1]["loss"])
    return metrics


def _run_clipping(settings, seed, data, shared):
    from rnnrec.dynamics.studies import clipping_study

    kwargs = dict(settings)
    clip = kwargs.pop("clip", None)
    kwargs.setdefault("steps", 100)
    [(_, log)] = clipping_study(clips=[clip], seed=seed, **kwargs)
    return {
        "final_loss": float(log.final_loss),
        "final_error": float(log.final_error),
        "share_clipped": float(log.share_clipped),
        "max_grad_norm": float(log.max_grad_norm),
        "diverged": int(log.diverged_at is not None),
    }


def _run_tasks(settings, seed, data, shared):
    from rnnrec.dynamics.studies import tasks_study

    kwargs = dict(settings)
    one = {
        "tasks": [kwargs.pop("task", "adding")],
        "cells": [kwargs.pop("cell", "rnn")],
        "steps": [kwargs.pop("steps", 20)],
    }
    [row] = tasks_study(**one, seed=seed, **kwargs)
    return {"error": float(row["error"]), "solved": int(row["solved"])}


RUNNERS = {
    "recommender": _run_recommender,
    "clipping": _run_clipping,
    "tasks": _run_tasks,
}


def worker_name():
    """Return the name of the worker running this code.

    Returns
    -------
    str
        The Dask worker's address on a Dask worker, else ``host:pid``.
    """
    if "distributed" in sys.modules:
        try:
            from distributed import get_worker

            return get_worker().address
        except ValueError:  # not inside a Dask worker
            pass
    return f"{socket.gethostname()}:{os.getpid()}"


def run_trial(job, shared=None):
    """Run one trial and return its record; an error in the trial is recorded.

    Parameters
    ----------
    job : TrialJob
        The trial.
    shared : rnnrec.data.TrainTest, optional
        The recommender's data, when shipped rather than read by the worker.

    Returns
    -------
    dict
        ``trial``, ``status`` ("ok" or "failed"), ``metrics`` (dict, empty if
        failed), ``seconds`` (wall time), ``worker`` and ``error`` (the
        exception's type and message on one line, "" if ok).
    """
    start = time.perf_counter()
    try:
        metrics = RUNNERS[job.task](job.settings, job.seed, job.data, shared)
        status, error = "ok", ""
    except Exception as err:  # a trial's failure is data, not the sweep's end
        metrics, status = {}, "failed"
        last = traceback.extract_tb(err.__traceback__)[-1]
        where = f" ({os.path.basename(last.filename)}:{last.lineno})"
        error = f"{type(err).__name__}: {err}{where}".replace("\n", " ")
    return {
        "trial": job.trial,
        "status": status,
        "metrics": metrics,
        "seconds": time.perf_counter() - start,
        "worker": worker_name(),
        "error": error,
    }

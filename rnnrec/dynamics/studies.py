"""The three studies behind ``rnnrec study``: runs, tables and CSV files.

* `gradient_flow_study`: ``||dL/dh_t||`` and ``||dh_T/dh_t||`` against the
  distance ``T - t``, for every cell, spectral radius and sequence length.
* `clipping_study`: one training run per clipping threshold, with the loss and
  the pre-clip gradient norm at every update.
* `tasks_study`: the held-out error each cell reaches on each task and length.

Each study returns plain rows (dicts), which `write_csv` writes and the
``format_*`` functions turn into the tables the command prints;
`rnnrec.dynamics.plots` draws the figures. Nothing here prints.
"""

from __future__ import annotations

import csv
import io
import math
import warnings

import numpy as np

from rnnrec._validation import as_rng, check_positive_int
from rnnrec.cells import GRU, LSTM, RNN
from rnnrec.dynamics.flow import gradient_flow, jacobian_norms, saturation
from rnnrec.dynamics.spectrum import set_spectral_radius
from rnnrec.dynamics.tasks import make_task
from rnnrec.dynamics.training import SequenceToOne, train
from rnnrec.io import atomic_write_text

CELLS = ("rnn", "lstm", "gru")

# What counts as solved: the adding problem's MSE target from the literature
# (0.01, against 0.167 for remembering nothing), and 5 % wrong answers otherwise.
SOLVED_BELOW = {"adding": 0.01, "copy": 0.05, "session": 0.05}


def make_layer(
    cell,
    input_size,
    hidden_size,
    *,
    radius=None,
    init="orthogonal",
    forget_bias=1.0,
    seed=None,
    backend="numba",
):
    """Build a layer for a study, optionally with a chosen recurrent radius.

    Parameters
    ----------
    cell : {"rnn", "lstm", "gru"}
        The tanh RNN, the LSTM or the GRU (PyTorch's variant).
    input_size, hidden_size : int
        D and H.
    radius : float, optional
        Spectral radius given to every gate's block of ``W_hh``
        (`rnnrec.dynamics.spectrum.set_spectral_radius`); the scheme's own if
        omitted.
    init : {"orthogonal", "pytorch", "glorot"}, default "orthogonal"
        The initialisation before rescaling. With "orthogonal" each block becomes
        ``radius * Q``, whose spectral norm is also ``radius``, and the biases
        are zero.
    forget_bias : float or None, default 1.0
        The LSTM's forget-gate bias; ignored by the other cells.
    seed : None, int or numpy.random.Generator
        Seed of the initialisation.
    backend : {"numba", "numpy"}, default "numba"
        The layer's backend.

    Returns
    -------
    RNN, LSTM or GRU
        The layer.
    """
    if cell not in CELLS:
        options = ", ".join(repr(c) for c in CELLS)
        raise ValueError(f"cell must be one of {options}, got {cell!r}")
    common = {"seed": seed, "init": init, "backend": backend}
    if cell == "rnn":
        layer = RNN(input_size, hidden_size, nonlinearity="tanh", **common)
    elif cell == "lstm":
        layer = LSTM(input_size, hidden_size, forget_bias=forget_bias, **common)
    else:
        layer = GRU(input_size, hidden_size, **common)
    if radius is not None:
        set_spectral_radius(layer, radius)
    return layer


def _check_list(values, name, allowed=None):
    values = list(values)
    if not values:
        raise ValueError(f"{name} must name at least one value")
    if allowed is not None:
        for value in values:
            if value not in allowed:
                options = ", ".join(repr(a) for a in allowed)
                raise ValueError(f"{name} must be among {options}, got {value!r}")
    return values


def gradient_flow_study(
    cells=CELLS,
    radii=(0.5, 1.0, 1.5),
    steps=(10, 50, 100),
    *,
    hidden_size=32,
    input_size=8,
    batch_size=8,
    n_iter=100,
    seed=0,
    progress=None,
):
    """Measure gradient flow for every cell, spectral radius and length.

    For each configuration a fresh layer (`make_layer`, orthogonal blocks scaled
    to the radius, LSTM forget bias 1) reads ``x ~ N(0, 1)`` ``(T, B, D)``; the
    loss on the last step has a random unit gradient per row. Every row of the
    result is one distance ``T - t``.

    Parameters
    ----------
    cells : sequence of {"rnn", "lstm", "gru"}
        Cells to measure.
    radii : sequence of float
        Spectral radii of ``W_hh``'s gate blocks.
    steps : sequence of int
        Sequence lengths T.
    hidden_size, input_size, batch_size : int, default 32, 8, 8
        H, D and B.
    n_iter : int, default 100
        Most power iterations per Jacobian norm.
    seed : int, default 0
        Seed of the weights, inputs and loss gradients.
    progress : object, optional
        Anything with ``update(n)``, told of each finished configuration.

    Returns
    -------
    list of dict
        One row per cell, radius, T and distance, with ``grad_norm`` and
        ``jacobian_norm`` (medians over the B rows), ``jacobian_converged``
        (share of the B power iterations that converged), and the shares of
        saturated gate and tanh values at that step (``gates_saturated`` is None
        for the RNN).
    """
    cells = _check_list(cells, "cells", CELLS)
    radii = [float(r) for r in _check_list(radii, "radii")]
    steps = [check_positive_int(T, "steps") for T in _check_list(steps, "steps")]
    H, D, B = (
        check_positive_int(v, n)
        for v, n in (
            (hidden_size, "hidden_size"),
            (input_size, "input_size"),
            (batch_size, "batch_size"),
        )
    )
    rows = []
    for cell in cells:
        for radius in radii:
            for T in steps:
                rng = as_rng(seed)
                layer = make_layer(cell, D, H, radius=radius, seed=rng)
                x = rng.standard_normal((T, B, D))
                flow = gradient_flow(layer, x, seed=rng)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)  # in the CSV
                    jac = jacobian_norms(layer, x, n_iter=n_iter, seed=rng)
                sat = saturation(layer, x)
                gates, tanh = _per_state(sat.gates, T), _per_state(sat.tanh, T)
                for t in range(T + 1):
                    rows.append(
                        {
                            "cell": cell,
                            "radius": radius,
                            "steps": T,
                            "distance": T - t,
                            "grad_norm": float(np.median(flow.norm[t])),
                            "jacobian_norm": float(np.median(jac.norm[t])),
                            "jacobian_converged": float(np.mean(jac.converged[t])),
                            "gates_saturated": gates[t],
                            "tanh_saturated": tanh[t],
                        }
                    )
                if progress is not None:
                    progress.update(1)
    return rows


def _per_state(series, T):
    """Index a per-step series by state: step t-1 made h_t, and h_0 gets None."""
    if series is None:
        return [None] * (T + 1)
    return [None, *(float(v) for v in series)]


def format_gradient_flow(rows):
    """Return the gradient-flow table: one line per cell, radius and T.

    Parameters
    ----------
    rows : list of dict
        From `gradient_flow_study`.

    Returns
    -------
    str
        Columns: the norms of ``dL/dh_0`` and ``dh_T/dh_0`` (distance T) and the
        per-step rate ``||dL/dh_0||^(1/T)``, below 1 when gradients vanish.
    """
    lines = [
        f"{'cell':<6}{'radius':>8}{'steps':>7}{'|dL/dh_0|':>13}"
        f"{'|dh_T/dh_0|':>14}{'rate/step':>11}"
    ]
    for row in rows:
        T = row["steps"]
        if row["distance"] != T:
            continue
        g = row["grad_norm"]
        rate = g ** (1 / T) if g > 0 else 0.0
        lines.append(
            f"{row['cell']:<6}{row['radius']:>8g}{T:>7}{g:>13.3e}"
            f"{row['jacobian_norm']:>14.3e}{rate:>11.4f}"
        )
    return "\n".join(lines)


# -- clipping ---------------------------------------------------------------------


def clipping_study(
    task="adding",
    steps=100,
    clips=(None, 0.5, 1.0, 5.0),
    *,
    cell="rnn",
    hidden_size=16,
    radius=2.0,
    optimizer="sgd",
    learning_rate=0.1,
    n_updates=1500,
    batch_size=16,
    seed=0,
    progress=None,
):
    """Train the same model once per clipping threshold, from the same start.

    Every run starts from the same weights and sees the same batches; only the
    threshold differs. The defaults, a tanh RNN whose ``W_hh`` has spectral
    radius 2 trained by plain SGD, are a setting where gradients explode.

    Parameters
    ----------
    task : {"adding", "copy", "session"}, default "adding"
        The task.
    steps : int, default 100
        T.
    clips : sequence of float or None
        Thresholds of `rnnrec.clipping.clip_grad_norm`; None trains unclipped.
    cell : {"rnn", "lstm", "gru"}, default "rnn"
        The cell.
    hidden_size : int, default 16
        H.
    radius : float or None, default 2.0
        Spectral radius of the recurrent blocks (see `make_layer`, here with
        PyTorch's initialisation); None keeps PyTorch's.
    optimizer : {"sgd", "adam"}, default "sgd"
        The optimizer.
    learning_rate : float, default 0.1
        Its step size.
    n_updates : int, default 1500
        Updates per run.
    batch_size : int, default 16
        Sequences per update.
    seed : int, default 0
        Seed of the weights and batches, shared by the runs.
    progress : object, optional
        Anything with ``update(n)``, told of every update.

    Returns
    -------
    list of (float or None, TrainingLog)
        The threshold and its run, in the order given.
    """
    clips = _check_list(clips, "clips")
    the_task = make_task(task, steps)
    runs = []
    for clip in clips:
        layer = make_layer(
            cell,
            the_task.input_size,
            hidden_size,
            radius=radius,
            init="pytorch",
            seed=seed,
        )
        model = SequenceToOne(layer, the_task, seed=seed)
        log = train(
            model,
            the_task,
            n_updates=n_updates,
            batch_size=batch_size,
            optimizer=optimizer,
            learning_rate=learning_rate,
            clip=clip,
            seed=seed,
            progress=progress,
        )
        runs.append((clip, log))
    return runs


def clip_label(clip):
    """Return ``"none"`` for no clipping, else the threshold as written (``"0.5"``).

    Parameters
    ----------
    clip : float or None
        The threshold.

    Returns
    -------
    str
        The label.
    """
    return "none" if clip is None else f"{clip:g}"


def clipping_rows(runs):
    """Flatten clipping runs into one CSV row per update.

    Parameters
    ----------
    runs : list of (float or None, TrainingLog)
        From `clipping_study`.

    Returns
    -------
    list of dict
        ``clip``, ``update`` (1-based), ``loss``, ``grad_norm`` (before
        clipping), ``clipped`` (0 or 1) and ``applied_norm``.
    """
    rows = []
    for clip, log in runs:
        for k in range(len(log.loss)):
            rows.append(
                {
                    "clip": clip_label(clip),
                    "update": k + 1,
                    "loss": float(log.loss[k]),
                    "grad_norm": float(log.grad_norm[k]),
                    "clipped": int(log.clipped[k]),
                    "applied_norm": float(log.applied_norm[k]),
                }
            )
    return rows


def format_clipping(runs):
    """Return the clipping table: one line per threshold.

    Parameters
    ----------
    runs : list of (float or None, TrainingLog)
        From `clipping_study`.

    Returns
    -------
    str
        Final training loss (mean of the last tenth), held-out error, share of
        updates clipped, the largest and the median pre-clip gradient norm, and
        the update at which a run diverged.
    """
    lines = [
        f"{'clip':>6}{'final loss':>12}{'test error':>12}{'clipped':>9}"
        f"{'max |g|':>11}{'median |g|':>12}  diverged"
    ]
    for clip, log in runs:
        norms = log.grad_norm[np.isfinite(log.grad_norm)]
        median = float(np.median(norms)) if len(norms) else math.nan
        diverged = (
            "-" if log.diverged_at is None else f"at update {log.diverged_at + 1}"
        )
        lines.append(
            f"{clip_label(clip):>6}{log.final_loss:>12.4f}{log.final_error:>12.4f}"
            f"{log.share_clipped:>9.1%}{log.max_grad_norm:>11.3g}{median:>12.3g}"
            f"  {diverged}"
        )
    return "\n".join(lines)


# -- tasks -----------------------------------------------------------------------


def tasks_study(
    tasks=("adding", "copy", "session"),
    cells=CELLS,
    steps=(20, 50, 100, 200),
    *,
    hidden_size=32,
    n_updates=2000,
    batch_size=32,
    learning_rate=0.01,
    clip=1.0,
    seed=0,
    progress=None,
):
    """Train every cell on every task and length; report the held-out error.

    Each run is a fresh layer with PyTorch's initialisation (LSTM forget bias 1),
    trained by Adam with gradients clipped at ``clip``.

    Parameters
    ----------
    tasks : sequence of {"adding", "copy", "session"}
        Tasks.
    cells : sequence of {"rnn", "lstm", "gru"}
        Cells.
    steps : sequence of int
        Lengths T (for the copy and session tasks, the blanks or distracting
        clicks).
    hidden_size : int, default 32
        H.
    n_updates : int, default 2000
        Updates per run.
    batch_size : int, default 32
        Sequences per update.
    learning_rate : float, default 0.01
        Adam's step size.
    clip : float or None, default 1.0
        Gradient-norm threshold.
    seed : int, default 0
        Seed of weights and batches.
    progress : object, optional
        Anything with ``update(n)``, told of every update.

    Returns
    -------
    list of dict
        ``task``, ``cell``, ``steps``, ``error`` (held-out, after the last
        update), ``baseline`` (the error of remembering nothing), ``solved``
        (error below `SOLVED_BELOW`), ``updates`` and ``seconds``.
    """
    tasks = _check_list(tasks, "tasks", tuple(SOLVED_BELOW))
    cells = _check_list(cells, "cells", CELLS)
    steps = [check_positive_int(T, "steps") for T in _check_list(steps, "steps")]
    rows = []
    for name in tasks:
        for T in steps:
            task = make_task(name, T)
            for cell in cells:
                layer = make_layer(
                    cell, task.input_size, hidden_size, init="pytorch", seed=seed
                )
                model = SequenceToOne(layer, task, seed=seed)
                log = train(
                    model,
                    task,
                    n_updates=n_updates,
                    batch_size=batch_size,
                    learning_rate=learning_rate,
                    clip=clip,
                    seed=seed,
                    progress=progress,
                )
                rows.append(
                    {
                        "task": name,
                        "cell": cell,
                        "steps": T,
                        "error": log.final_error,
                        "baseline": task.baseline,
                        "solved": int(log.final_error < SOLVED_BELOW[name]),
                        "updates": len(log.loss),
                        "seconds": round(log.seconds, 3),
                    }
                )
    return rows


def format_tasks(rows):
    """Return the tasks table: per task, one line per cell, one column per T.

    Parameters
    ----------
    rows : list of dict
        From `tasks_study`.

    Returns
    -------
    str
        Held-out errors, a ``*`` marking the solved ones.
    """
    blocks = []
    for name in dict.fromkeys(r["task"] for r in rows):
        mine = [r for r in rows if r["task"] == name]
        steps = sorted({r["steps"] for r in mine})
        kind = "MSE" if name == "adding" else "share wrong"
        head = f"{name} ({kind}; remembering nothing: {mine[0]['baseline']:.3f}; "
        head += f"* below {SOLVED_BELOW[name]:g})"
        lines = [head, f"{'cell':<6}" + "".join(f"{'T=' + str(T):>11}" for T in steps)]
        for cell in dict.fromkeys(r["cell"] for r in mine):
            cells = {r["steps"]: r for r in mine if r["cell"] == cell}
            text = ""
            for T in steps:
                r = cells.get(T)
                text += f"{'':>11}" if r is None else _error_cell(r)
            lines.append(f"{cell:<6}{text}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _error_cell(row):
    mark = "*" if row["solved"] else " "
    return f"{row['error']:>10.4f}{mark}"


# -- files ------------------------------------------------------------------------


def write_csv(path, rows):
    """Write rows of dicts as CSV, atomically; the first row's keys are the header.

    None becomes an empty field; floats are written with ``repr`` precision.

    Parameters
    ----------
    path : str or os.PathLike
        Destination.
    rows : list of dict
        At least one row, all with the same keys.
    """
    if not rows:
        raise ValueError(f"no rows to write to {path}")
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    atomic_write_text(path, buffer.getvalue())

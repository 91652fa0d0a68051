"""The pieces of `SessionRecommender.fit` that are not the model itself.

Checks of what `fit` receives, the context that every epoch reads, the
measurement of the gradient norm, the message that stops a run whose loss or
gradient is no longer finite, and the optional progress bar.
"""

from __future__ import annotations

import math
import os
from typing import NamedTuple

import numpy as np

from rnnrec.kernels.sparse import row_squares


class TrainingContext(NamedTuple):
    """What every epoch of one `fit` call reads.

    Attributes
    ----------
    train, valid : rnnrec.data.Sessions
        The training sessions and the optional validation sessions (or None).
    total_pairs : int
        Predictions in one epoch of ``train``.
    loss_fn : rnnrec.losses.Loss
        The loss with its final activation.
    log_p0 : numpy.ndarray
        ``(V,)`` log click counts, for the log-Q correction.
    sampler : rnnrec.sampling.PopularitySampler
        The negatives.
    optimizer : rnnrec.optim.Optimizer
        The optimizer of the model's parameters.
    rng : numpy.random.Generator
        The run's generator (sampling and dropout).
    checkpoint : str, os.PathLike or None
        Where checkpoints go.
    checkpoint_every : int or None
        Steps between checkpoints within an epoch.
    data : dict or None
        Fingerprint of ``train`` stored in checkpoints.
    """

    train: object
    valid: object
    total_pairs: int
    loss_fn: object
    log_p0: np.ndarray
    sampler: object
    optimizer: object
    rng: np.random.Generator
    checkpoint: object
    checkpoint_every: int | None
    data: dict | None


def check_training_data(train, valid):
    """Check the sessions `fit` receives.

    Parameters
    ----------
    train : rnnrec.data.Sessions
        Training sessions, with at least 2 items.
    valid : rnnrec.data.Sessions or None
        Validation sessions over the same item index.
    """
    from rnnrec.data import Sessions

    if not isinstance(train, Sessions):
        raise TypeError(
            f"train must be a rnnrec.data.Sessions, got {type(train).__name__}"
        )
    if train.n_items < 2:
        raise ValueError(f"train must hold at least 2 items, has {train.n_items}")
    if valid is not None:
        if not isinstance(valid, Sessions):
            raise TypeError(
                f"valid must be a rnnrec.data.Sessions, got {type(valid).__name__}"
            )
        if valid.n_items != train.n_items:
            raise ValueError(
                f"valid must share train's item index ({train.n_items} items), "
                f"has {valid.n_items}; index it with "
                "rnnrec.data.index_test_like_train"
            )


def check_folder(path, what):
    """Fail now, not after an epoch of training, if ``path`` cannot be written.

    Parameters
    ----------
    path : str or os.PathLike
        A file to be written later.
    what : str
        What the file is, for the message.
    """
    folder = os.path.dirname(os.path.abspath(os.fspath(path)))
    if not os.path.isdir(folder):
        raise ValueError(f"cannot write the {what} {path}: no folder {folder}")


def global_norm(arrays):
    """Return ``sqrt(sum of squares)`` over every entry of the arrays.

    The squares are summed in float64, row by row in a compiled loop that runs
    on the kernels' threads (`rnnrec.kernels.set_threads`), then over the rows:
    float32 gradients cannot overflow there, and any thread count gives the
    same sum.

    Parameters
    ----------
    arrays : sequence of numpy.ndarray
        The gradients.

    Returns
    -------
    float
        The global L2 norm; NaN or infinite if an entry is.
    """
    total = 0.0
    for g in arrays:
        if g.size == 0:
            continue
        rows = np.ascontiguousarray(g).reshape(len(g) if g.ndim > 1 else 1, -1)
        squares = np.empty(len(rows))  # (K,) float64
        row_squares(rows, squares, work=rows.size)
        total += float(squares.sum())
    return math.sqrt(total)


def divergence_message(model, what, value, epoch, step, run, checkpoint=None):
    """Say where training broke down, what was seen before and what to change.

    Parameters
    ----------
    model : SessionRecommender
        The model, for its learning rate and clipping threshold.
    what : str
        ``"the loss"`` or ``"the gradient norm"``.
    value : float
        Its value, NaN or infinite.
    epoch, step : int
        Where: the epoch (from 1) and the block within it (from 1).
    run : TrainingRun
        The largest gradient norm seen so far, and where.
    checkpoint : tuple, optional
        ``(path, position)`` of the run's last checkpoint, to resume from with
        other settings.

    Returns
    -------
    str
        One line.
    """
    if run.max_grad_epoch:
        before = (
            f"the largest gradient norm before was {run.max_grad_norm:.4g} "
            f"(epoch {run.max_grad_epoch}, step {run.max_grad_step})"
        )
    else:
        before = "it was the first step, no gradient norm had been seen before"
    clip = (
        "set clip_grad_norm (e.g. to a few times the norms seen)"
        if model.clip_grad_norm is None
        else f"lower clip_grad_norm (now {model.clip_grad_norm})"
    )
    message = (
        f"{what} became {value} at epoch {epoch}, step {step}; lower "
        f"learning_rate (now {model.learning_rate}), {clip}, or train in "
        f"float64; {before}"
    )
    if checkpoint is not None:
        path, position = checkpoint
        message += (
            f"; the checkpoint {os.fspath(path)}, written at {position}, can be "
            "resumed from with a lower learning_rate"
        )
    return message

"""The item-side layers of the recommender: embedding lookup and sampled scores.

Both layers touch only a few rows of a ``(V, H)`` item matrix per mini-batch, so
their gradients are returned row-sparse: the unique rows and the summed gradient
of each (`rnnrec.optim.RowSparse`), never a dense ``(V, H)`` array.

Sampled output scores, for ``N`` hidden states and ``C`` candidate items::

    R = h W_y[cand]^T + b_y[cand]                      (N, C)
    dh = dR W_y[cand]      dW_y[cand] += dR^T h      db_y[cand] += sum_N dR
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from rnnrec.optim import coalesce_rows


def merge_row_grads(a, b):
    """Add two row-sparse gradients of the same matrix.

    Parameters
    ----------
    a, b : RowSparse
        The gradients.

    Returns
    -------
    RowSparse
        Their sum, one entry per distinct row.
    """
    return coalesce_rows(
        np.concatenate([a.rows, b.rows]), np.concatenate([a.values, b.values])
    )


class ScoresCache(NamedTuple):
    """What `sampled_scores_backward` needs.

    Attributes
    ----------
    h : numpy.ndarray
        Hidden states ``(N, H)``.
    candidates : numpy.ndarray
        Candidate item indices ``(C,)``.
    W_c : numpy.ndarray
        The candidates' rows of ``W_y`` ``(C, H)``.
    """

    h: np.ndarray
    candidates: np.ndarray
    W_c: np.ndarray


def sampled_scores_forward(h, W_y, b_y, candidates):
    """Score ``N`` hidden states against ``C`` candidate items.

    Parameters
    ----------
    h : numpy.ndarray
        ``(N, H)``.
    W_y : numpy.ndarray
        Item output matrix ``(V, H)``.
    b_y : numpy.ndarray
        Item output bias ``(V,)``.
    candidates : numpy.ndarray
        ``(C,)`` int64 item indices.

    Returns
    -------
    scores : numpy.ndarray
        ``(N, C)``.
    cache : ScoresCache
        For `sampled_scores_backward`.
    """
    W_c = W_y[candidates]  # (C, H)
    scores = h @ W_c.T + b_y[candidates]  # (N, C)
    return scores, ScoresCache(h, candidates, W_c)


def sampled_scores_backward(d_scores, cache):
    """Backward pass of `sampled_scores_forward`.

    Parameters
    ----------
    d_scores : numpy.ndarray
        ``(N, C)``.
    cache : ScoresCache
        From the forward pass.

    Returns
    -------
    dh : numpy.ndarray
        ``(N, H)``.
    dW_y : RowSparse
        Rows of ``W_y`` touched by the candidates.
    db_y : RowSparse
        The same rows of ``b_y``.
    """
    dh = d_scores @ cache.W_c  # (N, H)
    dW_c = d_scores.T @ cache.h  # (C, H)
    db_c = d_scores.sum(axis=0)  # (C,)
    dW_y = coalesce_rows(cache.candidates, dW_c)
    db_y = coalesce_rows(cache.candidates, db_c)
    return dh, dW_y, db_y

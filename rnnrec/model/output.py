"""The item-side layers of the recommender: embedding lookup and sampled scores.

Both layers touch only a few rows of a ``(V, H)`` item matrix per mini-batch, so
their gradients are returned row-sparse: the unique rows and the summed gradient
of each (`rnnrec.optim.RowSparse`), never a dense ``(V, H)`` array.

Sampled output scores, for ``N`` hidden states and ``C`` candidate items::

    R = h W_y[cand]^T + b_y[cand]                      (N, C)
    dh = dR W_y[cand]      dW_y[cand] += dR^T h      db_y[cand] += sum_N dR

Negatives are drawn with replacement, so a candidate list repeats items. The
layer scores each of its ``U`` distinct items once and copies the score to
every column that item fills; backward adds the columns of an item together
first, so its row gradient comes out summed, with no coalescing of ``C`` rows of
length ``H`` afterwards, and the products are ``U`` wide instead of ``C``::

    R_u = h W_y[items]^T + b_y[items]                  (N, U)
    R   = R_u[:, column]                               (N, C)
    dR_u[:, i] = sum over the columns c with column[c] = i of dR[:, c]
    dh = dR_u W_y[items]   dW_y[items] = dR_u^T h      db_y[items] = sum_N dR_u

The three indexing steps, ``W_y[items]``, ``R_u[:, column]`` and the sum over
an item's columns, run as compiled loops on the kernels' threads
(`rnnrec.kernels.output`); the comments give each one's NumPy expression.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from rnnrec.kernels._jit import matmul
from rnnrec.kernels.output import expand_columns, sum_columns, take_rows
from rnnrec.optim import RowSparse, coalesce_rows


class ScoresCache(NamedTuple):
    """What `sampled_scores_backward` needs.

    Attributes
    ----------
    h : numpy.ndarray
        Hidden states ``(N, H)``.
    items : numpy.ndarray
        ``(U,)`` the distinct items scored, sorted.
    column : numpy.ndarray
        ``(C,)`` each candidate's position in ``items``.
    W_u : numpy.ndarray
        Their rows of ``W_y`` ``(U, H)``.
    """

    h: np.ndarray
    items: np.ndarray
    column: np.ndarray
    W_u: np.ndarray


def sampled_scores_forward(h, W_y, b_y, candidates, extra_items=None):
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
        ``(C,)`` int64 item indices, repeats allowed.
    extra_items : numpy.ndarray, optional
        Items whose rows of ``W_y`` receive gradient from elsewhere (the inputs,
        when the embedding is tied to ``W_y``). They join ``items``, so that
        `add_rows` can add that gradient into the row-sparse ``dW_y`` in place.

    Returns
    -------
    scores : numpy.ndarray
        ``(N, C)``.
    cache : ScoresCache
        For `sampled_scores_backward`.
    """
    N, H = h.shape
    C = len(candidates)
    wanted = candidates if extra_items is None else np.r_[candidates, extra_items]
    items, where = np.unique(wanted, return_inverse=True)  # (U,), (C + E,)
    column = where[:C].astype(np.int64)  # (C,)
    U = len(items)

    W_u = np.empty((U, H), W_y.dtype)
    take_rows(W_y, items, W_u, work=U * H)  # W_u = W_y[items]   (U, H)
    scores_u = matmul(h, W_u.T)  # (N, U)
    scores = np.empty((N, C), scores_u.dtype)
    # scores = (scores_u + b_y[items])[:, column]   (N, C)
    expand_columns(scores_u, b_y[items], column, scores, work=N * C)
    return scores, ScoresCache(h, items, column, W_u)


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
        The rows ``cache.items`` of ``W_y``, extra items included (with zero
        gradient until `add_rows` adds theirs).
    db_y : RowSparse
        The candidates' rows of ``b_y``.
    """
    N, C = d_scores.shape
    U = len(cache.items)

    # An item's score fills each of its columns: its gradient is their sum,
    # dR_u[:, u] = d_scores[:, column == u].sum(axis=1); extra items keep 0.
    dR_u = np.empty((N, U), d_scores.dtype)  # (N, U)
    sum_columns(d_scores, cache.column, dR_u, work=N * (C + U))

    dh = matmul(dR_u, cache.W_u)  # (N, H)
    dW_u = matmul(dR_u.T, cache.h)  # (U, H)
    # b_y's gradient lists the candidates only: an extra item's bias is not
    # touched (a listed row with a zero gradient still moves with momentum).
    scored = np.zeros(U, dtype=bool)  # (U,)
    scored[cache.column] = True
    db_c = dR_u.sum(axis=0)[scored]  # (U',)
    return dh, RowSparse(cache.items, dW_u), RowSparse(cache.items[scored], db_c)


def add_rows(g, rows, values):
    """Add gradient rows into a row-sparse gradient that already lists them.

    Parameters
    ----------
    g : RowSparse
        With sorted unique rows, which include every entry of ``rows``; its
        ``values`` are updated in place.
    rows : numpy.ndarray
        ``(K,)`` row indices, repeats allowed.
    values : numpy.ndarray
        ``(K, *row_shape)``.

    Returns
    -------
    RowSparse
        ``g``, with the values added.
    """
    extra = coalesce_rows(rows, values)  # repeats summed: unique rows
    at = np.searchsorted(g.rows, extra.rows)  # (K',)
    # Sorted rows give sorted positions: only the last can fall past the end.
    if at.size and (at[-1] >= len(g.rows) or np.any(g.rows[at] != extra.rows)):
        raise ValueError("rows holds rows that the row-sparse gradient g does not list")
    g.values[at] += extra.values
    return g

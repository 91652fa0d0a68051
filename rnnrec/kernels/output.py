"""Compiled loops of the sampled output layer (mirrors `rnnrec.model.output`).

Three indexing passes surround the output layer's two products, and in NumPy
each is one thread of fancy indexing:

- `take_rows`, ``W_u = W_y[items]``: a thousand or more scattered rows of an
  item matrix far larger than the caches. Each row is a separate trip to
  memory, and two threads keep twice as many trips in flight.
- `expand_columns`, ``R = (R_u + b_u)[:, column]``: every candidate column
  takes its item's score.
- `sum_columns`, the gradient of the copy: every item adds up the gradients of
  its columns::

      dR_u[n, u] = sum over the columns c with column[c] = u of dR[n, c]

  row by row of the contiguous ``dR``, where coalescing the rows of ``dR^T``
  reads ``dR`` down its columns.

Each row of the output is one thread's, and each sum runs over the columns
left to right, so the results do not depend on the thread count.
"""

from __future__ import annotations

import numba

from rnnrec.kernels._jit import jit_rows


@jit_rows
def take_rows(table, rows, out):
    """Gather rows: ``out[k] = table[rows[k]]``.

    Parameters
    ----------
    table : numpy.ndarray
        ``(V, R)``, unit stride along the last axis.
    rows : numpy.ndarray
        ``(K,)`` int64 row indices in ``[0, V)``.
    out : numpy.ndarray
        ``(K, R)``, overwritten.
    """
    K, R = out.shape
    for k in numba.prange(K):
        src, dst = table[rows[k]], out[k]
        for j in range(R):
            dst[j] = src[j]


@jit_rows
def expand_columns(scores_u, b_u, column, out):
    """Copy each item's score to its columns: ``out = (scores_u + b_u)[:, column]``.

    Parameters
    ----------
    scores_u : numpy.ndarray
        ``(N, U)`` scores of the distinct items, without their bias.
    b_u : numpy.ndarray
        ``(U,)`` their biases.
    column : numpy.ndarray
        ``(C,)`` int64, each column's item in ``[0, U)``.
    out : numpy.ndarray
        ``(N, C)``, overwritten.
    """
    N, C = out.shape
    for n in numba.prange(N):
        s_n, out_n = scores_u[n], out[n]
        for c in range(C):
            u = column[c]
            out_n[c] = s_n[u] + b_u[u]


@jit_rows
def sum_columns(d, column, out):
    """Add up the columns of each item: ``out[n, u] = sum_{column[c] = u} d[n, c]``.

    Parameters
    ----------
    d : numpy.ndarray
        ``(N, C)`` gradient of the expanded scores.
    column : numpy.ndarray
        ``(C,)`` int64, each column's item in ``[0, U)``.
    out : numpy.ndarray
        ``(N, U)``, overwritten; 0 for an item no column names.
    """
    N, C = d.shape
    U = out.shape[1]
    for n in numba.prange(N):
        d_n, out_n = d[n], out[n]
        for u in range(U):
            out_n[u] = 0.0
        for c in range(C):
            out_n[column[c]] += d_n[c]

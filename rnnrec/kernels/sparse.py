"""Row-sparse kernels of the recommender's item matrices (mirrors `rnnrec.optim`).

A mini-batch touches a few thousand rows of a ``(V, H)`` item matrix, many of
them more than once. Two loops run there on every training step, and in NumPy
both go through fancy indexing that copies every row several times:

- `segment_sum`, the second half of `rnnrec.optim.coalesce_rows`: with the
  lookups sorted by row, add up each run of equal rows::

      out[s] = sum_{k = starts[s]}^{starts[s+1]-1} values[order[k]]

- `adagrad_rows`, `rnnrec.optim.AdagradM` on the listed rows, in one pass over
  each row instead of six (``G`` the sum of squares, ``v`` the velocity)::

      G[r] += g * g
      u     = lr * g / sqrt(G[r] + eps)
      v[r]  = mu * v[r] + u              (when mu > 0; then u = v[r])
      p[r] -= u

A third, `row_squares`, serves the gradient norm that every step reports: the
sum of squares of each row, on threads like the other two.

`adagrad_rows` does each entry's operations in the same order and dtype as the
NumPy expressions of `rnnrec.optim.AdagradM`, so the two agree bit for bit;
`segment_sum` adds each run left to right, where NumPy's ``reduceat`` sums
pairwise, so the two agree to rounding (the tests check both).
"""

from __future__ import annotations

import numba
import numpy as np

from rnnrec.kernels._jit import jit_rows


@jit_rows
def segment_sum(values, order, starts, out):
    """Sum runs of rows: ``out[s] = values[order[starts[s]:starts[s+1]]].sum(0)``.

    Parameters
    ----------
    values : numpy.ndarray
        ``(K, R)`` one row per lookup.
    order : numpy.ndarray
        ``(K,)`` int64, the lookups sorted by row.
    starts : numpy.ndarray
        ``(S,)`` int64, where each run of equal rows begins in ``order``.
    out : numpy.ndarray
        ``(S, R)``, overwritten with the sums.
    """
    K, R = values.shape
    S = starts.shape[0]
    for s in numba.prange(S):
        stop = starts[s + 1] if s + 1 < S else K
        out_s = out[s]
        first = values[order[starts[s]]]
        for j in range(R):
            out_s[j] = first[j]
        for k in range(starts[s] + 1, stop):
            row = values[order[k]]
            for j in range(R):
                out_s[j] += row[j]


@jit_rows
def adagrad_rows(p, G, v, rows, g, lr, momentum, eps):
    """GRU4Rec's Adagrad with momentum on the rows ``rows`` of ``p``, in place.

    Parameters
    ----------
    p, G, v : numpy.ndarray
        ``(n_rows, R)`` parameter, sum of squared gradients and velocity (``v``
        is ignored when ``momentum`` is 0).
    rows : numpy.ndarray
        ``(K,)`` int64 unique row indices.
    g : numpy.ndarray
        ``(K, R)`` their gradients.
    lr, momentum, eps : scalar of the parameters' dtype
        Learning rate, momentum and the epsilon under the root.
    """
    K, R = g.shape
    for k in numba.prange(K):
        r = rows[k]
        p_r, G_r, g_k = p[r], G[r], g[k]
        if momentum > 0:
            v_r = v[r]
            for j in range(R):
                G_r[j] += g_k[j] * g_k[j]
                u = lr * g_k[j] / np.sqrt(G_r[j] + eps)
                v_r[j] = momentum * v_r[j] + u
                p_r[j] -= v_r[j]
        else:
            for j in range(R):
                G_r[j] += g_k[j] * g_k[j]
                p_r[j] -= lr * g_k[j] / np.sqrt(G_r[j] + eps)


@jit_rows(reassoc=True)
def row_squares(x, out):
    """Sum the squares of each row, in float64: ``out[r] = sum_j x[r, j]^2``.

    The sum is reassociated so that it vectorises (a strict left-to-right sum
    does not); each row is one thread's, so the result does not
    depend on the thread count. The caller adds the rows up.

    Parameters
    ----------
    x : numpy.ndarray
        ``(K, R)``.
    out : numpy.ndarray
        ``(K,)`` float64, overwritten.
    """
    K, R = x.shape
    for k in numba.prange(K):
        row = x[k]
        total = 0.0
        for j in range(R):
            x_kj = np.float64(row[j])
            total += x_kj * x_kj
        out[k] = total

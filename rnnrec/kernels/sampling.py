"""Inverse-CDF sampling with a guide table (serves `rnnrec.sampling`).

`rnnrec.sampling.PopularitySampler` turns a million uniform numbers at a time
into items: the item of ``u`` is the first ``v`` with ``cdf[v] > u``, which is
NumPy's ``searchsorted(cdf, u, side="right")``. A binary search takes
``log2 V`` steps, most of them cache misses in a catalogue of tens of thousands
of items. A guide table (the "indexed search" of Chen and Asau) records where
the search ends for ``K`` evenly spaced values::

    guide[k] = searchsorted(cdf, k / K, side="right")        k = 0, ..., K - 1

and the search for ``u`` starts at ``guide[floor(u K)]``, then walks::

    forward  while cdf[v] <= u        (u lies above the start's value)
    back     while cdf[v - 1] > u     (only if floor(u K) was rounded up)

With ``K = V`` the walk is a step or two on average. When it stops,
``cdf[v - 1] <= u < cdf[v]``, which defines the binary search's answer: the
two give the same item for every ``u``, and the stream of draws is unchanged.
"""

from __future__ import annotations

import numba
import numpy as np

from rnnrec.kernels._jit import jit_rows


def guide_table(cdf, size):
    """Return the guide table of a cumulative distribution.

    Parameters
    ----------
    cdf : numpy.ndarray
        ``(V,)`` non-decreasing, ending at 1.
    size : int
        Entries ``K`` of the table, >= 1.

    Returns
    -------
    numpy.ndarray
        ``(K,)`` int64, ``guide[k] = searchsorted(cdf, k / K, side="right")``.
    """
    return np.searchsorted(cdf, np.arange(size) / size, side="right").astype(np.int64)


@jit_rows
def guided_search(cdf, guide, u, out):
    """Find each draw's item: ``out[n] = searchsorted(cdf, u[n], side="right")``.

    Parameters
    ----------
    cdf : numpy.ndarray
        ``(V,)`` float64, non-decreasing.
    guide : numpy.ndarray
        ``(K,)`` int64 from `guide_table`.
    u : numpy.ndarray
        ``(n,)`` float64 uniform draws in ``[0, 1)``.
    out : numpy.ndarray
        ``(n,)`` int64, overwritten with the items.
    """
    V, K = cdf.size, guide.size
    for n in numba.prange(u.size):
        x = u[n]
        v = guide[min(int(x * K), K - 1)]
        while v < V and cdf[v] <= x:
            v += 1
        while v > 0 and cdf[v - 1] > x:
            v -= 1
        out[n] = v

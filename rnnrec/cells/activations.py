"""Elementwise activations shared by the NumPy reference cells."""

from __future__ import annotations

import numpy as np


def sigmoid(a):
    """Logistic function ``1 / (1 + exp(-a))``, without overflow for any ``a``.

    With ``e = exp(-|a|)``, which is at most 1, the function is ``1 / (1 + e)``
    for ``a >= 0`` and ``e / (1 + e)`` for ``a < 0``: both sides are accurate to
    the last bit and nothing overflows, even at ``|a| = 1e4`` in float32.

    Parameters
    ----------
    a : numpy.ndarray
        Pre-activations.

    Returns
    -------
    numpy.ndarray
        Values in ``[0, 1]``, same dtype as ``a``.
    """
    e = np.exp(-np.abs(a))
    return np.where(a >= 0, 1 / (1 + e), e / (1 + e))

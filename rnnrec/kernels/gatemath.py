"""exp, sigmoid and tanh as plain arithmetic, so that the compiler can vectorise them.

Numba compiles ``math.exp`` and ``math.tanh`` to one call of the C library per
value (about 5 and 20 ns here), which made the gate arithmetic, not the matrix
products, the cost of a recurrent step. These versions contain no calls, so LLVM
turns a loop over them into SIMD instructions (about 1 ns per value). They
compute in float64 whatever the array dtype and are accurate to a few units in
the last place of float64 (the tests measure it against NumPy), so the Numba
backend computes the same numbers as the NumPy one.

The method, for ``exp(y)``:

1. range reduction: ``y = n ln2 + r`` with ``n = round(y / ln2)`` and
   ``|r| <= ln2 / 2``; ``ln2`` is split in a high part with trailing zero bits
   and a low part (Cody and Waite), so that ``n * LN2_HI`` is exact;
2. ``exp(r) - 1`` by its Taylor series to degree 13 (the first omitted term is
   below ``4e-18``), evaluated by Horner's rule;
3. ``2^n`` assembled directly in the exponent bits of a float64.

``tanh(x) = -e / (e + 2)`` with ``e = expm1(-2|x|)``, then the sign of ``x``; for
small arguments ``expm1`` comes straight from the series, which keeps the
relative accuracy near zero. ``sigmoid(x)`` uses ``exp(-|x|)`` on both sides of
zero, so nothing overflows for any input.
"""

from __future__ import annotations

import math

import numpy as np

from rnnrec.kernels._jit import jit, jit_inline

INV_LN2 = 1.4426950408889634
LN2_HI = 6.93147180369123816490e-01  # ln 2 rounded to 32 significant bits
LN2_LO = 1.90821492927058770002e-10  # ln 2 - LN2_HI
HALF_LN2 = 0.34657359027997264
EXP_MIN = -708.0  # exp(-708) is still a normal float64
TANH_MAX = 22.0  # tanh(22) rounds to 1 in float64

# 1/k! for k = 2..13, the Taylor coefficients of expm1 after the linear term.
C2, C3, C4, C5, C6, C7, C8, C9, C10, C11, C12, C13 = (
    1.0 / math.factorial(k) for k in range(2, 14)
)


@jit_inline
def expm1_series(r):
    """Return ``exp(r) - 1`` by its Taylor series, for ``|r| <= ln2 / 2``.

    Parameters
    ----------
    r : float
        The argument.

    Returns
    -------
    float
        ``r + r^2/2! + ... + r^13/13!``.
    """
    p = C13
    p = p * r + C12
    p = p * r + C11
    p = p * r + C10
    p = p * r + C9
    p = p * r + C8
    p = p * r + C7
    p = p * r + C6
    p = p * r + C5
    p = p * r + C4
    p = p * r + C3
    p = p * r + C2
    return (p * r + 1.0) * r


@jit_inline
def reduce_ln2(y):
    """Split ``y <= 0`` as ``n ln2 + r`` with ``|r| <= ln2 / 2`` (steps 1 and 3).

    Parameters
    ----------
    y : float
        The argument, at most 0; clamped below at ``-708``.

    Returns
    -------
    r : float
        The remainder, ``y - n ln2`` with ``ln2 = LN2_HI + LN2_LO``.
    two_n : float
        ``2^n``, assembled in the exponent bits.
    """
    y = max(float(y), EXP_MIN)
    n = np.floor(y * INV_LN2 + 0.5)
    r = (y - n * LN2_HI) - n * LN2_LO
    two_n = np.int64((np.int64(n) + 1023) << 52).view(np.float64)
    return r, two_n


@jit_inline
def exp_nonpositive(y):
    """Return ``exp(y)`` for ``y <= 0`` (clamped below at ``-708``).

    Parameters
    ----------
    y : float
        The argument, at most 0.

    Returns
    -------
    float
        ``exp(max(y, -708))``.
    """
    r, two_n = reduce_ln2(y)
    return (expm1_series(r) + 1.0) * two_n


@jit_inline
def expm1_nonpositive(y):
    """Return ``exp(y) - 1`` for ``y <= 0``, accurate relative to the result.

    With ``y = n ln2 + r`` as in `exp_nonpositive`,
    ``exp(y) - 1 = 2^n expm1(r) + (2^n - 1)``: for ``n = 0`` that is the series
    itself, with no cancellation near 0; otherwise ``2^n - 1`` is exact and the
    two terms have the same sign.

    Parameters
    ----------
    y : float
        The argument, at most 0.

    Returns
    -------
    float
        ``expm1(max(y, -708))``.
    """
    r, two_n = reduce_ln2(y)
    return two_n * expm1_series(r) + (two_n - 1.0)


@jit_inline
def sigmoid(x):
    """Return ``1 / (1 + exp(-x))``, computed without overflow.

    Parameters
    ----------
    x : float
        The argument.

    Returns
    -------
    float
        ``1 / (1 + e)`` for ``x >= 0`` and ``e / (1 + e)`` for ``x < 0``, with
        ``e = exp(-|x|)``.
    """
    e = exp_nonpositive(-abs(x))
    # One division, its numerator selected: the same value as dividing in each
    # branch, and a loop over it runs faster (a BPR-max pass over 128 x 2176
    # scores, timed by hand: 1.10 ms against 1.43 with two divisions).
    numerator = 1.0 if x >= 0 else e
    return numerator / (1.0 + e)


@jit_inline
def tanh(x):
    """Return ``tanh(x)``.

    Parameters
    ----------
    x : float
        The argument.

    Returns
    -------
    float
        ``sign(x) * (-e / (e + 2))`` with ``e = expm1(-2|x|)``.
    """
    y = -2.0 * min(abs(float(x)), TANH_MAX)
    # expm1 from the series near 0 (no cancellation), from exp elsewhere. Both are
    # computed and one is selected: a branch around them would stop vectorisation.
    near_zero = expm1_series(y)
    elsewhere = exp_nonpositive(y) - 1.0
    e = near_zero if y > -HALF_LN2 else elsewhere
    t = -e / (e + 2.0)
    return t if x >= 0 else -t


# In-place passes over a contiguous block. Loops run over indices from 0 on a view
# of the block: an index like ``2 * H + k`` could be negative as far as Numba knows,
# and the wraparound check that it then inserts stops vectorisation.


@jit
def sigmoid_inplace(v):
    """Replace every entry of the 1-D array ``v`` by its sigmoid.

    Parameters
    ----------
    v : numpy.ndarray
        1-D, modified in place.
    """
    for k in range(v.size):
        v[k] = sigmoid(v[k])


@jit
def tanh_inplace(v):
    """Replace every entry of the 1-D array ``v`` by its tanh.

    Parameters
    ----------
    v : numpy.ndarray
        1-D, modified in place.
    """
    for k in range(v.size):
        v[k] = tanh(v[k])

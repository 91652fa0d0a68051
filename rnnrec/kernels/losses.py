"""Compiled losses of the session recommender, mirroring `rnnrec.losses`.

GRU4Rec trains with sampled cross-entropy or with BPR-max behind an ELU, on a
score matrix of ``N`` rows by ``C = N + S`` candidates (a few thousand). In NumPy
each loss is a dozen passes over that matrix, every one a temporary array on
one core: with BPR-max and the ELU, a third of a training step. Here each row is
one pass or two, its rows shared out among threads (`jit_rows`), and the
activation a separate elementwise loop. The equations are those of
`rnnrec.losses`, whose docstrings derive them; the layout is the same: row
``i``'s positive is column ``i``, every other column of the row a negative.

How the numbers compare with the NumPy functions:

- every row is computed in float64 whatever the scores' dtype, and the results
  (probabilities, weights, gradients) are rounded to the scores' dtype once, at
  the end; in float32 they are at least as accurate as NumPy's float32 passes;
- a row's normalisations multiply by the reciprocal of its sum, one division
  per row where NumPy divides every entry (a division costs several
  multiplications; the product is within two ulps of float64 of the quotient);
- exponentials come from `rnnrec.kernels.gatemath` (a few units in the last
  place of float64), so that the loops vectorise, and the kernels let the
  compiler fuse multiplies and adds (`jit_rows` with ``contract=True``), which
  halves the work of those polynomials and rounds once instead of twice;
- sums along a row run in `LANES` interleaved partial sums, a fixed order that
  does not depend on the thread count;
- BPR-max computes ``sum_j s_ij sigma(r_i - r_ij)`` directly, and falls back to
  the log-space evaluation of `rnnrec.losses.bpr_max_forward` only for a row
  whose sum would underflow (a positive more than about 600 below the best
  negative), so extreme scores stay finite as there.

The tests check each kernel against the NumPy function in float64 and against
the float64 reference from float32 scores.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numba
import numpy as np

from rnnrec.kernels._jit import jit, jit_inline, jit_rows
from rnnrec.kernels.gatemath import exp_nonpositive, expm1_nonpositive, tanh

LANES = 8  # partial sums per row sum
DIRECT_MIN = 1e-250  # below this, BPR-max's row sum is redone in log space
EXP_MAX = 709.0  # exp(709) is still finite in float64

# Final activations by number (the kernels take an int, not a string).
LINEAR, RELU, TANH, ELU, LEAKY = range(5)
ACTIVATION_CODES = {"linear": LINEAR, "relu": RELU, "tanh": TANH, "elu": ELU}
ACTIVATION_CODES["leaky"] = LEAKY


@jit_inline
def lane_sum(v):
    """Sum a 1-D array in `LANES` interleaved partial sums, in float64.

    Parameters
    ----------
    v : numpy.ndarray
        1-D.

    Returns
    -------
    float
        ``sum_k v[k]``, added in a fixed order (lane ``k mod LANES`` first).
    """
    n = v.size
    body = n - n % LANES
    acc = np.zeros(LANES)
    for k in range(0, body, LANES):
        for lane in range(LANES):
            acc[lane] += v[k + lane]
    total = 0.0
    for lane in range(LANES):
        total += acc[lane]
    for k in range(body, n):
        total += v[k]
    return total


@jit_inline
def lane_max(v, skip):
    """Largest entry of a 1-D array but one, in `LANES` interleaved maxima.

    A running ``max`` over a row does not vectorise (the compiler must keep
    NumPy's rules for NaN, which the scores' checks have already excluded);
    the same maximum taken in lanes does, and a maximum does not depend on the
    order.

    Parameters
    ----------
    v : numpy.ndarray
        1-D, finite.
    skip : int
        Index left out (-1: none).

    Returns
    -------
    float
        ``max_{k != skip} v[k]`` in float64 (-inf if nothing is left).
    """
    n = v.size
    body = n - n % LANES
    acc = np.full(LANES, -np.inf)
    for k in range(0, body, LANES):
        for lane in range(LANES):
            x = -np.inf if k + lane == skip else np.float64(v[k + lane])
            acc[lane] = x if x > acc[lane] else acc[lane]
    best = -np.inf
    for lane in range(LANES):
        best = max(best, acc[lane])
    for k in range(body, n):
        if k != skip:
            best = max(best, np.float64(v[k]))
    return best


# -- final activations --------------------------------------------------------------


@jit_rows(contract=True)
def activation_rows(x, kind, alpha, y):
    """Apply the final activation elementwise: ``y = act(x)`` (`rnnrec.losses`).

    ::

        relu   max(x, 0)      tanh   tanh(x)
        elu    x if x > 0 else alpha (exp(x) - 1)
        leaky  x if x > 0 else alpha x

    Parameters
    ----------
    x : numpy.ndarray
        ``(N, C)`` raw scores.
    kind : int
        `RELU`, `TANH`, `ELU` or `LEAKY` (linear needs no kernel).
    alpha : float
        The ELU's alpha or the leaky slope.
    y : numpy.ndarray
        ``(N, C)``, overwritten.
    """
    N, C = x.shape
    for i in numba.prange(N):
        x_i, y_i = x[i], y[i]
        if kind == RELU:
            for c in range(C):
                y_i[c] = max(x_i[c], 0.0)
        elif kind == TANH:
            for c in range(C):
                y_i[c] = tanh(x_i[c])
        elif kind == ELU:
            for c in range(C):
                x_c = np.float64(x_i[c])
                left = alpha * expm1_nonpositive(min(x_c, 0.0))
                y_i[c] = x_c if x_c > 0 else left
        else:
            for c in range(C):
                x_c = np.float64(x_i[c])
                y_i[c] = x_c if x_c > 0 else alpha * x_c


@jit_rows(contract=True)
def activation_grad_rows(dy, x, y, kind, alpha, dx):
    """Backward pass of `activation_rows`: ``dx = dy * act'(x)``.

    The slopes (the left one at the kink ``x = 0``, as in PyTorch)::

        relu  1[x > 0]    tanh  1 - y^2    elu  1 if x > 0 else alpha exp(x)
        leaky 1 if x > 0 else alpha

    Parameters
    ----------
    dy, x, y : numpy.ndarray
        ``(N, C)``: the gradient of the activation's output, its input and its
        output.
    kind : int
        As in `activation_rows`.
    alpha : float
        As in `activation_rows`.
    dx : numpy.ndarray
        ``(N, C)``, overwritten.
    """
    N, C = x.shape
    for i in numba.prange(N):
        dy_i, x_i, y_i, dx_i = dy[i], x[i], y[i], dx[i]
        if kind == RELU:
            for c in range(C):
                dx_i[c] = dy_i[c] if x_i[c] > 0 else 0.0
        elif kind == TANH:
            for c in range(C):
                dx_i[c] = dy_i[c] * (1 - y_i[c] * y_i[c])
        elif kind == ELU:
            for c in range(C):
                x_c = np.float64(x_i[c])
                slope = alpha * exp_nonpositive(min(x_c, 0.0))
                dx_i[c] = dy_i[c] * (1.0 if x_c > 0 else slope)
        else:
            for c in range(C):
                dx_i[c] = dy_i[c] * (1.0 if x_i[c] > 0 else alpha)


# -- cross-entropy ------------------------------------------------------------------


@jit_rows(contract=True)
def cross_entropy_rows(r, log_q, p, losses):
    """Softmax cross-entropy of each row, with the log-Q correction.

    ::

        z_ic = r_ic - log_q[c]      m_i = max_c z_ic
        p_ic = exp(z_ic - m_i) / sum_c exp(z_ic - m_i)
        L_i  = log sum_c exp(z_ic - m_i) - (z_ii - m_i)

    Parameters
    ----------
    r : numpy.ndarray
        ``(N, C)`` scores.
    log_q : numpy.ndarray
        ``(C,)`` (zeros for no correction).
    p : numpy.ndarray
        ``(N, C)``, overwritten with the softmax.
    losses : numpy.ndarray
        ``(N,)`` float64, overwritten with ``L_i``.
    """
    N, C = r.shape
    for i in numba.prange(N):
        z = np.empty(C)  # (C,) z_ic, then exp(z_ic - m_i)
        for c in range(C):
            z[c] = np.float64(r[i, c]) - np.float64(log_q[c])
        m = lane_max(z, -1)
        z_ii = z[i] - m
        for c in range(C):
            z[c] = exp_nonpositive(z[c] - m)
        total = lane_sum(z)  # >= 1: the largest term is exp(0)
        inv_total = 1.0 / total  # one division per row, not per entry
        for c in range(C):
            p[i, c] = z[c] * inv_total
        losses[i] = math.log(total) - z_ii


@jit_rows(contract=True)
def cross_entropy_grad_rows(p, scale, d):
    """Backward pass of `cross_entropy_rows`: ``d_ic = scale (p_ic - [c = i])``.

    Parameters
    ----------
    p : numpy.ndarray
        ``(N, C)`` the softmax.
    scale : scalar of ``p``'s dtype
        ``d_loss / N``.
    d : numpy.ndarray
        ``(N, C)``, overwritten.
    """
    N, C = p.shape
    for i in numba.prange(N):
        for c in range(C):
            d[i, c] = p[i, c] * scale
        d[i, i] = (p[i, i] - 1) * scale


# -- BPR-max ------------------------------------------------------------------------


@jit
def _bpr_max_log_space(r_i, row, i, m):
    """Sum a BPR-max row in log space, for a row whose direct sum underflows.

    With ``a_j = (r_ij - m) - softplus(r_ij - r_i)`` (``j != i``, ``m`` the
    largest negative score), ``log sum_j exp(r_ij - m) sigma(r_i - r_ij)`` is
    ``logsumexp_j a_j``.

    Returns
    -------
    log_total : float
        ``logsumexp_j a_j``.
    w : numpy.ndarray
        ``(C,)`` float64, ``exp(a_j - log_total)``, 0 at ``j = i``.
    """
    C = row.size
    a = np.empty(C)  # (C,)
    a_max = -np.inf
    for j in range(C):
        if j == i:
            continue
        u = np.float64(row[j]) - r_i
        softplus = max(u, 0.0) + math.log1p(math.exp(-abs(u)))
        a[j] = (np.float64(row[j]) - m) - softplus
        a_max = max(a_max, a[j])
    a[i] = -np.inf
    total = 0.0
    for j in range(C):
        a[j] = math.exp(a[j] - a_max)
        total += a[j]
    for j in range(C):
        a[j] /= total
    return a_max + math.log(total), a


@jit_rows(contract=True)
def bpr_max_rows(r, bpreg, s, w, reg, losses):
    """BPR-max of each row: BPR against a softmax-weighted mix of the negatives.

    For row ``i`` with positive score ``r_i`` and negatives ``j != i``::

        e_ij = exp(r_ij - m_i)            m_i = max_j r_ij,  S_i = sum_j e_ij
        s_ij = e_ij / S_i                 softmax over the negatives
        g_ij = e_ij sigma(r_i - r_ij)     T_i = sum_j g_ij
        w_ij = g_ij / T_i
        R_i  = sum_j s_ij r_ij^2
        L_i  = -log sum_j s_ij sigma(r_i - r_ij) + bpreg R_i
             = log S_i - log T_i + bpreg R_i

    ``s`` and ``w`` are 0 at the positive. Where ``T_i`` would underflow, it is
    summed in log space (`_bpr_max_log_space`).

    Parameters
    ----------
    r : numpy.ndarray
        ``(N, C)`` scores, ``C >= 2``.
    bpreg : float
        Weight of the score regularisation.
    s, w : numpy.ndarray
        ``(N, C)``, overwritten.
    reg : numpy.ndarray
        ``(N,)`` float64, overwritten with ``R_i``.
    losses : numpy.ndarray
        ``(N,)`` float64, overwritten with ``L_i``.
    """
    N, C = r.shape
    for i in numba.prange(N):
        row = r[i]
        r_i = np.float64(row[i])
        m = lane_max(row, i)

        # sigma(r_i - r_ij) = 1 / (1 + exp(r_ij - r_i)) = 1 / (1 + e_ij F_i) with
        # F_i = exp(m_i - r_i): one exponential per entry instead of two, and
        # no cancellation on either side (the denominator is 1 plus a
        # non-negative number). F_i is capped at exp(709) to stay finite; a row
        # where the cap bites has every g_ij < 1 / F_i, so T_i < C e^-709 is
        # below DIRECT_MIN and the row is redone in log space, cap-free.
        F = math.exp(min(m - r_i, EXP_MAX))
        e = np.empty(C)  # (C,) e_ij, then s_ij r_ij^2
        g = np.empty(C)  # (C,) g_ij
        for j in range(C):
            e[j] = exp_nonpositive(min(np.float64(row[j]) - m, 0.0))
            g[j] = e[j] / (1.0 + e[j] * F)
        e[i] = 0.0
        g[i] = 0.0
        S = lane_sum(e)  # >= 1
        T = lane_sum(g)

        if T >= DIRECT_MIN:
            log_T = math.log(T)
            inv_T = 1.0 / T  # one division per row, not per entry
            for j in range(C):
                w[i, j] = g[j] * inv_T
        else:
            log_T, w_i = _bpr_max_log_space(r_i, row, i, m)
            for j in range(C):
                w[i, j] = w_i[j]

        inv_S = 1.0 / S
        for j in range(C):
            r_ij = np.float64(row[j])
            s_ij = e[j] * inv_S
            s[i, j] = s_ij
            e[j] = s_ij * r_ij * r_ij
        reg[i] = lane_sum(e)
        losses[i] = math.log(S) - log_T + bpreg * reg[i]


@jit_rows(contract=True)
def bpr_max_grad_rows(r, s, w, reg, bpreg, scale, d):
    """Backward pass of `bpr_max_rows`.

    For a negative ``j`` and the positive of row ``i``::

        dL_i/dr_ij = s_ij - w_ij sigma(r_i - r_ij) + bpreg s_ij (2 r_ij + r_ij^2 - R_i)
        dL_i/dr_i  = -sum_j w_ij sigma(r_ij - r_i)

    both times ``scale``. ``sigma(r_ij - r_i)`` comes from the same exponential
    as ``sigma(r_i - r_ij)``, without forming ``1 - sigma``.

    Parameters
    ----------
    r, s, w : numpy.ndarray
        ``(N, C)`` scores, softmax over the negatives and BPR weights.
    reg : numpy.ndarray
        ``(N,)`` float64 ``R_i``.
    bpreg : float
        Weight of the score regularisation.
    scale : float
        ``d_loss / N``.
    d : numpy.ndarray
        ``(N, C)``, overwritten.
    """
    N, C = r.shape
    for i in numba.prange(N):
        row = r[i]
        r_i = np.float64(row[i])
        R_i = reg[i]
        pull = np.empty(C)  # (C,) w_ij sigma(r_ij - r_i)
        for j in range(C):
            r_ij = np.float64(row[j])
            s_ij = np.float64(s[i, j])
            w_ij = np.float64(w[i, j])

            # sigma(a) and sigma(-a) from one exp(-|a|), a = r_i - r_ij.
            a = r_i - r_ij
            e = exp_nonpositive(-abs(a))
            big = 1.0 / (1.0 + e)
            small = e * big
            up = big if a >= 0 else small  # sigma(r_i - r_ij)
            down = small if a >= 0 else big  # sigma(r_ij - r_i)

            ranking = s_ij - w_ij * up
            penalty = bpreg * s_ij * (2 * r_ij + r_ij * r_ij - R_i)
            d[i, j] = (ranking + penalty) * scale
            pull[j] = w_ij * down
        pull[i] = 0.0
        d[i, i] = -lane_sum(pull) * scale


# -- the functions `rnnrec.losses.Loss` calls with backend="numba" -----------------
#
# Same signatures, checks and caches as their namesakes in `rnnrec.losses`.


def final_activation_forward(x, activation="linear"):
    """Compiled `rnnrec.losses.final_activation_forward`.

    Parameters
    ----------
    x : numpy.ndarray
        Raw scores ``(N, C)``, float32 or float64.
    activation : str or rnnrec.losses.Activation, default "linear"
        See `rnnrec.losses.parse_activation`.

    Returns
    -------
    y : numpy.ndarray
        ``(N, C)``, same dtype; ``x`` itself for "linear".
    cache : rnnrec.losses.ActivationCache
        For `final_activation_backward`.
    """
    from rnnrec.losses import ActivationCache, _check_float_array, parse_activation

    act = parse_activation(activation)
    _check_float_array(x, "x")
    if act.kind == "linear":
        return x, ActivationCache(act, x, x)
    x = np.ascontiguousarray(x)
    y = np.empty_like(x)  # (N, C)
    activation_rows(x, ACTIVATION_CODES[act.kind], act.alpha, y, work=x.size)
    return y, ActivationCache(act, x, y)


def final_activation_backward(dy, cache):
    """Compiled `rnnrec.losses.final_activation_backward`.

    Parameters
    ----------
    dy : numpy.ndarray
        Gradient with respect to the activation's output ``(N, C)``.
    cache : rnnrec.losses.ActivationCache
        From `final_activation_forward`.

    Returns
    -------
    numpy.ndarray
        Gradient with respect to the raw scores ``(N, C)``.
    """
    act, x, y = cache
    if act.kind == "linear":
        return dy
    dy = np.ascontiguousarray(dy)
    dx = np.empty_like(dy)  # (N, C)
    activation_grad_rows(
        dy, x, y, ACTIVATION_CODES[act.kind], act.alpha, dx, work=dx.size
    )
    return dx


def cross_entropy_forward(scores, log_q=None):
    """Compiled `rnnrec.losses.cross_entropy_forward` (`cross_entropy_rows`).

    Parameters
    ----------
    scores : numpy.ndarray
        ``(N, C)``, float32 or float64, row i's positive in column i.
    log_q : numpy.ndarray, optional
        ``(C,)`` in the dtype of ``scores``, subtracted from every row.

    Returns
    -------
    loss : float
        The mean over rows.
    cache : rnnrec.losses.CrossEntropyCache
        For `cross_entropy_backward`.
    """
    from rnnrec.losses import CrossEntropyCache, _check_log_q, _check_scores

    N, C = _check_scores(scores)
    if log_q is None:
        log_q = np.zeros(C, scores.dtype)  # (C,)
    else:
        log_q = np.ascontiguousarray(_check_log_q(log_q, scores))
    scores = np.ascontiguousarray(scores)
    p = np.empty_like(scores)  # (N, C)
    losses = np.empty(N)  # (N,)
    cross_entropy_rows(scores, log_q, p, losses, work=scores.size)
    return float(losses.mean()), CrossEntropyCache(scores, p)


def cross_entropy_backward(cache, d_loss=1.0):
    """Compiled `rnnrec.losses.cross_entropy_backward` (`cross_entropy_grad_rows`).

    Parameters
    ----------
    cache : rnnrec.losses.CrossEntropyCache
        From `cross_entropy_forward`.
    d_loss : float, default 1.0
        Gradient of the final objective with respect to the loss.

    Returns
    -------
    numpy.ndarray
        ``dL/dscores`` ``(N, C)``.
    """
    from rnnrec.losses import _scale

    d = np.empty_like(cache.p)  # (N, C)
    cross_entropy_grad_rows(cache.p, _scale(cache, d_loss), d, work=d.size)
    return d


class BPRMaxCache(NamedTuple):
    """What `bpr_max_backward` needs (the sigmoids are recomputed from ``r``).

    Attributes
    ----------
    r : numpy.ndarray
        The scores ``(N, C)``.
    s : numpy.ndarray
        Softmax over the negatives ``(N, C)``, 0 at the positives.
    w : numpy.ndarray
        The BPR weights ``w_ij`` ``(N, C)``, 0 at the positives.
    reg : numpy.ndarray
        ``R_i = sum_j s_ij r_ij^2`` ``(N,)``, float64.
    bpreg : float
        The regularisation weight.
    """

    r: np.ndarray
    s: np.ndarray
    w: np.ndarray
    reg: np.ndarray
    bpreg: float


def bpr_max_forward(scores, bpreg=1.0):
    """Compiled `rnnrec.losses.bpr_max_forward` (`bpr_max_rows`).

    Parameters
    ----------
    scores : numpy.ndarray
        ``(N, C)`` with ``C >= 2``, float32 or float64.
    bpreg : float, default 1.0
        Weight of the score regularisation, >= 0.

    Returns
    -------
    loss : float
        The mean over rows.
    cache : BPRMaxCache
        For `bpr_max_backward`.
    """
    from rnnrec.losses import _check_number, _check_scores

    N, _ = _check_scores(scores, min_columns=2)
    bpreg = _check_number(bpreg, "bpreg", minimum=0)
    scores = np.ascontiguousarray(scores)
    s = np.empty_like(scores)  # (N, C)
    w = np.empty_like(scores)  # (N, C)
    reg = np.empty(N)  # (N,)
    losses = np.empty(N)  # (N,)
    bpr_max_rows(scores, bpreg, s, w, reg, losses, work=scores.size)
    return float(losses.mean()), BPRMaxCache(scores, s, w, reg, bpreg)


def bpr_max_backward(cache, d_loss=1.0):
    """Compiled `rnnrec.losses.bpr_max_backward` (`bpr_max_grad_rows`).

    Parameters
    ----------
    cache : BPRMaxCache
        From `bpr_max_forward`.
    d_loss : float, default 1.0
        Gradient of the final objective with respect to the loss.

    Returns
    -------
    numpy.ndarray
        ``dL/dscores`` ``(N, C)``.
    """
    from rnnrec.losses import _scale

    scale = float(_scale(cache, d_loss))
    r, s, w, reg, bpreg = cache
    d = np.empty_like(r)  # (N, C)
    bpr_max_grad_rows(r, s, w, reg, bpreg, scale, d, work=d.size)
    return d

"""The output losses of the session recommender, as forward/backward pairs.

Every loss reads a score matrix laid out the way session-parallel training with
shared negatives produces it::

    scores   (N, C)   r[i, j]: the score of candidate j for row i of the batch
                      N = B rows; C = N + S candidates, C >= N

    columns 0 .. N-1  the batch's own targets: row i's positive is column i
    columns N .. C-1  S extra sampled negatives, shared by every row

Every column of row ``i`` other than ``i`` is a negative for that row: the other
rows' targets and the sampled items. As in GRU4Rec, nothing is masked when a
negative happens to be the same item as the positive (another row with the same
target, or a sample that drew it): that column still counts as a negative.

Write ``r_i = r[i, i]`` for the positive's score, ``j`` for the negatives of
row ``i`` (``j != i``), ``sigma`` for the logistic function and::

    s_ij = exp(r_ij) / sum_{k != i} exp(r_ik)      softmax over the negatives only

The losses of one row (the returned loss is their mean over the N rows)::

    "cross-entropy"  L_i = -log softmax(r_i - log_q)[i]       all C columns
    "bpr-max"        L_i = -log sum_j s_ij sigma(r_i - r_ij) + bpreg sum_j s_ij r_ij^2
    "top1-max"       L_i = sum_j s_ij (sigma(r_ij - r_i) + sigma(r_ij^2))
    "bpr"            L_i = mean_j -log sigma(r_i - r_ij)
    "top1"           L_i = mean_j (sigma(r_ij - r_i) + sigma(r_ij^2))

``log_q (C,)`` is the optional log-Q correction of sampled softmax: the model
passes ``logq * log Q(c)``, with ``Q(c)`` the probability that column ``c``'s
item shows up as a candidate, and the softmax sees ``r_ic - log_q[c]``.

A final activation (`final_activation_forward`) may be applied to the raw scores
before the loss; GRU4Rec pairs BPR-max with an ELU. `get_loss` builds a `Loss`
that chains the two.

Numerics. Every loss is computed in log space or with max subtraction, so that
scores of magnitude 1e4 give finite losses and gradients in float32 and float64
without overflow, division by zero or invalid operations. Exponentials of very
negative numbers underflow to zero, which is their correct limit here; the
functions ignore underflow locally, so they also run clean under
``np.errstate(all="raise")``. The computation stays in the scores' dtype.

Differences from GRU4Rec's code, which the formulas above otherwise follow:

* GRU4Rec adds 1e-24 inside its logarithms; here the logarithms are exact (no
  floor), so for hopeless rows the loss keeps growing linearly with the score
  gap instead of stopping at ``-log 1e-24 = 55.3``.
* "bpr" and "top1" average over the negatives only (``C - 1`` columns). The
  original Theano code averages over all ``C`` columns, the positive included,
  which adds a constant and scales the gradient by ``(C - 1) / C``.
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from rnnrec._validation import FLOAT_DTYPES, check_choice

# -- helpers ------------------------------------------------------------------------


def _underflow_to_zero(func):
    """Run ``func`` with underflow ignored: exp(-huge) = 0 is the intended value."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with np.errstate(under="ignore"):
            return func(*args, **kwargs)

    return wrapper


def _sigmoid(a):
    """Logistic function ``exp(min(a, 0)) / (1 + exp(-|a|))``, for any ``a``.

    Both exponents are <= 0, so nothing overflows, and numerator and denominator
    are accurate on both sides (``1 / (1 + e^-a)`` and ``e^a / (1 + e^a)``). No
    branch: ``np.where`` over a random sign pattern is ten times slower.
    """
    return np.exp(np.minimum(a, 0)) / (1 + np.exp(-np.abs(a)))


def _softplus(a):
    """``log(1 + exp(a)) = max(a, 0) + log1p(exp(-|a|))``, exact for any ``a``."""
    return np.maximum(a, 0) + np.log1p(np.exp(-np.abs(a)))


def _sigmoid_slope(a):
    """``sigma'(a) = sigma(a) sigma(-a) = e / (1 + e)^2`` with ``e = exp(-|a|)``.

    The slope is even in ``a``, so one exponential of a non-positive number
    serves both signs, with no cancellation.
    """
    e = np.exp(-np.abs(a))
    return e / ((1 + e) * (1 + e))


def _check_scores(scores, *, min_columns=1):
    """Validate a score matrix; return ``(N, C)``."""
    if not isinstance(scores, np.ndarray):
        raise TypeError(
            f"scores must be a numpy array of shape (N, C), got {type(scores).__name__}"
        )
    if scores.dtype not in FLOAT_DTYPES:
        raise TypeError(
            f"scores must have dtype float32 or float64, got {scores.dtype.name}"
        )
    if scores.ndim != 2:
        raise ValueError(
            f"scores must have 2 dimensions (N, C), got shape {scores.shape}"
        )
    N, C = scores.shape
    if N < 1 or C < N:
        raise ValueError(
            "scores must have shape (N, C) with N >= 1 rows and C >= N columns "
            f"(row i's positive is column i), got {scores.shape}"
        )
    if C < min_columns:
        raise ValueError(
            f"this loss needs at least one negative per row, so C >= 2; got scores "
            f"of shape {scores.shape}"
        )
    if not np.isfinite(scores).all():
        n_bad = int(scores.size - np.count_nonzero(np.isfinite(scores)))
        raise ValueError(f"scores contains {n_bad} NaN or infinite value(s)")
    return N, C


def _check_float_array(x, name):
    """Raise TypeError unless ``x`` is a float32 or float64 NumPy array."""
    if not isinstance(x, np.ndarray) or x.dtype not in FLOAT_DTYPES:
        got = x.dtype.name if isinstance(x, np.ndarray) else type(x).__name__
        raise TypeError(f"{name} must be a float32 or float64 numpy array, got {got}")


def _check_log_q(log_q, scores):
    C = scores.shape[1]
    if not isinstance(log_q, np.ndarray):
        raise TypeError(
            f"log_q must be a numpy array of shape ({C},), got {type(log_q).__name__}"
        )
    if log_q.shape != (C,):
        raise ValueError(
            f"log_q must have shape ({C},), one entry per column of scores, "
            f"got {log_q.shape}"
        )
    if log_q.dtype != scores.dtype:
        raise TypeError(
            f"log_q must have the dtype of scores ({scores.dtype.name}), got "
            f"{log_q.dtype.name}; convert it with .astype(np.{scores.dtype.name})"
        )
    if not np.isfinite(log_q).all():
        raise ValueError("log_q contains NaN or infinite values")
    return log_q


def _check_number(value, name, *, minimum=None):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not math.isfinite(value) or (minimum is not None and value < minimum):
        bound = "" if minimum is None else f" >= {minimum:g}"
        raise ValueError(f"{name} must be a finite number{bound}, got {value!r}")
    return value


def _scale(cache, d_loss):
    """Return ``d_loss / N`` in the cache's dtype: d(mean of rows)/d(row loss)."""
    d_loss = _check_number(d_loss, "d_loss")
    return cache.r.dtype.type(d_loss / cache.r.shape[0])


def _diagonal(N):
    """Index pair of the positives, ``(i, i)`` for the N rows."""
    rows = np.arange(N)
    return rows, rows


def _negative_softmax(r):
    """Softmax of every row over its negatives; the positive gets exactly 0.

    Returns ``(log_s, s)``, both ``(N, C)``; ``log_s`` is ``-inf`` at the
    positives. Needs ``C >= 2``.
    """
    N = r.shape[0]
    diag = _diagonal(N)
    z = r.copy()  # (N, C)
    z[diag] = -np.inf  # exp(-inf) = 0, and the max skips it
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)  # (N, C), the largest entry of each row is 1
    total = e.sum(axis=1, keepdims=True)  # (N, 1), >= 1
    return z - np.log(total), e / total


# -- final activations --------------------------------------------------------------

ACTIVATIONS = ("linear", "relu", "tanh", "elu-<alpha>", "leaky-<alpha>")


class Activation(NamedTuple):
    """A parsed final activation.

    Attributes
    ----------
    kind : str
        ``"linear"``, ``"relu"``, ``"tanh"``, ``"elu"`` or ``"leaky"``.
    alpha : float
        The ELU's ``alpha`` or the leaky ReLU's slope; 0 for the others.
    """

    kind: str
    alpha: float = 0.0

    def __str__(self):
        if self.kind in ("elu", "leaky"):
            return f"{self.kind}-{self.alpha:g}"
        return self.kind


def parse_activation(name):
    """Parse a final activation's name.

    Parameters
    ----------
    name : str or Activation
        ``"linear"``, ``"relu"``, ``"tanh"``, ``"elu-<alpha>"`` with ``alpha > 0``
        (``"elu-1"``), or ``"leaky-<alpha>"`` with ``alpha >= 0``
        (``"leaky-0.01"``).

    Returns
    -------
    Activation
        The kind and its parameter.

    Examples
    --------
    >>> parse_activation("elu-0.5")
    Activation(kind='elu', alpha=0.5)
    """
    if isinstance(name, Activation):
        return name
    allowed = ", ".join(repr(a) for a in ACTIVATIONS)
    if not isinstance(name, str):
        raise TypeError(f"activation must be a string ({allowed}), got {name!r}")
    if name in ("linear", "relu", "tanh"):
        return Activation(name)
    kind, dash, param = name.partition("-")
    if kind not in ("elu", "leaky") or not dash:
        raise ValueError(f"activation must be one of {allowed}, got {name!r}")
    try:
        alpha = float(param)
    except ValueError:
        raise ValueError(
            f"activation {name!r}: the part after '{kind}-' must be a number, "
            f"got {param!r}"
        ) from None
    if not math.isfinite(alpha) or alpha < 0 or (kind == "elu" and alpha == 0):
        bound = "> 0" if kind == "elu" else ">= 0"
        raise ValueError(
            f"activation {name!r}: {kind}'s alpha must be finite and {bound}, "
            f"got {alpha!r}"
        )
    return Activation(kind, alpha)


class ActivationCache(NamedTuple):
    """What `final_activation_backward` needs.

    Attributes
    ----------
    activation : Activation
        The activation.
    x : numpy.ndarray
        Its input ``(N, C)`` (the raw scores).
    y : numpy.ndarray
        Its output ``(N, C)``; the slope of tanh is recomputed from it.
    """

    activation: Activation
    x: np.ndarray
    y: np.ndarray


@_underflow_to_zero
def final_activation_forward(x, activation="linear"):
    """Apply the final activation to raw scores, elementwise.

    ::

        linear       y = x
        relu         y = max(x, 0)
        tanh         y = tanh(x)
        elu-<a>      y = x if x > 0 else a (exp(x) - 1)
        leaky-<a>    y = x if x > 0 else a x

    Parameters
    ----------
    x : numpy.ndarray
        Raw scores ``(N, C)``, float32 or float64.
    activation : str or Activation, default "linear"
        See `parse_activation`.

    Returns
    -------
    y : numpy.ndarray
        ``(N, C)``, same dtype; ``x`` itself for "linear".
    cache : ActivationCache
        For `final_activation_backward`.
    """
    act = parse_activation(activation)
    _check_float_array(x, "x")
    if act.kind == "linear":
        y = x
    elif act.kind == "relu":
        y = np.maximum(x, 0)  # (N, C)
    elif act.kind == "tanh":
        y = np.tanh(x)  # (N, C)
    elif act.kind == "elu":
        # One side is zero at every x; exp sees only the non-positive part, as
        # exp(1e4) would overflow.
        y = np.maximum(x, 0) + act.alpha * np.expm1(np.minimum(x, 0))  # (N, C)
    else:
        y = np.maximum(x, 0) + act.alpha * np.minimum(x, 0)  # (N, C)
    return y, ActivationCache(act, x, y)


@_underflow_to_zero
def final_activation_backward(dy, cache):
    """Backward pass of `final_activation_forward`: ``dx = dy * y'(x)``.

    The slopes, with PyTorch's choice at the kink ``x = 0`` (the left slope)::

        linear 1    relu 1[x > 0]    tanh 1 - y^2
        elu-<a>     1 if x > 0 else a exp(x)
        leaky-<a>   1 if x > 0 else a

    Parameters
    ----------
    dy : numpy.ndarray
        Gradient with respect to the activation's output ``(N, C)``.
    cache : ActivationCache
        From the forward pass.

    Returns
    -------
    numpy.ndarray
        Gradient with respect to the raw scores ``(N, C)``.
    """
    act, x, y = cache
    if act.kind == "linear":
        return dy
    if act.kind == "tanh":
        return dy * (1 - y * y)

    # The slope as a blend of the two sides by the 0/1 indicator of x > 0, not
    # with np.where, which is slow over random signs; each side is exact.
    positive = (x > 0).astype(x.dtype)  # (N, C)
    if act.kind == "relu":
        return dy * positive
    if act.kind == "elu":
        left = act.alpha * np.exp(np.minimum(x, 0))  # (N, C)
    else:
        left = act.alpha
    return dy * (positive + (1 - positive) * left)


# -- cross-entropy ------------------------------------------------------------------


class CrossEntropyCache(NamedTuple):
    """What `cross_entropy_backward` needs.

    Attributes
    ----------
    r : numpy.ndarray
        The scores ``(N, C)``.
    p : numpy.ndarray
        The softmax of ``r - log_q`` over all columns ``(N, C)``.
    """

    r: np.ndarray
    p: np.ndarray


@_underflow_to_zero
def cross_entropy_forward(scores, log_q=None):
    """Compute the sampled softmax cross-entropy, with an optional log-Q correction.

    With ``z_ic = r_ic - log_q[c]`` (``log_q = 0`` when omitted) and the row
    maximum ``m_i = max_c z_ic``::

        L_i = log sum_c exp(z_ic - m_i) - (z_ii - m_i)        = -log softmax(z_i)[i]
        L   = mean_i L_i

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
    cache : CrossEntropyCache
        For `cross_entropy_backward`.
    """
    N, _ = _check_scores(scores)
    z = scores if log_q is None else scores - _check_log_q(log_q, scores)  # (N, C)
    z = z - z.max(axis=1, keepdims=True)  # (N, C), every entry <= 0
    e = np.exp(z)  # (N, C)
    total = e.sum(axis=1)  # (N,), >= 1
    per_row = np.log(total) - z[_diagonal(N)]  # (N,)
    p = e / total[:, None]  # (N, C)
    return float(per_row.mean()), CrossEntropyCache(scores, p)


@_underflow_to_zero
def cross_entropy_backward(cache, d_loss=1.0):
    """Backward pass of `cross_entropy_forward`.

    ::

        dL/dr_ic = (p_ic - [c = i]) / N        p_i = softmax(r_i - log_q)

    ``log_q`` is data, not a parameter, and gets no gradient.

    Parameters
    ----------
    cache : CrossEntropyCache
        From the forward pass.
    d_loss : float, default 1.0
        Gradient of the final objective with respect to the loss.

    Returns
    -------
    numpy.ndarray
        ``dL/dscores`` ``(N, C)``.
    """
    scale = _scale(cache, d_loss)
    d = cache.p.copy()  # (N, C)
    d[_diagonal(d.shape[0])] -= 1
    d *= scale
    return d


# -- BPR-max ------------------------------------------------------------------------


class BPRMaxCache(NamedTuple):
    """What `bpr_max_backward` needs.

    Attributes
    ----------
    r : numpy.ndarray
        The scores ``(N, C)``.
    s : numpy.ndarray
        Softmax over the negatives ``(N, C)``, 0 at the positives.
    w : numpy.ndarray
        ``s_ij sigma(r_i - r_ij)`` normalised over j ``(N, C)``, 0 at the positives.
    diff : numpy.ndarray
        ``r_i - r_ij`` ``(N, C)``; the sigmoids of both signs are recomputed.
    reg : numpy.ndarray
        ``sum_j s_ij r_ij^2`` ``(N,)``.
    bpreg : float
        The regularisation weight.
    """

    r: np.ndarray
    s: np.ndarray
    w: np.ndarray
    diff: np.ndarray
    reg: np.ndarray
    bpreg: float


@_underflow_to_zero
def bpr_max_forward(scores, bpreg=1.0):
    """Compute BPR-max: BPR against a softmax-weighted mixture of the negatives.

    ::

        L_i = -log sum_j s_ij sigma(r_i - r_ij)  +  bpreg sum_j s_ij r_ij^2
        L   = mean_i L_i

    The first term is evaluated in log space,
    ``-logsumexp_j (log s_ij + log sigma(r_i - r_ij))``, which stays finite
    when every ``s_ij sigma(r_i - r_ij)`` underflows.

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
    N, _ = _check_scores(scores, min_columns=2)
    bpreg = _check_number(bpreg, "bpreg", minimum=0)
    diag = _diagonal(N)
    r = scores
    diff = r[diag][:, None] - r  # (N, C): r_i - r_ij
    log_s, s = _negative_softmax(r)  # (N, C), -inf and 0 at the positives

    # log(s_ij sigma(r_i - r_ij)), then its log-sum-exp over j and the weights w.
    a = log_s - _softplus(-diff)  # (N, C)
    a_max = a.max(axis=1, keepdims=True)  # (N, 1)
    e = np.exp(a - a_max)  # (N, C)
    total = e.sum(axis=1, keepdims=True)  # (N, 1), >= 1
    w = e / total  # (N, C)
    ranking = -(a_max[:, 0] + np.log(total[:, 0]))  # (N,)

    reg = np.einsum("ij,ij->i", s, r * r)  # (N,)
    per_row = ranking + r.dtype.type(bpreg) * reg
    cache = BPRMaxCache(r, s, w, diff, reg, bpreg)
    return float(per_row.mean()), cache


@_underflow_to_zero
def bpr_max_backward(cache, d_loss=1.0):
    """Backward pass of `bpr_max_forward`.

    With ``w_ij = s_ij sigma(r_i - r_ij) / sum_k s_ik sigma(r_i - r_ik)`` and
    ``R_i = sum_j s_ij r_ij^2``, for a negative ``j`` and the positive::

        dL_i/dr_ij = s_ij - w_ij sigma(r_i - r_ij)
                     + bpreg s_ij (2 r_ij + r_ij^2 - R_i)
        dL_i/dr_i  = -sum_j w_ij sigma(r_ij - r_i)

    and every entry is divided by N (the mean over rows). ``1 - sigma(a)`` is
    computed as ``sigma(-a)``, which does not cancel when ``sigma(a)`` is near 1.

    Accuracy: the penalty's term ``r_ij^2 - R_i`` is a difference of two numbers
    of size ``max r^2``, so its absolute error is about ``eps max r^2`` in the
    working dtype: a few units in float32 at ``|r| = 1e4``, negligible at the
    scores a trained model produces. Nothing overflows.

    Parameters
    ----------
    cache : BPRMaxCache
        From the forward pass.
    d_loss : float, default 1.0
        Gradient of the final objective with respect to the loss.

    Returns
    -------
    numpy.ndarray
        ``dL/dscores`` ``(N, C)``.
    """
    scale = _scale(cache, d_loss)
    r, s, w, diff, reg, bpreg = cache
    diag = _diagonal(r.shape[0])

    # The ranking term on the negatives: softmax part s, pairwise part w sigma.
    d = s - w * _sigmoid(diff)  # (N, C), 0 at the positives (s = w = 0 there)

    # The regulariser bpreg sum_j s_ij r_ij^2, through r^2 and through s.
    d += r.dtype.type(bpreg) * s * (2 * r + r * r - reg[:, None])

    # The positive: each pair's sigma(r_i - r_ij) pulls r_i up.
    d[diag] = -np.einsum("ij,ij->i", w, _sigmoid(-diff))
    d *= scale
    return d


# -- TOP1-max -----------------------------------------------------------------------


class TOP1MaxCache(NamedTuple):
    """What `top1_max_backward` needs.

    Attributes
    ----------
    r : numpy.ndarray
        The scores ``(N, C)``.
    s : numpy.ndarray
        Softmax over the negatives ``(N, C)``, 0 at the positives.
    g : numpy.ndarray
        ``sigma(r_ij - r_i) + sigma(r_ij^2)`` ``(N, C)``.
    per_row : numpy.ndarray
        ``L_i = sum_j s_ij g_ij`` ``(N,)``.
    """

    r: np.ndarray
    s: np.ndarray
    g: np.ndarray
    per_row: np.ndarray


@_underflow_to_zero
def top1_max_forward(scores):
    """Compute TOP1-max: TOP1 against a softmax-weighted mixture of the negatives.

    ::

        g_ij = sigma(r_ij - r_i) + sigma(r_ij^2)
        L_i  = sum_j s_ij g_ij
        L    = mean_i L_i

    Parameters
    ----------
    scores : numpy.ndarray
        ``(N, C)`` with ``C >= 2``, float32 or float64.

    Returns
    -------
    loss : float
        The mean over rows.
    cache : TOP1MaxCache
        For `top1_max_backward`.
    """
    N, _ = _check_scores(scores, min_columns=2)
    r = scores
    diff = r - r[_diagonal(N)][:, None]  # (N, C): r_ij - r_i
    _, s = _negative_softmax(r)  # (N, C)
    g = _sigmoid(diff) + _sigmoid(r * r)  # (N, C)
    per_row = np.einsum("ij,ij->i", s, g)  # (N,)
    return float(per_row.mean()), TOP1MaxCache(r, s, g, per_row)


@_underflow_to_zero
def top1_max_backward(cache, d_loss=1.0):
    """Backward pass of `top1_max_forward`.

    For a negative ``j`` (the softmax part, then the two sigmoids) and the
    positive::

        dL_i/dr_ij = s_ij (g_ij - L_i)
                     + s_ij (sigma'(r_ij - r_i) + 2 r_ij sigma'(r_ij^2))
        dL_i/dr_i  = -sum_j s_ij sigma'(r_ij - r_i)

    with ``sigma'(a) = sigma(a) sigma(-a)``; every entry is divided by N. The
    sigmoid slopes are recomputed from ``r``.

    Parameters
    ----------
    cache : TOP1MaxCache
        From the forward pass.
    d_loss : float, default 1.0
        Gradient of the final objective with respect to the loss.

    Returns
    -------
    numpy.ndarray
        ``dL/dscores`` ``(N, C)``.
    """
    scale = _scale(cache, d_loss)
    r, s, g, per_row = cache
    diag = _diagonal(r.shape[0])
    slope_pair = _sigmoid_slope(r - r[diag][:, None])  # (N, C)

    # Through the softmax weights s_ij.
    d = s * (g - per_row[:, None])  # (N, C)

    # Through sigma(r_ij - r_i) and sigma(r_ij^2).
    d += s * (slope_pair + 2 * r * _sigmoid_slope(r * r))

    # The positive sits in every pair of its row.
    d[diag] = -np.einsum("ij,ij->i", s, slope_pair)
    d *= scale
    return d


# -- BPR and TOP1 -------------------------------------------------------------------


class PairwiseCache(NamedTuple):
    """What `bpr_backward` and `top1_backward` need.

    Attributes
    ----------
    r : numpy.ndarray
        The scores ``(N, C)``.
    """

    r: np.ndarray


@_underflow_to_zero
def bpr_forward(scores):
    """Compute BPR: the positive against every negative, averaged.

    ::

        L_i = 1/(C-1) sum_j -log sigma(r_i - r_ij) = 1/(C-1) sum_j softplus(r_ij - r_i)
        L   = mean_i L_i

    Parameters
    ----------
    scores : numpy.ndarray
        ``(N, C)`` with ``C >= 2``, float32 or float64.

    Returns
    -------
    loss : float
        The mean over rows.
    cache : PairwiseCache
        For `bpr_backward`.
    """
    N, C = _check_scores(scores, min_columns=2)
    r = scores
    diag = _diagonal(N)
    terms = _softplus(r - r[diag][:, None])  # (N, C)
    terms[diag] = 0
    per_row = terms.sum(axis=1) / (C - 1)  # (N,)
    return float(per_row.mean()), PairwiseCache(r)


@_underflow_to_zero
def bpr_backward(cache, d_loss=1.0):
    """Backward pass of `bpr_forward`.

    ::

        dL_i/dr_ij = sigma(r_ij - r_i) / (C-1)
        dL_i/dr_i  = -sum_j sigma(r_ij - r_i) / (C-1)

    and every entry is divided by N. Recomputed from the scores.

    Parameters
    ----------
    cache : PairwiseCache
        From the forward pass.
    d_loss : float, default 1.0
        Gradient of the final objective with respect to the loss.

    Returns
    -------
    numpy.ndarray
        ``dL/dscores`` ``(N, C)``.
    """
    scale = _scale(cache, d_loss)
    r = cache.r
    N, C = r.shape
    diag = _diagonal(N)
    d = _sigmoid(r - r[diag][:, None])  # (N, C)
    d[diag] = 0
    d[diag] = -d.sum(axis=1)
    d *= r.dtype.type(scale / (C - 1))
    return d


@_underflow_to_zero
def top1_forward(scores):
    """Compute TOP1: a ranking term and a score penalty, averaged over the negatives.

    ::

        L_i = 1/(C-1) sum_j (sigma(r_ij - r_i) + sigma(r_ij^2))
        L   = mean_i L_i

    Parameters
    ----------
    scores : numpy.ndarray
        ``(N, C)`` with ``C >= 2``, float32 or float64.

    Returns
    -------
    loss : float
        The mean over rows.
    cache : PairwiseCache
        For `top1_backward`.
    """
    N, C = _check_scores(scores, min_columns=2)
    r = scores
    diag = _diagonal(N)
    terms = _sigmoid(r - r[diag][:, None]) + _sigmoid(r * r)  # (N, C)
    terms[diag] = 0
    per_row = terms.sum(axis=1) / (C - 1)  # (N,)
    return float(per_row.mean()), PairwiseCache(r)


@_underflow_to_zero
def top1_backward(cache, d_loss=1.0):
    """Backward pass of `top1_forward`.

    ::

        dL_i/dr_ij = (sigma'(r_ij - r_i) + 2 r_ij sigma'(r_ij^2)) / (C-1)
        dL_i/dr_i  = -sum_j sigma'(r_ij - r_i) / (C-1)

    with ``sigma'(a) = sigma(a) sigma(-a)``; every entry is divided by N.
    Recomputed from the scores.

    Parameters
    ----------
    cache : PairwiseCache
        From the forward pass.
    d_loss : float, default 1.0
        Gradient of the final objective with respect to the loss.

    Returns
    -------
    numpy.ndarray
        ``dL/dscores`` ``(N, C)``.
    """
    scale = _scale(cache, d_loss)
    r = cache.r
    N, C = r.shape
    diag = _diagonal(N)
    slope_pair = _sigmoid_slope(r - r[diag][:, None])  # (N, C)
    slope_pair[diag] = 0

    # The regulariser's slope, on the negatives only.
    d = 2 * r * _sigmoid_slope(r * r)  # (N, C)
    d[diag] = 0
    d += slope_pair

    # The positive sits in every pair of its row.
    d[diag] = -slope_pair.sum(axis=1)
    d *= r.dtype.type(scale / (C - 1))
    return d


# -- registry and dispatcher --------------------------------------------------------


class LossSpec(NamedTuple):
    """One entry of `LOSSES`.

    Attributes
    ----------
    forward : callable
        ``forward(scores, **params) -> (loss, cache)``; cross-entropy also takes
        ``log_q``.
    backward : callable
        ``backward(cache, d_loss=1.0) -> d_scores``.
    params : dict
        The loss's hyperparameters and their defaults.
    takes_log_q : bool
        Whether ``forward`` accepts the log-Q correction.
    """

    forward: Callable
    backward: Callable
    params: dict
    takes_log_q: bool = False


LOSSES = {
    "cross-entropy": LossSpec(cross_entropy_forward, cross_entropy_backward, {}, True),
    "bpr-max": LossSpec(bpr_max_forward, bpr_max_backward, {"bpreg": 1.0}),
    "top1-max": LossSpec(top1_max_forward, top1_max_backward, {}),
    "bpr": LossSpec(bpr_forward, bpr_backward, {}),
    "top1": LossSpec(top1_forward, top1_backward, {}),
}

# The losses with compiled kernels in `rnnrec.kernels.losses`, by function name.
COMPILED = {
    "cross-entropy": ("cross_entropy_forward", "cross_entropy_backward"),
    "bpr-max": ("bpr_max_forward", "bpr_max_backward"),
}


class LossCache(NamedTuple):
    """What `Loss.backward` needs.

    Attributes
    ----------
    activation : ActivationCache
        The final activation's cache.
    loss : NamedTuple
        The loss's own cache.
    """

    activation: ActivationCache
    loss: tuple


class Loss:
    """A loss from `LOSSES` behind a final activation.

    ``forward`` computes ``L(act(scores))``; ``backward`` returns
    ``dL/dscores`` through both. Build one with `get_loss`.

    Parameters
    ----------
    name : str
        A key of `LOSSES`.
    final_activation : str, default "linear"
        See `parse_activation`.
    backend : {"numpy", "numba"}, default "numpy"
        "numba" runs the final activation, "cross-entropy" and "bpr-max" as the
        compiled row kernels of `rnnrec.kernels.losses` (the same equations,
        each row in float64, on `rnnrec.kernels.set_threads` threads); the
        other losses stay NumPy.
    **params
        The loss's hyperparameters (``bpreg`` for "bpr-max").

    Attributes
    ----------
    name : str
        The loss.
    activation : Activation
        The parsed final activation.
    params : dict
        Every hyperparameter of the loss, defaults filled in.
    backend : str
        The backend.
    """

    def __init__(self, name, final_activation="linear", *, backend="numpy", **params):
        if name not in LOSSES:
            allowed = ", ".join(repr(k) for k in LOSSES)
            raise ValueError(f"loss must be one of {allowed}, got {name!r}")
        spec = LOSSES[name]
        unknown = sorted(set(params) - set(spec.params))
        if unknown:
            allowed = ", ".join(["final_activation", *spec.params])
            raise TypeError(
                f"loss {name!r} takes the parameters {allowed}; got unexpected "
                f"{', '.join(unknown)}"
            )
        self.name = name
        self.activation = parse_activation(final_activation)
        self.params = {**spec.params, **params}
        for key, value in self.params.items():
            self.params[key] = _check_number(value, key, minimum=0)
        self.backend = check_choice(backend, "backend", ("numpy", "numba"))
        self._activation_pair = (final_activation_forward, final_activation_backward)
        if backend == "numba":
            from rnnrec.kernels import losses as compiled

            self._activation_pair = (
                compiled.final_activation_forward,
                compiled.final_activation_backward,
            )
            if name in COMPILED:
                forward, backward = COMPILED[name]
                spec = spec._replace(
                    forward=getattr(compiled, forward),
                    backward=getattr(compiled, backward),
                )
        self._spec = spec

    def __repr__(self):
        params = "".join(f", {k}={v!r}" for k, v in self.params.items())
        return f"Loss({self.name!r}{params}, final_activation='{self.activation}')"

    def forward(self, scores, log_q=None):
        """Compute the loss of raw scores.

        Parameters
        ----------
        scores : numpy.ndarray
            ``(N, C)`` raw scores, row i's positive in column i.
        log_q : numpy.ndarray, optional
            ``(C,)`` log-Q correction; "cross-entropy" only.

        Returns
        -------
        loss : float
            The mean over rows.
        cache : LossCache
            For `backward`.
        """
        _check_scores(scores)
        if log_q is not None and not self._spec.takes_log_q:
            raise ValueError(
                f"log_q (the log-Q correction) applies to 'cross-entropy' only, not "
                f"to {self.name!r}"
            )
        y, act_cache = self._activation_pair[0](scores, self.activation)
        extra = {"log_q": log_q} if log_q is not None else {}
        loss, loss_cache = self._spec.forward(y, **self.params, **extra)
        return loss, LossCache(act_cache, loss_cache)

    def backward(self, cache, d_loss=1.0):
        """Return the gradient of the loss with respect to the raw scores.

        Parameters
        ----------
        cache : LossCache
            From `forward`.
        d_loss : float, default 1.0
            Gradient of the final objective with respect to the loss.

        Returns
        -------
        numpy.ndarray
            ``(N, C)``.
        """
        dy = self._spec.backward(cache.loss, d_loss)
        return self._activation_pair[1](dy, cache.activation)


def get_loss(name, **params):
    """Build a `Loss` by name.

    Parameters
    ----------
    name : str
        One of "cross-entropy", "bpr-max", "top1-max", "bpr", "top1".
    **params
        ``final_activation`` (default "linear"), ``backend`` (default "numpy",
        see `Loss`) and the loss's hyperparameters (``bpreg`` for "bpr-max",
        default 1.0).

    Returns
    -------
    Loss
        With ``forward(scores, log_q=None)`` and ``backward(cache, d_loss=1.0)``.

    Examples
    --------
    >>> import numpy as np
    >>> loss = get_loss("bpr-max", bpreg=0.5, final_activation="elu-1")
    >>> value, cache = loss.forward(np.zeros((2, 3)))
    >>> round(value, 6)  # -log(1/2), all scores equal
    0.693147
    >>> loss.backward(cache).shape
    (2, 3)
    """
    return Loss(name, **params)

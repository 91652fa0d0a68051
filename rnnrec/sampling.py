"""Negative sampling in proportion to popularity^alpha, from a precomputed buffer.

Item ``v`` of a catalogue of V items, seen ``count_v`` times in the training
data, is drawn with probability::

    p_v = count_v^alpha / sum_u count_u^alpha                (V,)

``alpha = 0`` is uniform over the whole catalogue (items never seen included,
as ``0^0 = 1``), ``alpha = 1`` follows popularity, GRU4Rec's values lie between.
For ``alpha > 0`` an item with count 0 has probability 0 and is never drawn.

Draws are made with replacement, so a request may exceed the catalogue and
the same item may come up twice in one request (the losses do not mask such
duplicates, as in GRU4Rec).

As GRU4Rec's sample cache, the sampler draws a large buffer with one vectorised
call (uniform numbers looked up in the cumulative distribution with
``searchsorted``) and serves consecutive slices of it, drawing a new buffer when
it runs out. The draws therefore form one stream: what ``sample(a)`` followed by
``sample(b)`` returns is the first ``a + b`` items of the stream, however the
requests are cut, and the stream is fixed by the seed and ``buffer_size``.
"""

from __future__ import annotations

import math
import numbers

import numba
import numpy as np

from rnnrec._validation import as_rng, check_positive_int


def _check_counts(counts):
    """Return the counts as a float64 array after checking them."""
    if isinstance(counts, np.ndarray):
        a = counts
    else:
        try:
            a = np.asarray(counts)
        except (TypeError, ValueError):
            a = None
    if a is None or a.dtype.kind not in "iuf" or a.ndim != 1:
        got = (
            f"an array of dtype {a.dtype.name} and shape {a.shape}"
            if a is not None
            else type(counts).__name__
        )
        raise TypeError(
            f"counts must be a 1-D array of non-negative numbers (V,), got {got}"
        )
    if a.size == 0:
        raise ValueError("counts must hold at least one item, got an empty array")
    counts, a = a, a.astype(np.float64)
    if not np.isfinite(a).all():
        raise ValueError("counts contains NaN or infinite values")
    if (a < 0).any():
        bad = int(np.flatnonzero(a < 0)[0])
        raise ValueError(
            f"counts must be non-negative, got counts[{bad}] = {counts[bad].item()!r}"
        )
    if not (a > 0).any():
        raise ValueError(
            "counts are all zero: there is no popularity to sample from "
            "(pass ones for uniform sampling)"
        )
    return a


def _check_alpha(alpha):
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real):
        raise TypeError(f"alpha must be a real number >= 0, got {alpha!r}")
    if not (math.isfinite(alpha) and alpha >= 0):
        raise ValueError(f"alpha must be a finite number >= 0, got {alpha!r}")
    return float(alpha)


def _log_probabilities(counts, alpha):
    """Return ``log p_v`` ``(V,)``: ``-inf`` for items of probability 0.

    Computed as ``alpha log count_v - logsumexp(alpha log count)``, so that no
    ``count^alpha`` is ever formed: it would overflow for large counts and alpha.
    """
    if alpha == 0:
        return np.full(counts.shape, -math.log(counts.size))  # (V,)
    with np.errstate(divide="ignore"):  # log 0 = -inf, the intended value
        log_w = alpha * np.log(counts)  # (V,)
    top = log_w.max()
    with np.errstate(under="ignore"):
        total = np.exp(log_w - top).sum()
    return log_w - (top + math.log(total))


class PopularitySampler:
    """Draw item indices with probability proportional to ``count^alpha``.

    Parameters
    ----------
    counts : array_like
        ``(V,)`` non-negative numbers, one per item (typically the number of
        training clicks of every item), not all zero.
    alpha : float
        Exponent, >= 0: 0 is uniform over all V items, 1 is popularity.
    seed : None, int or numpy.random.Generator, optional
        Seed of the stream of draws.
    buffer_size : int, default 1_000_000
        Draws made at once (8 MB of int64 at the default). Requests larger than
        the buffer are served from several buffers.

    Attributes
    ----------
    n_items : int
        V.
    alpha : float
        The exponent.
    probabilities : numpy.ndarray
        ``p_v`` ``(V,)`` float64, summing to 1.
    log_probabilities : numpy.ndarray
        ``log p_v`` ``(V,)`` float64, ``-inf`` where ``p_v = 0``; accurate even
        where ``p_v`` underflows.

    Examples
    --------
    >>> sampler = PopularitySampler([10, 0, 30], alpha=1.0, seed=0)
    >>> sampler.probabilities
    array([0.25, 0.  , 0.75])
    >>> sampler.sample(6).dtype
    dtype('int64')
    """

    def __init__(self, counts, alpha, *, seed=None, buffer_size=1_000_000):
        counts = _check_counts(counts)
        self.alpha = _check_alpha(alpha)
        self.buffer_size = check_positive_int(buffer_size, "buffer_size")
        self.n_items = int(counts.size)
        self.log_probabilities = _log_probabilities(counts, self.alpha)  # (V,)
        with np.errstate(under="ignore"):  # p below the smallest float is 0
            self.probabilities = np.exp(self.log_probabilities)  # (V,)

        # The cumulative distribution, ending at exactly 1 (x / x == 1 in IEEE
        # arithmetic) so that a uniform number u < 1 always lands on an item.
        # Items of probability 0 repeat their predecessor's value, and the
        # right-sided search never stops on them.
        cdf = np.cumsum(self.probabilities)  # (V,)
        self._cdf = cdf / cdf[-1]
        self._guide = None  # built by the first refill (`rnnrec.kernels.sampling`)
        self._rng = as_rng(seed)
        self._buffer = np.empty(0, dtype=np.int64)
        self._next = 0

    def __repr__(self):
        return (
            f"PopularitySampler(n_items={self.n_items}, alpha={self.alpha!r}, "
            f"buffer_size={self.buffer_size})"
        )

    def _refill(self):
        u = self._rng.random(self.buffer_size)  # (buffer_size,) in [0, 1)
        if numba.config.DISABLE_JIT:  # the compiled search as Python is slow
            self._buffer = np.searchsorted(self._cdf, u, side="right").astype(np.int64)
        else:
            # searchsorted(cdf, u, side="right") again, from a guide table: the
            # same items, a step or two of search each instead of log2 V.
            from rnnrec.kernels.sampling import guide_table, guided_search

            if self._guide is None:
                self._guide = guide_table(self._cdf, self.n_items)
            self._buffer = np.empty(u.size, dtype=np.int64)  # (buffer_size,)
            guided_search(self._cdf, self._guide, u, self._buffer, work=u.size)
        self._next = 0

    def sample(self, n):
        """Return the next ``n`` draws of the stream.

        Parameters
        ----------
        n : int
            Number of items, >= 0; may exceed the catalogue (draws are with
            replacement).

        Returns
        -------
        numpy.ndarray
            ``(n,)`` int64 item indices in ``[0, V)``, a fresh array.
        """
        if isinstance(n, bool) or not isinstance(n, numbers.Integral):
            raise TypeError(f"n must be a non-negative integer, got {n!r}")
        if n < 0:
            raise ValueError(f"n must be a non-negative integer, got {n}")
        out = np.empty(int(n), dtype=np.int64)  # (n,)
        filled = 0
        while filled < n:
            if self._next == self._buffer.size:
                self._refill()
            take = min(n - filled, self._buffer.size - self._next)
            out[filled : filled + take] = self._buffer[self._next : self._next + take]
            self._next += take
            filled += take
        return out

    def pending(self):
        """Return the draws made but not yet handed out, in the order ``sample`` would.

        With `set_pending` this saves and restores the sampler's place in its
        stream (the random generator's own state is saved separately).

        Returns
        -------
        numpy.ndarray
            ``(k,)`` int64 item indices, a copy.
        """
        return self._buffer[self._next :].copy()

    def set_pending(self, draws):
        """Make ``draws`` the next items ``sample`` hands out, before any new draw.

        Parameters
        ----------
        draws : array_like of int
            ``(k,)`` item indices in ``[0, V)``, e.g. from `pending`.

        Raises
        ------
        ValueError
            If ``draws`` is not one-dimensional or holds an index outside
            ``[0, V)``.
        """
        draws = np.asarray(draws)
        if draws.ndim != 1 or (draws.size and draws.dtype.kind not in "iu"):
            raise ValueError(
                f"draws must be a 1-D array of item indices, got shape {draws.shape} "
                f"and dtype {draws.dtype}"
            )
        if draws.size and (draws.min() < 0 or draws.max() >= self.n_items):
            raise ValueError(
                f"draws must be item indices in [0, {self.n_items}), got values from "
                f"{draws.min()} to {draws.max()}"
            )
        self._buffer, self._next = draws.astype(np.int64), 0

    def log_probability(self, items):
        """Return ``log p(item)`` for the log-Q correction of sampled softmax.

        Parameters
        ----------
        items : array_like of int
            Item indices in ``[0, V)``, any shape.

        Returns
        -------
        numpy.ndarray
            float64, the shape of ``items``; ``-inf`` for items that are never
            drawn (count 0 with ``alpha > 0``).
        """
        idx = np.asarray(items)
        if idx.dtype.kind not in "iu":
            raise TypeError(
                f"items must be integer item indices, got dtype {idx.dtype.name}"
            )
        if idx.size and (idx.min() < 0 or idx.max() >= self.n_items):
            bad = idx[(idx < 0) | (idx >= self.n_items)].flat[0]
            raise ValueError(f"items must be in [0, {self.n_items}), got {int(bad)}")
        return self.log_probabilities[idx]

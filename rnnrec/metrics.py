"""Ranking metrics of next-click prediction: ranks with ties, Recall, MRR, NDCG.

A prediction is a row of scores over all ``V`` items and one target item. Its
*rank* counts the items placed above the target; what happens to items with
exactly the target's score is a choice that changes the numbers a lot when many
items share a score (a popularity baseline, an untrained model, a model that
outputs zeros), so `target_ranks` makes it explicit:

- ``"standard"``: ``1 + #{j : s_j > s_t}``, ties in the target's favour;
- ``"conservative"``: ``1 + #{j != t : s_j >= s_t}``, ties against it;
- ``"median"``: the mean of the two, the middle of the target's tie group.

With distinct scores the three agree. `MetricAccumulator` turns ranks into the
averages published for session recommendation, at several cutoffs ``K``:

- Recall@K (the hit rate, one target per prediction): ``[rank <= K]``;
- MRR@K: ``1 / rank`` if ``rank <= K``, else 0;
- NDCG@K: ``1 / log2(rank + 1)`` if ``rank <= K``, else 0 (one relevant item, so
  the ideal DCG is 1).
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from rnnrec._validation import check_choice
from rnnrec.kernels._jit import jit

TIES = ("standard", "conservative", "median")


@jit
def _count_above_and_tied(scores, targets, n_above, n_tied):
    """Count, per row, the items scored above the target and those tied with it.

    ``n_above[b]`` and ``n_tied[b]`` (the target itself not counted) are written
    in place. A NaN compares false with everything, so NaN scores are counted
    separately and their total returned; the caller rejects the call if it is
    not 0. One pass over ``scores`` does all three counts.
    """
    B, V = scores.shape
    n_nan = 0
    for b in range(B):
        row = scores[b]
        s_t = row[targets[b]]
        above = 0
        tied = 0
        nan = 0
        for j in range(V):
            s_j = row[j]
            if s_j > s_t:
                above += 1
            if s_j == s_t:
                tied += 1
            if s_j != s_j:
                nan += 1
        n_above[b] = above
        n_tied[b] = tied - 1  # the target ties with itself
        n_nan += nan
    return n_nan


def target_ranks(scores, targets, ties="standard"):
    """Rank each row's target among all items by score (1 is best).

    Parameters
    ----------
    scores : numpy.ndarray
        ``(B, V)`` scores of the ``V`` items for ``B`` predictions, higher is
        better. float32 or float64 (integer and other real dtypes are converted
        to float64). Infinite scores are allowed, NaN is not.
    targets : numpy.ndarray
        ``(B,)`` integer index of the true item of each row, in ``[0, V)``.
    ties : {"standard", "conservative", "median"}, default "standard"
        How items with exactly the target's score count, see the module
        docstring: ``standard`` puts the target at the top of its tie group,
        ``conservative`` at the bottom, ``median`` in the middle.

    Returns
    -------
    numpy.ndarray
        ``(B,)`` float64 ranks in ``[1, V]``; whole numbers except for
        ``median``, which can end in ``.5``.

    Raises
    ------
    ValueError
        If a shape or a target index is wrong, or if ``scores`` holds NaN.
    TypeError
        If an argument is not a numpy array of a real dtype.

    Examples
    --------
    >>> import numpy as np
    >>> scores = np.array([[0.1, 0.5, 0.5, 0.9]])
    >>> [float(target_ranks(scores, np.array([2]), t)[0]) for t in TIES]
    [2.0, 3.0, 2.5]
    """
    check_choice(ties, "ties", TIES)
    if not isinstance(scores, np.ndarray):
        raise TypeError(
            f"scores must be a numpy array of shape (B, V), got {type(scores).__name__}"
        )
    if scores.ndim != 2 or scores.shape[1] < 1:
        raise ValueError(
            f"scores must have shape (B, V) with V >= 1, got {scores.shape}"
        )
    if scores.dtype.kind not in "fiu":
        raise TypeError(f"scores must have a real dtype, got {scores.dtype.name}")
    if scores.dtype not in (np.float32, np.float64):
        scores = scores.astype(np.float64)
    B, V = scores.shape

    if not isinstance(targets, np.ndarray):
        raise TypeError(
            f"targets must be a numpy integer array of shape ({B},), "
            f"got {type(targets).__name__}"
        )
    if targets.dtype.kind not in "iu":
        raise TypeError(f"targets must have an integer dtype, got {targets.dtype.name}")
    if targets.shape != (B,):
        raise ValueError(
            f"targets must have shape ({B},) (one per row of scores), "
            f"got {targets.shape}"
        )
    if B and (targets.min() < 0 or targets.max() >= V):
        raise ValueError(
            f"targets must be item indices in [0, {V}), got values from "
            f"{targets.min()} to {targets.max()}"
        )
    targets = targets.astype(np.int64, copy=False)

    n_above = np.empty(B, dtype=np.int64)  # (B,)
    n_tied = np.empty(B, dtype=np.int64)  # (B,)
    n_nan = _count_above_and_tied(scores, targets, n_above, n_tied)
    if n_nan:
        n_rows = int(np.isnan(scores).any(axis=1).sum())
        raise ValueError(
            f"scores contains {n_nan} NaN value(s) in {n_rows} of {B} rows; "
            f"a NaN score cannot be ranked"
        )

    ranks = 1.0 + n_above.astype(np.float64)  # (B,)
    if ties == "conservative":
        ranks += n_tied
    elif ties == "median":
        ranks += 0.5 * n_tied
    return ranks


def _check_cutoffs(cutoffs):
    """Return the cutoffs as a sorted tuple of distinct positive ints."""
    if isinstance(cutoffs, numbers.Integral) and not isinstance(cutoffs, bool):
        cutoffs = (cutoffs,)
    try:
        values = list(cutoffs)
    except TypeError:
        raise TypeError(
            f"cutoffs must be a positive int or a sequence of them, got {cutoffs!r}"
        ) from None
    if not values:
        raise ValueError("cutoffs must hold at least one cutoff, got an empty sequence")
    for k in values:
        if isinstance(k, bool) or not isinstance(k, numbers.Integral):
            raise TypeError(f"cutoffs must be positive ints, got {k!r} in {cutoffs!r}")
        if k < 1:
            raise ValueError(f"cutoffs must be positive ints, got {k} in {cutoffs!r}")
    return tuple(sorted({int(k) for k in values}))


class MetricAccumulator:
    """Average Recall@K, MRR@K and NDCG@K over ranks added batch by batch.

    Parameters
    ----------
    cutoffs : int or sequence of int, default (5, 10, 20)
        The list lengths ``K``, positive; kept sorted and without repeats.

    Attributes
    ----------
    cutoffs : tuple of int
        The cutoffs, sorted.
    n : int
        Number of ranks added so far.

    Examples
    --------
    >>> import numpy as np
    >>> acc = MetricAccumulator(cutoffs=(1, 2))
    >>> acc.add(np.array([1.0, 2.0, 5.0, 3.0]))
    >>> acc.result()["recall@2"], acc.result()["mrr@2"], acc.result()["n"]
    (0.5, 0.375, 4)
    """

    def __init__(self, cutoffs=(5, 10, 20)):
        self.cutoffs = _check_cutoffs(cutoffs)
        self.reset()

    def reset(self):
        """Forget every rank added."""
        self.n = 0
        k = len(self.cutoffs)
        self._hits = np.zeros(k)  # (len(cutoffs),) sums of [rank <= K]
        self._rr = np.zeros(k)  # sums of 1 / rank within K
        self._dcg = np.zeros(k)  # sums of 1 / log2(rank + 1) within K

    def add(self, ranks):
        """Add the ranks of a batch of predictions.

        Parameters
        ----------
        ranks : array_like
            ``(B,)`` ranks, 1 for the best, as `target_ranks` returns them
            (``.5`` values from median ties are fine).
        """
        ranks = np.asarray(ranks, dtype=np.float64)
        if ranks.ndim != 1:
            raise ValueError(f"ranks must be 1-D (B,), got shape {ranks.shape}")
        if ranks.size and not (np.isfinite(ranks).all() and ranks.min() >= 1.0):
            raise ValueError(
                "ranks must be finite and >= 1, got values from "
                f"{np.nanmin(ranks)} to {np.nanmax(ranks)} (NaN: "
                f"{int(np.isnan(ranks).sum())})"
            )
        rr = 1.0 / ranks  # (B,)
        gain = 1.0 / np.log2(ranks + 1.0)  # (B,)
        for i, k in enumerate(self.cutoffs):
            hit = ranks <= k  # (B,)
            self._hits[i] += np.count_nonzero(hit)
            self._rr[i] += rr[hit].sum()
            self._dcg[i] += gain[hit].sum()
        self.n += len(ranks)

    def result(self):
        """Return the averages over every rank added.

        Returns
        -------
        dict
            ``"recall@K"``, ``"mrr@K"`` and ``"ndcg@K"`` (floats in ``[0, 1]``,
            NaN before any rank is added) for every cutoff ``K``, and ``"n"``,
            the number of ranks.
        """
        out = {}
        for i, k in enumerate(self.cutoffs):
            if self.n:
                out[f"recall@{k}"] = float(self._hits[i] / self.n)
                out[f"mrr@{k}"] = float(self._rr[i] / self.n)
                out[f"ndcg@{k}"] = float(self._dcg[i] / self.n)
            else:
                out[f"recall@{k}"] = out[f"mrr@{k}"] = out[f"ndcg@{k}"] = math.nan
        out["n"] = self.n
        return out

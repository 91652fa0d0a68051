"""What `SessionRecommender.recommend` needs: ids to indices, and the best k items.

`encode_sessions` turns the user's sessions of item ids into item indices,
refusing anything that is not a sequence of known ids with a message that says
which session and which id.

`top_k_scores` finds the best k items for a hidden state, scored a block of
items at a time.

The score of item ``v`` is ``h W_y[v]^T + b_y[v]``. Scoring the whole catalogue
at once holds V scores and, to select the top k, a few arrays of the same
length: tens of megabytes for a million items. `top_k_scores` scores
``SCORE_BLOCK`` items at a time instead, keeps the best k of each block, and
merges them with the best k so far, so that its memory does not grow with V::

    block    s = h W_y[lo:hi]^T + b_y[lo:hi]       (1, n)   n <= SCORE_BLOCK
    best     the k largest of s, then of [best; block's best]    (k,)

Each block is computed by the same matrix product as the whole row would be,
on a slice that starts at a multiple of ``SCORE_BLOCK``; a catalogue of at most
``SCORE_BLOCK`` items is one block, the product of the full row.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

SCORE_BLOCK = 2**16  # items scored at a time: 256 KiB of float32 scores


def _largest(scores, k):
    """Return the indices of the ``k`` largest of 1-D ``scores``, ties lowest first."""
    n = len(scores)
    if n <= k:
        return np.arange(n)
    kth = np.partition(scores, n - k)[n - k]  # the k-th largest value
    above = np.flatnonzero(scores > kth)
    tied = np.flatnonzero(scores == kth)[: k - len(above)]
    return np.concatenate([above, tied])


def top_k_scores(h, W_y, b_y, k, exclude=None, block=SCORE_BLOCK):
    """Return the ``k`` best items for one hidden state and their scores.

    Parameters
    ----------
    h : numpy.ndarray
        ``(1, H)`` hidden state.
    W_y : numpy.ndarray
        ``(V, H)`` output item matrix.
    b_y : numpy.ndarray
        ``(V,)`` output bias.
    k : int
        Number of items, ``1 <= k <= V``.
    exclude : numpy.ndarray, optional
        Item indices scored ``-inf`` (the clicks of the session, to leave out).
    block : int, default SCORE_BLOCK
        Items scored at a time.

    Returns
    -------
    items : numpy.ndarray
        ``(k,)`` int64 item indices, best first; equal scores in index order.
    scores : numpy.ndarray
        ``(k,)`` their scores, in the dtype of ``W_y``.
    """
    V = len(b_y)
    best = np.empty(0, dtype=np.int64)  # (<= k,) item indices
    best_scores = np.empty(0, dtype=W_y.dtype)  # (<= k,)
    for lo in range(0, V, block):
        hi = min(lo + block, V)
        scores = h @ W_y[lo:hi].T  # (1, n)
        scores += b_y[lo:hi]
        row = scores[0]
        if exclude is not None:
            inside = exclude[(exclude >= lo) & (exclude < hi)]
            row[inside - lo] = -np.inf
        chosen = _largest(row, k)
        items = np.concatenate([best, lo + chosen])  # (<= 2k,)
        values = np.concatenate([best_scores, row[chosen]])
        keep = np.lexsort((items, -values))[:k]  # best first, then lower index
        best, best_scores = items[keep], values[keep]
    return best, best_scores


def encode_sessions(sessions, index):
    """Turn sessions of item ids into arrays of item indices, checking each.

    Parameters
    ----------
    sessions : sequence of sequences
        Each session's clicks as item ids: lists, tuples or 1-D arrays.
    index : dict
        The item index of every id the model knows.

    Returns
    -------
    list of numpy.ndarray
        ``(L,)`` int64 item indices of every session.

    Raises
    ------
    TypeError
        If ``sessions`` or a session is not a sequence, or holds something
        that cannot be an id (a bool, a list, a dict).
    ValueError
        If a session is empty or holds ids unknown to the model.
    """
    if isinstance(sessions, (str, bytes)) or not isinstance(
        sessions, (Sequence, np.ndarray)
    ):
        raise TypeError(
            "sessions must be a list of sessions, each a list of item ids, got "
            f"{type(sessions).__name__}"
        )
    encoded = []
    for n, session in enumerate(sessions):
        if isinstance(session, np.ndarray) and session.ndim != 1:
            raise TypeError(
                f"session {n} must be 1-D, got an array of shape {session.shape}"
            )
        if hasattr(session, "tolist") and not isinstance(session, (str, bytes)):
            session = session.tolist()
        if isinstance(session, (str, bytes)) or not isinstance(session, Sequence):
            raise TypeError(
                f"session {n} must be a list, tuple or 1-D array of item ids, "
                f"got {type(session).__name__}"
            )
        if len(session) == 0:
            raise ValueError(f"session {n} is empty; give at least one click")
        codes, unknown = [], []
        for item in session:
            if isinstance(item, (bool, np.bool_)):
                raise TypeError(f"session {n} holds {item!r}, not an item id")
            try:
                code = index.get(item)
            except TypeError:  # unhashable: a list, a dict, an array
                raise TypeError(
                    f"session {n} holds {type(item).__name__} {item!r:.40}, not "
                    "an item id (a number or a string)"
                ) from None
            if code is None:
                unknown.append(item)
            codes.append(code)
        if unknown:
            raise ValueError(
                f"session {n} holds item ids unknown to the model: {unknown[:5]}"
            )
        encoded.append(np.array(codes, dtype=np.int64))
    return encoded

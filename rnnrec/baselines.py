"""Next-click baselines: popularity, session popularity, item-kNN, first-order Markov.

Every baseline is a *scorer*, the interface the recurrent model also implements and
that `rnnrec.evaluation.evaluate_next_click` drives over ``B`` session-parallel
slots:

- ``fit(train)`` learns from training `Sessions` and returns the scorer;
- ``n_items``: the number ``V`` of items scored;
- ``init_state(batch_size)`` returns the state of ``B`` empty slots;
- ``carry_state(state, carry)`` keeps the slots ``carry`` (``(B',)`` int64, new
  slot ``b'`` continues old slot ``carry[b']``) when the batch shrinks;
- ``score_next(state, items, reset)`` takes the current click of every slot
  (``items``, ``(B,)`` int64) and ``reset`` (``(B,)`` bool, true where a session
  starts with this click) and returns ``(scores, state)``: ``scores`` ``(B, V)``
  float64 rank the candidates for the *next* click given the session so far,
  this click included.

Ties between scores count in the metrics (see `rnnrec.metrics.target_ranks`), so
the baselines break them by training popularity wherever their own signal is
silent. With ``pop_i`` the training clicks on item ``i``, the tie-breaker is::

    tb_i = pop_i / (max_j pop_j + 1)        in [0, 1)

Added to a whole-number signal (a count), ``count_i + tb_i`` orders items by the
count first and by popularity among equal counts, exactly: the tie-breaker never
outweighs a difference of one. Items with the same popularity stay tied.

Popularity, item-kNN and Markov look only at the current click and keep no state
(their state is None); session popularity keeps the clicks of each slot's session.
"""

from __future__ import annotations

import numbers
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from rnnrec._validation import check_mask, check_positive_int
from rnnrec.data.sessions import Sessions
from rnnrec.kernels._jit import jit


@jit
def _scatter_rows(scores, indptr, indices, data, rows, assign):
    """Write row ``rows[b]`` of a CSR matrix into ``scores[b]``, for every ``b``.

    The stored entries of the row are added to ``scores[b]`` (``assign`` false) or
    replace its values (``assign`` true); the other columns are left as they are.
    The matrix is given by its CSR arrays ``indptr``, ``indices`` and ``data``,
    without duplicate entries.
    """
    for b in range(len(rows)):
        r = rows[b]
        for k in range(indptr[r], indptr[r + 1]):
            if assign:
                scores[b, indices[k]] = data[k]
            else:
                scores[b, indices[k]] += data[k]


def _check_sessions(train):
    if not isinstance(train, Sessions):
        raise TypeError(
            f"train must be a rnnrec.data.sessions.Sessions, got {type(train).__name__}"
        )
    return train


def _check_real(value, name, low, high=None):
    """Return ``value`` as a float after checking ``low <= value (<= high)``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not (value >= low and (high is None or value <= high)):
        allowed = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"{name} must be {allowed}, got {value}")
    return value


def _session_starts(train):
    """Return a ``(n_clicks,)`` bool mask of the clicks that begin a session."""
    starts = np.zeros(train.n_clicks, dtype=bool)  # (n_clicks,)
    starts[train.offsets[:-1][train.lengths > 0]] = True
    return starts


class _Baseline:
    """What the baselines share: popularity, the tie-breaker and input checks."""

    def _fit_popularity(self, train):
        self.popularity_ = train.item_counts()  # (V,)
        max_pop = int(self.popularity_.max()) if train.n_items else 0
        self.tiebreak_ = self.popularity_ / (max_pop + 1.0)  # (V,) in [0, 1)

    def _check_fitted(self):
        if not hasattr(self, "popularity_"):
            raise RuntimeError(
                f"this {type(self).__name__} is not fitted yet; call fit(train) first"
            )

    @property
    def n_items(self):
        """int: number of items scored (the training item index), after `fit`."""
        self._check_fitted()
        return len(self.popularity_)

    def init_state(self, batch_size):
        """Return the state of ``batch_size`` empty slots.

        Parameters
        ----------
        batch_size : int
            Number of slots ``B``, >= 1.

        Returns
        -------
        None
            This scorer looks only at the current click and keeps no state.
        """
        check_positive_int(batch_size, "batch_size")
        return None

    def carry_state(self, state, carry):
        """Keep the slots listed in ``carry`` (when the batch shrinks).

        Parameters
        ----------
        state : None
            The state of the old slots.
        carry : numpy.ndarray
            ``(B',)`` int64: new slot ``b'`` continues old slot ``carry[b']``.

        Returns
        -------
        None
            This scorer keeps no state.
        """
        _check_carry(carry, None)
        return None

    def _check_step(self, items, reset, batch_size=None):
        """Check the inputs of `score_next`; return ``B``."""
        self._check_fitted()
        if not isinstance(items, np.ndarray) or items.ndim != 1:
            got = items.shape if isinstance(items, np.ndarray) else type(items).__name__
            raise TypeError(f"items must be a 1-D numpy integer array (B,), got {got}")
        if items.dtype.kind not in "iu":
            raise TypeError(f"items must have an integer dtype, got {items.dtype.name}")
        B = len(items)
        if batch_size is not None and B != batch_size:
            raise ValueError(
                f"items must have one click per slot of the state ({batch_size},), "
                f"got shape {items.shape}"
            )
        check_mask(reset, "reset", (B,))
        V = self.n_items
        if B and (items.min() < 0 or items.max() >= V):
            raise ValueError(
                f"items must be item indices in [0, {V}), got values from "
                f"{items.min()} to {items.max()}"
            )
        return B

    def _tiebreak_rows(self, B):
        """Return a new ``(B, V)`` float64 array with the tie-breaker in every row."""
        scores = np.empty((B, self.n_items))  # (B, V)
        scores[:] = self.tiebreak_
        return scores


def _check_carry(carry, batch_size):
    """Check a ``carry`` argument against the old number of slots (if known)."""
    if not isinstance(carry, np.ndarray) or carry.ndim != 1:
        got = carry.shape if isinstance(carry, np.ndarray) else type(carry).__name__
        raise TypeError(f"carry must be a 1-D numpy integer array (B',), got {got}")
    if carry.dtype.kind not in "iu":
        raise TypeError(f"carry must have an integer dtype, got {carry.dtype.name}")
    if (
        batch_size is not None
        and len(carry)
        and (carry.min() < 0 or carry.max() >= batch_size)
    ):
        raise ValueError(
            f"carry must hold old slot numbers in [0, {batch_size}), got values "
            f"from {carry.min()} to {carry.max()}"
        )
    return carry


class Popularity(_Baseline):
    """Recommend the items clicked most often in training, the same list for all.

    The score of item ``i`` is its number of training clicks ``pop_i``; items
    with equal counts tie.

    Attributes
    ----------
    popularity_ : numpy.ndarray
        ``(V,)`` int64 training clicks per item.
    tiebreak_ : numpy.ndarray
        ``(V,)`` float64 ``pop_i / (max pop + 1)``.

    Examples
    --------
    >>> import numpy as np
    >>> from rnnrec.data.sessions import Sessions
    >>> model = Popularity().fit(Sessions.from_lists([[0, 1, 1], [2, 1]]))
    >>> scores, _ = model.score_next(None, np.array([0]), np.array([True]))
    >>> scores.tolist()
    [[1.0, 3.0, 1.0]]
    """

    def fit(self, train):
        """Count the training clicks of every item.

        Parameters
        ----------
        train : Sessions
            Training sessions.

        Returns
        -------
        Popularity
            self.
        """
        self._fit_popularity(_check_sessions(train))
        self._scores = self.popularity_.astype(np.float64)  # (V,)
        return self

    def score_next(self, state, items, reset):
        """Score the next click: the same popularity row for every slot.

        Parameters
        ----------
        state : None
            Unused.
        items : numpy.ndarray
            ``(B,)`` int64 current click of every slot.
        reset : numpy.ndarray
            ``(B,)`` bool, true where a session starts.

        Returns
        -------
        scores : numpy.ndarray
            ``(B, V)`` float64 training click counts.
        state : None
            Unused.
        """
        B = self._check_step(items, reset)
        scores = np.empty((B, self.n_items))  # (B, V)
        scores[:] = self._scores  # (V,) float64 counts, in every row
        return scores, None


class SessionClicks(NamedTuple):
    """State of `SessionPopularity`: the clicks of each slot's current session.

    Attributes
    ----------
    clicks : numpy.ndarray
        ``(B, L)`` int64; slot ``b``'s session is ``clicks[b, :lengths[b]]``, the
        rest is unused. ``L`` grows as sessions get longer.
    lengths : numpy.ndarray
        ``(B,)`` int64 clicks so far in each slot's session.
    """

    clicks: np.ndarray
    lengths: np.ndarray


class SessionPopularity(_Baseline):
    """Recommend the items clicked most often in the current session so far.

    The score of item ``i`` after the clicks of the session so far is::

        score_i = (clicks on i in the session) + pop_i / (max_j pop_j + 1)

    so items are ordered by their session count, then by training popularity;
    items not yet clicked in the session come after, in popularity order.

    Attributes
    ----------
    popularity_ : numpy.ndarray
        ``(V,)`` int64 training clicks per item.
    tiebreak_ : numpy.ndarray
        ``(V,)`` float64 ``pop_i / (max pop + 1)``.

    Examples
    --------
    >>> import numpy as np
    >>> from rnnrec.data.sessions import Sessions
    >>> model = SessionPopularity().fit(Sessions.from_lists([[0, 1, 1], [2, 1]]))
    >>> state = model.init_state(1)
    >>> scores, state = model.score_next(state, np.array([2]), np.array([True]))
    >>> scores, state = model.score_next(state, np.array([0]), np.array([False]))
    >>> scores.tolist()
    [[1.25, 0.75, 1.25]]
    """

    def fit(self, train):
        """Count the training clicks of every item (the tie-breaker).

        Parameters
        ----------
        train : Sessions
            Training sessions.

        Returns
        -------
        SessionPopularity
            self.
        """
        self._fit_popularity(_check_sessions(train))
        return self

    def init_state(self, batch_size):
        """Return ``batch_size`` slots with no clicks.

        Parameters
        ----------
        batch_size : int
            Number of slots ``B``, >= 1.

        Returns
        -------
        SessionClicks
            Empty sessions.
        """
        B = check_positive_int(batch_size, "batch_size")
        return SessionClicks(
            clicks=np.zeros((B, 16), dtype=np.int64),  # (B, L)
            lengths=np.zeros(B, dtype=np.int64),  # (B,)
        )

    def carry_state(self, state, carry):
        """Keep the sessions of the slots listed in ``carry``.

        Parameters
        ----------
        state : SessionClicks
            The state of the old slots.
        carry : numpy.ndarray
            ``(B',)`` int64: new slot ``b'`` continues old slot ``carry[b']``.

        Returns
        -------
        SessionClicks
            The state of the new slots (new arrays).
        """
        state = self._check_state(state)
        carry = _check_carry(carry, len(state.lengths))
        return SessionClicks(state.clicks[carry], state.lengths[carry])

    def _check_state(self, state):
        if not isinstance(state, SessionClicks):
            raise TypeError(
                "state must be the SessionClicks returned by init_state, "
                f"carry_state or score_next, got {type(state).__name__}"
            )
        return state

    def score_next(self, state, items, reset):
        """Add the current clicks to their sessions and score the next click.

        Parameters
        ----------
        state : SessionClicks
            The sessions so far; not modified.
        items : numpy.ndarray
            ``(B,)`` int64 current click of every slot.
        reset : numpy.ndarray
            ``(B,)`` bool, true where a session starts with this click (the
            slot's earlier clicks are forgotten).

        Returns
        -------
        scores : numpy.ndarray
            ``(B, V)`` float64 session counts plus the popularity tie-breaker.
        state : SessionClicks
            The sessions with the current clicks added.
        """
        state = self._check_state(state)
        B = self._check_step(items, reset, len(state.lengths))
        lengths = np.where(reset, 0, state.lengths)  # (B,)
        L = state.clicks.shape[1]
        if lengths.max() < L:
            clicks = state.clicks.copy()  # (B, L)
        else:  # a session fills its row: double the room
            clicks = np.zeros((B, 2 * L), dtype=np.int64)  # (B, 2L)
            clicks[:, :L] = state.clicks
        clicks[np.arange(B), lengths] = items
        lengths = lengths + 1

        scores = self._tiebreak_rows(B)  # (B, V)
        used = np.arange(clicks.shape[1]) < lengths[:, None]  # (B, L)
        rows = np.repeat(np.arange(B), lengths)  # (sum of lengths,)
        np.add.at(scores, (rows, clicks[used]), 1.0)
        return scores, SessionClicks(clicks, lengths)


class ItemKNN(_Baseline):
    """Recommend the items most similar to the last click (item-to-item kNN).

    Two items are similar when they occur in the same training sessions. With
    ``S_i`` the set of sessions containing item ``i`` (repeats within a session
    count once), the similarity of ``i`` and ``j != i`` is::

        sim(i, j) = |S_i ∩ S_j| / ((|S_i| + λ)^α (|S_j| + λ)^(1 - α))

    (``λ`` is ``shrinkage``, ``α`` is ``alpha``).

    With ``lambda = 0`` and ``alpha = 0.5`` this is the cosine similarity of the
    items' session vectors, ``|S_i ∩ S_j| / sqrt(|S_i| |S_j|)``, the item-kNN
    baseline of the GRU4Rec paper. The shrinkage ``lambda`` pulls the
    similarities of rarely clicked items towards 0, so that one chance
    co-occurrence of two rare items does not make them each other's best
    neighbour; ``alpha`` moves the normalisation between the two items.

    Every item keeps its ``n_neighbors`` most similar items (ties by lower
    index). The defaults (100 neighbours, ``lambda = 20``, ``alpha = 0.5``) are
    those of the item-kNN baseline distributed with the GRU4Rec code.

    After a click on ``i`` the neighbours ``j`` of ``i`` score ``1 + sim(i, j)``,
    in ``(1, 2]``, and every other item, ``i`` itself included, scores its
    popularity tie-breaker ``tb_j`` in ``[0, 1)``: the neighbours come first, by
    similarity, then the rest by popularity.

    Parameters
    ----------
    n_neighbors : int, default 100
        Neighbours kept per item.
    shrinkage : float, default 20.0
        ``lambda`` above, >= 0.
    alpha : float, default 0.5
        The exponent ``alpha`` above, in ``[0, 1]``.

    Attributes
    ----------
    similarity_ : scipy.sparse.csr_matrix
        ``(V, V)`` float64; row ``i`` holds ``sim(i, j)`` of the neighbours ``j``
        of ``i``.
    support_ : numpy.ndarray
        ``(V,)`` int64 ``|S_i|``, training sessions containing each item.
    popularity_ : numpy.ndarray
        ``(V,)`` int64 training clicks per item.
    tiebreak_ : numpy.ndarray
        ``(V,)`` float64 ``pop_i / (max pop + 1)``.

    Examples
    --------
    >>> import numpy as np
    >>> from rnnrec.data.sessions import Sessions
    >>> train = Sessions.from_lists([[0, 1], [0, 1, 2], [2, 3]])
    >>> model = ItemKNN(shrinkage=0.0).fit(train)
    >>> model.similarity_.toarray().round(6).tolist()[0]
    [0.0, 1.0, 0.5, 0.0]
    """

    def __init__(self, n_neighbors=100, shrinkage=20.0, alpha=0.5):
        self.n_neighbors = n_neighbors
        self.shrinkage = shrinkage
        self.alpha = alpha

    def fit(self, train):
        """Compute the session co-occurrence similarities of all item pairs.

        Parameters
        ----------
        train : Sessions
            Training sessions.

        Returns
        -------
        ItemKNN
            self.
        """
        train = _check_sessions(train)
        k = check_positive_int(self.n_neighbors, "n_neighbors")
        lam = _check_real(self.shrinkage, "shrinkage", 0.0)
        alpha = _check_real(self.alpha, "alpha", 0.0, 1.0)
        V = train.n_items

        # X[s, i] = 1 if session s contains item i: the session vectors.
        sessions = np.repeat(np.arange(train.n_sessions), train.lengths)  # (n_clicks,)
        X = sp.csr_matrix(
            (np.ones(train.n_clicks), (sessions, train.items)),
            shape=(train.n_sessions, V),
        )  # (n_sessions, V)
        X.sum_duplicates()
        X.data[:] = 1.0

        # C[i, j] = |S_i ∩ S_j|; its diagonal is |S_i|.
        C = (X.T @ X).tocoo()  # (V, V)
        support = np.zeros(V, dtype=np.int64)  # (V,)
        on_diag = C.row == C.col
        support[C.row[on_diag]] = C.data[on_diag].round().astype(np.int64)
        off = ~on_diag
        i, j, co = C.row[off], C.col[off], C.data[off]

        denom = (support[i] + lam) ** alpha * (support[j] + lam) ** (1.0 - alpha)
        sim = co / denom  # (nnz,)

        # The k best of each row: sort by row, then similarity down, then column.
        order = np.lexsort((j, -sim, i))
        i, j, sim = i[order], j[order], sim[order]
        row_start = np.searchsorted(i, np.arange(V))  # (V,)
        keep = np.arange(len(i)) - row_start[i] < k
        self.similarity_ = sp.csr_matrix(
            (sim[keep], (i[keep], j[keep])), shape=(V, V)
        )  # (V, V)
        self.support_ = support
        self._neighbor_scores = 1.0 + self.similarity_.data  # (nnz,) in (1, 2]
        self._fit_popularity(train)
        return self

    def score_next(self, state, items, reset):
        """Score the next click by similarity to the current one.

        Parameters
        ----------
        state : None
            Unused.
        items : numpy.ndarray
            ``(B,)`` int64 current click of every slot.
        reset : numpy.ndarray
            ``(B,)`` bool, true where a session starts (not needed: only the
            current click matters).

        Returns
        -------
        scores : numpy.ndarray
            ``(B, V)`` float64: ``1 + sim`` for the neighbours of the current
            click, the popularity tie-breaker for the other items.
        state : None
            Unused.
        """
        B = self._check_step(items, reset)
        scores = self._tiebreak_rows(B)  # (B, V)
        S = self.similarity_
        _scatter_rows(scores, S.indptr, S.indices, self._neighbor_scores, items, True)
        return scores, None


class Markov(_Baseline):
    """Recommend the items that followed the last click most often in training.

    A first-order Markov chain by counting: ``N[i, j]`` is the number of times a
    click on ``i`` was directly followed by a click on ``j`` in the same training
    session (a repeated click counts as a transition ``i -> i``). After a click
    on ``i``::

        score_j = N[i, j] + pop_j / (max_k pop_k + 1)

    so the successors of ``i`` come first, by count, then every other item by
    popularity; equal counts are ordered by popularity.

    Attributes
    ----------
    transitions_ : scipy.sparse.csr_matrix
        ``(V, V)`` float64 transition counts ``N``.
    popularity_ : numpy.ndarray
        ``(V,)`` int64 training clicks per item.
    tiebreak_ : numpy.ndarray
        ``(V,)`` float64 ``pop_i / (max pop + 1)``.

    Examples
    --------
    >>> import numpy as np
    >>> from rnnrec.data.sessions import Sessions
    >>> model = Markov().fit(Sessions.from_lists([[0, 1, 2], [0, 2], [2, 0]]))
    >>> scores, _ = model.score_next(None, np.array([0]), np.array([True]))
    >>> scores.tolist()
    [[0.75, 1.25, 1.75]]
    """

    def fit(self, train):
        """Count the transitions between consecutive clicks of training sessions.

        Parameters
        ----------
        train : Sessions
            Training sessions.

        Returns
        -------
        Markov
            self.
        """
        train = _check_sessions(train)
        V = train.n_items
        follows = ~_session_starts(train)[1:]  # (n_clicks - 1,) same session
        prev = train.items[:-1][follows]
        succ = train.items[1:][follows]
        N = sp.csr_matrix(
            (np.ones(len(prev)), (prev, succ)), shape=(V, V)
        )  # (V, V), duplicates summed
        N.sum_duplicates()
        self.transitions_ = N
        self._fit_popularity(train)
        return self

    def score_next(self, state, items, reset):
        """Score the next click by the transition counts from the current one.

        Parameters
        ----------
        state : None
            Unused.
        items : numpy.ndarray
            ``(B,)`` int64 current click of every slot.
        reset : numpy.ndarray
            ``(B,)`` bool, true where a session starts (not needed: only the
            current click matters).

        Returns
        -------
        scores : numpy.ndarray
            ``(B, V)`` float64 transition counts plus the popularity
            tie-breaker.
        state : None
            Unused.
        """
        B = self._check_step(items, reset)
        scores = self._tiebreak_rows(B)  # (B, V)
        N = self.transitions_
        _scatter_rows(scores, N.indptr, N.indices, N.data, items, False)
        return scores, None

"""A synthetic session data set with known sequential structure.

The built-in default data: small enough to train a model on in seconds, and
built so that the order of clicks matters much more than item popularity.

The process, all of it drawn from one seeded generator:

1. **Item graphs.** There are ``n_intents`` latent session intents (a
   shopper looking for shoes, another for a gift). Under each intent, every
   item ``i`` gets ``out_degree`` successors, drawn uniformly at random from
   all items (with replacement, so an occasional duplicate or self-loop
   occurs, as repeated clicks do in real logs). The k-th successor (k = 1, 2,
   ...) has weight ``k ** -edge_skew``, normalised over the successors: a few
   likely next items and a tail of less likely ones.
2. **Popularity.** Items get Zipf popularity ``p(i) ∝ rank(i) ** -zipf``,
   with ranks a random permutation (popularity is unrelated to the index).
3. **Sessions.** A session draws an intent uniformly, starts at an item drawn
   from the popularity and has ``1 + Geometric(1 / (mean_length - 1))``
   clicks: at least 2, mean ``mean_length``. Each next click follows an edge
   of the current item under the session's intent, by its weight, or, with
   probability ``teleport``, jumps to an item drawn from the popularity.

Popularity only catches starts and jumps: with the defaults, the 20 most
popular items reach a Recall@20 near 0.13. A first-order Markov predictor sees
the last click but not the intent, so it ranks the successors of all eight
intents at once (Recall@20 0.79, MRR@20 0.24); a sequence model can infer the
intent from the session's earlier clicks and beat it (a GRU trained by
``rnnrec train`` reaches about 0.80 and 0.32). With ``n_intents=1`` the process
is a Markov chain, and transition counts are close to the best possible
predictor.

Train and test sessions come from the same process (test sessions are drawn
after the train ones) and share the item index ``arange(n_items)``; an item
can be missing from train when it is rare, but that is unlikely at the
default sizes.
"""

from __future__ import annotations

import numbers

import numpy as np

from rnnrec._validation import as_rng, check_positive_int
from rnnrec.data.sessions import Sessions

__all__ = ["make_synthetic"]


def _check_real(value, name, low, high, *, low_open=False, high_open=False):
    """Return ``value`` as a float after checking it lies in the given range."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {value!r}")
    value = float(value)
    too_low = value <= low if low_open else value < low
    too_high = value >= high if high_open else value > high
    if too_low or too_high or not np.isfinite(value):
        left = "(" if low_open else "["
        right = ")" if high_open else "]"
        raise ValueError(f"{name} must be in {left}{low}, {high}{right}, got {value}")
    return value


def make_synthetic(
    n_items=300,
    n_train_sessions=20000,
    n_test_sessions=2000,
    *,
    mean_length=8.0,
    out_degree=4,
    edge_skew=1.0,
    teleport=0.1,
    zipf=1.0,
    n_intents=8,
    seed=0,
):
    """Draw train and test sessions from a random walk on a random item graph.

    The process is described in the module docstring. Equal arguments give
    equal data.

    Parameters
    ----------
    n_items : int, default 300
        Number of items V.
    n_train_sessions, n_test_sessions : int, default 20000 and 2000
        Number of sessions in each set.
    mean_length : float, default 8.0
        Mean session length, >= 2 (every session has at least 2 clicks).
    out_degree : int, default 4
        Successors per item.
    edge_skew : float, default 1.0
        Exponent of the successor weights ``k ** -edge_skew``; 0 makes them
        equal.
    teleport : float, default 0.1
        Probability that a click jumps to a popular item instead of following
        an edge, in [0, 1].
    zipf : float, default 1.0
        Exponent of the item popularity, >= 0.
    n_intents : int, default 8
        Number of latent session intents, each with its own successors; 1 makes
        the process a plain Markov chain.
    seed : None, int or numpy.random.Generator, default 0
        Seed of everything.

    Returns
    -------
    tuple of Sessions
        ``(train, test)`` with ``item_ids = arange(n_items)`` and session ids
        numbered across both sets; no times.

    Examples
    --------
    >>> train, test = make_synthetic(n_items=50, n_train_sessions=100,
    ...                              n_test_sessions=10)
    >>> train.n_sessions, test.n_sessions, train.n_items
    (100, 10, 50)
    """
    n_items = check_positive_int(n_items, "n_items")
    n_train = check_positive_int(n_train_sessions, "n_train_sessions")
    n_test = check_positive_int(n_test_sessions, "n_test_sessions")
    out_degree = check_positive_int(out_degree, "out_degree")
    mean_length = _check_real(mean_length, "mean_length", 2.0, np.inf, high_open=True)
    edge_skew = _check_real(edge_skew, "edge_skew", 0.0, np.inf, high_open=True)
    teleport = _check_real(teleport, "teleport", 0.0, 1.0)
    zipf = _check_real(zipf, "zipf", 0.0, np.inf, high_open=True)
    n_intents = check_positive_int(n_intents, "n_intents")
    rng = as_rng(seed)

    # The graphs, one per intent: successors and the cumulative weights of
    # picking each.
    successors = rng.integers(0, n_items, size=(n_intents, n_items, out_degree))
    weights = np.arange(1, out_degree + 1, dtype=np.float64) ** -edge_skew  # (K,)
    cumulative = np.cumsum(weights / weights.sum())  # (K,)
    cumulative[-1] = 1.0

    # Zipf popularity over a random ranking of the items.
    rank = rng.permutation(n_items) + 1  # (V,)
    popularity = rank.astype(np.float64) ** -zipf  # (V,)
    popularity /= popularity.sum()

    n = n_train + n_test
    lengths = 1 + rng.geometric(1.0 / (mean_length - 1.0), size=n)  # (n,)
    walks = np.full((n, int(lengths.max())), -1, dtype=np.int64)  # (n, L_max)
    walks[:, 0] = rng.choice(n_items, size=n, p=popularity)
    intents = rng.integers(0, n_intents, size=n)  # (n,)
    for t in range(1, walks.shape[1]):
        alive = np.flatnonzero(lengths > t)  # (n_alive,)
        current = walks[alive, t - 1]  # (n_alive,)
        edge = np.searchsorted(cumulative, rng.random(len(alive)), side="right")
        edge = np.minimum(edge, out_degree - 1)
        step = successors[intents[alive], current, edge]  # (n_alive,)
        jump = rng.random(len(alive)) < teleport  # (n_alive,)
        step[jump] = rng.choice(n_items, size=int(jump.sum()), p=popularity)
        walks[alive, t] = step

    item_ids = np.arange(n_items, dtype=np.int64)  # (V,)
    session_ids = np.arange(n, dtype=np.int64)  # (n,)
    parts = []
    for rows in (slice(0, n_train), slice(n_train, n)):
        part_lengths = lengths[rows]
        offsets = np.zeros(len(part_lengths) + 1, dtype=np.int64)
        np.cumsum(part_lengths, out=offsets[1:])
        block = walks[rows]
        parts.append(
            Sessions(
                items=block[block >= 0],  # row by row: sessions stay contiguous
                offsets=offsets,
                item_ids=item_ids,
                session_ids=session_ids[rows],
            )
        )
    return parts[0], parts[1]

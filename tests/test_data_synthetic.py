"""The synthetic data set: determinism, shape, and order mattering more than popularity.

The predictors are inline: transition counts (first-order Markov) and the
most clicked training items, both scored by Recall@20 on the test pairs.
"""

import numpy as np
import pytest

from rnnrec.data import Sessions, make_synthetic, n_pairs


def pairs(sessions):
    """Return the (input, target) item arrays of every pair."""
    has_next = np.ones(sessions.n_clicks, dtype=bool)
    has_next[sessions.offsets[1:] - 1] = False
    where = np.flatnonzero(has_next)
    return sessions.items[where], sessions.items[where + 1]


def recall_at_20(train, test):
    """Return Recall@20 of (Markov counts, popularity) on the test pairs."""
    V = train.n_items
    popularity = np.bincount(train.items, minlength=V).astype(float)
    counts = np.zeros((V, V))
    np.add.at(counts, pairs(train), 1.0)
    inputs, targets = pairs(test)
    # Ties in the counts are broken by popularity (a tiny bonus), then
    # pessimistically: an item scoring as much as the target ranks above it.
    scores = counts[inputs] + 1e-6 * popularity / popularity.max()
    target_score = scores[np.arange(len(targets)), targets]
    rank = (scores >= target_score[:, None]).sum(axis=1) - 1
    top = np.argsort(-popularity, kind="stable")[:20]
    return float(np.mean(rank < 20)), float(np.mean(np.isin(targets, top)))


def test_default_sizes_and_format():
    train, test = make_synthetic()
    assert isinstance(train, Sessions) and isinstance(test, Sessions)
    assert (train.n_sessions, test.n_sessions) == (20_000, 2_000)
    assert train.item_ids is test.item_ids
    np.testing.assert_array_equal(train.item_ids, np.arange(300))
    assert train.lengths.min() >= 2 and test.lengths.min() >= 2
    assert train.lengths.mean() == pytest.approx(8.0, abs=0.15)
    assert 0 <= train.items.min() and train.items.max() < 300
    assert len(np.unique(train.items)) > 290  # nearly every item is seen
    assert train.session_ids.tolist() == list(range(20_000))
    assert test.session_ids[0] == 20_000
    assert n_pairs(train) == train.n_clicks - 20_000


def test_deterministic_under_a_seed():
    a = make_synthetic(n_items=200, n_train_sessions=500, n_test_sessions=50, seed=3)
    b = make_synthetic(n_items=200, n_train_sessions=500, n_test_sessions=50, seed=3)
    c = make_synthetic(n_items=200, n_train_sessions=500, n_test_sessions=50, seed=4)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.items, y.items)
        np.testing.assert_array_equal(x.offsets, y.offsets)
    assert not np.array_equal(a[0].items[:100], c[0].items[:100])
    rng = np.random.default_rng(3)
    d = make_synthetic(n_items=200, n_train_sessions=500, n_test_sessions=50, seed=rng)
    np.testing.assert_array_equal(a[0].items, d[0].items)


def test_order_matters_more_than_popularity():
    markov, popularity = recall_at_20(*make_synthetic())
    assert popularity < 0.15
    assert markov > 5 * popularity
    chain_markov, _ = recall_at_20(*make_synthetic(n_items=1000, n_intents=1))
    assert chain_markov > 0.85  # a plain Markov chain: transition counts suffice


def test_intents_make_earlier_clicks_matter():
    # Counting transitions from the last two clicks recovers part of the hidden
    # intent: it beats counting from the last click alone by a wide margin.
    first, second = first_and_second_order_recall_at_20(*make_synthetic())
    assert second > first + 0.05


def first_and_second_order_recall_at_20(train, test):
    """Recall@20 of last-click and last-two-clicks counts, from the third click."""
    V = train.n_items
    counts1, counts2 = np.zeros((V, V)), {}
    for s in range(train.n_sessions):
        items = train.session(s).tolist()
        for t in range(1, len(items)):
            counts1[items[t - 1], items[t]] += 1
            if t >= 2:
                row = counts2.setdefault((items[t - 2], items[t - 1]), np.zeros(V))
                row[items[t]] += 1
    ties = 1e-9 * np.arange(V)[::-1]  # deterministic tie-breaking
    hits1 = hits2 = total = 0
    for s in range(test.n_sessions):
        items = test.session(s).tolist()
        for t in range(2, len(items)):
            first = counts1[items[t - 1]] + ties
            row = counts2.get((items[t - 2], items[t - 1]))
            second = first + (1e3 * row if row is not None else 0)
            hits1 += int((first > first[items[t]]).sum()) < 20
            hits2 += int((second > second[items[t]]).sum()) < 20
            total += 1
    return hits1 / total, hits2 / total


def test_without_structure_markov_gains_nothing():
    # With every click a jump to a popular item, the next item is independent
    # of the current one: transition counts are no better than popularity.
    train, test = make_synthetic(
        n_items=1000, n_train_sessions=5000, teleport=1.0, seed=1
    )
    markov, popularity = recall_at_20(train, test)
    assert popularity > 0.3  # Zipf(1) over 1000 items: the top 20 hold ~48%
    assert markov < popularity + 0.02


def test_options_change_the_process():
    short, _ = make_synthetic(n_items=50, n_train_sessions=2000, mean_length=2.0)
    assert np.all(short.lengths == 2)
    chain, _ = make_synthetic(
        n_items=50, n_train_sessions=300, out_degree=1, teleport=0, n_intents=1
    )
    # Out-degree 1 and no jumps: each item has exactly one successor.
    inputs, targets = pairs(chain)
    successors = {}
    for i, j in zip(inputs.tolist(), targets.tolist(), strict=True):
        assert successors.setdefault(i, j) == j


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"n_items": 0}, ValueError, "n_items must be a positive integer, got 0"),
        ({"mean_length": 1.5}, ValueError, r"mean_length must be in \[2.0, inf\)"),
        ({"teleport": 1.5}, ValueError, r"teleport must be in \[0.0, 1.0\], got 1.5"),
        ({"zipf": "1"}, TypeError, "zipf must be a number, got '1'"),
        ({"out_degree": 2.0}, TypeError, "out_degree must be a positive integer"),
        ({"seed": -1}, ValueError, "seed must be a non-negative integer"),
    ],
)
def test_argument_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        make_synthetic(
            **{"n_items": 10, "n_train_sessions": 5, "n_test_sessions": 5, **kwargs}
        )

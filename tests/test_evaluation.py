"""The session-parallel evaluation loop: each prediction once, with the right state.

An oracle scorer rebuilds each slot's session from ``reset`` and ``carry_state``
alone and looks the true next click up by prefix: recall@1 is 1 only if the loop
feeds the clicks in order, resets at session starts and carries the right slots.
It also records every prefix it scores, so each prediction is seen to be made
exactly once. A one-session-at-a-time loop is the reference for real scorers.
"""

import re
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnrec.baselines import ItemKNN, Markov, Popularity, SessionPopularity
from rnnrec.data.sessions import Sessions
from rnnrec.evaluation import evaluate_next_click
from rnnrec.metrics import MetricAccumulator, target_ranks


class PrefixOracle:
    """Gives the true next click of the session so far the top score, 1."""

    def __init__(self, sessions, n_items):
        self.n_items = n_items
        self.next_click = {}
        for s in sessions:
            for t in range(1, len(s)):
                self.next_click[tuple(s[:t])] = s[t]
        self.seen = Counter()
        self.carries = 0

    def init_state(self, batch_size):
        return [()] * batch_size

    def carry_state(self, state, carry):
        assert carry.dtype == np.int64 and len(carry) < len(state)
        self.carries += 1
        return [state[c] for c in carry]

    def score_next(self, state, items, reset):
        assert items.dtype == np.int64 and reset.dtype == np.bool_
        assert len(items) == len(reset) == len(state)
        scores = np.zeros((len(items), self.n_items))  # (B, V)
        new_state = []
        for b, (item, r) in enumerate(zip(items.tolist(), reset.tolist(), strict=True)):
            prefix = (() if r else state[b]) + (item,)
            self.seen[prefix] += 1
            scores[b, self.next_click[prefix]] = 1.0
            new_state.append(prefix)
        return scores, new_state


class Constant:
    """Scores every item 0: every target ties with all items."""

    def __init__(self, n_items):
        self.n_items = n_items

    def init_state(self, batch_size):
        return None

    def carry_state(self, state, carry):
        return None

    def score_next(self, state, items, reset):
        return np.zeros((len(items), self.n_items)), None


def expected_prefixes(sessions):
    return Counter(tuple(s[:t]) for s in sessions for t in range(1, len(s)))


def one_session_at_a_time(scorer, sessions, cutoffs, ties):
    """Reference: run each session alone in a batch of one."""
    acc = MetricAccumulator(cutoffs)
    for s in sessions:
        state = scorer.init_state(1)
        for t in range(len(s) - 1):
            scores, state = scorer.score_next(
                state, np.array([s[t]]), np.array([t == 0])
            )
            acc.add(target_ranks(scores, np.array([s[t + 1]]), ties))
    return acc.result()


@st.composite
def unique_prefix_sessions(draw):
    """Sessions whose first items differ, so every prefix has one next click."""
    n = draw(st.integers(0, 12))
    tails = draw(
        st.lists(st.lists(st.integers(0, 5), max_size=7), min_size=n, max_size=n)
    )
    return [[100 + k, *tail] for k, tail in enumerate(tails)]


@settings(max_examples=60, deadline=None)
@given(unique_prefix_sessions(), st.integers(1, 6))
def test_oracle_gets_every_prediction_once_and_right(sessions, batch_size):
    test = Sessions.from_lists(sessions, item_ids=np.arange(120))
    oracle = PrefixOracle(sessions, 120)
    result = evaluate_next_click(oracle, test, cutoffs=(1, 3), batch_size=batch_size)
    expected = expected_prefixes(sessions)
    assert oracle.seen == expected
    assert result["n"] == sum(expected.values())
    if result["n"]:
        assert result["recall@1"] == result["mrr@1"] == result["ndcg@1"] == 1.0


def test_slots_shrink_through_carry_state():
    sessions = [[100, 1, 2, 3, 4, 5], [101, 1], [102, 2], [103, 3, 3]]
    oracle = PrefixOracle(sessions, 104)
    test = Sessions.from_lists(sessions, item_ids=np.arange(104))
    result = evaluate_next_click(oracle, test, cutoffs=1, batch_size=3)
    assert result["n"] == 5 + 1 + 1 + 2 and result["recall@1"] == 1.0
    assert oracle.carries >= 1
    assert oracle.seen == expected_prefixes(sessions)


@pytest.mark.parametrize(
    "ties, rank", [("standard", 1.0), ("conservative", 7.0), ("median", 4.0)]
)
def test_constant_scorer_ranks_by_tie_mode(ties, rank):
    test = Sessions.from_lists([[0, 1, 2], [3, 4], [5]], item_ids=np.arange(7))
    result = evaluate_next_click(Constant(7), test, cutoffs=(1, 4, 7), ties=ties)
    assert result["n"] == 3
    for k in (1, 4, 7):
        assert result[f"recall@{k}"] == float(rank <= k)
        assert result[f"mrr@{k}"] == pytest.approx(1 / rank if rank <= k else 0.0)


@pytest.mark.parametrize("cls", [Popularity, SessionPopularity, ItemKNN, Markov])
@pytest.mark.parametrize("ties", ["standard", "median"])
def test_baselines_match_the_one_session_reference(cls, ties):
    rng = np.random.default_rng(11)

    def draw_sessions(n):
        return [rng.integers(0, 15, size=rng.integers(0, 9)).tolist() for _ in range(n)]

    train = Sessions.from_lists(draw_sessions(60), item_ids=np.arange(15))
    test_lists = draw_sessions(25)
    test = Sessions.from_lists(test_lists, item_ids=np.arange(15))
    scorer = cls().fit(train)
    expected = one_session_at_a_time(scorer, test_lists, (1, 5), ties)
    for batch_size in (1, 4, 256):
        result = evaluate_next_click(
            scorer, test, cutoffs=(1, 5), ties=ties, batch_size=batch_size
        )
        assert result == pytest.approx(expected)


def test_no_predictions():
    test = Sessions.from_lists([[1], [], [2]], item_ids=np.arange(3))
    result = evaluate_next_click(Constant(3), test, cutoffs=5)
    assert result["n"] == 0 and np.isnan(result["recall@5"])


def test_unknown_items_are_refused():
    test = Sessions.from_lists([[0, 1, 5], [6, 1]])
    with pytest.raises(ValueError, match="test has 2 click.* n_items=4; remove"):
        evaluate_next_click(Constant(4), test)


def test_scores_of_the_wrong_shape_are_refused():
    class Short(Constant):
        def score_next(self, state, items, reset):
            return np.zeros((len(items), self.n_items - 1)), None

    test = Sessions.from_lists([[0, 1]], item_ids=np.arange(3))
    with pytest.raises(ValueError, match=re.escape("shape (1, 3), got (1, 2)")):
        evaluate_next_click(Short(3), test)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"ties": "best"}, ValueError, "ties must be one of"),
        ({"batch_size": 0}, ValueError, "batch_size must be a positive integer"),
        ({"cutoffs": (0,)}, ValueError, "cutoffs must be positive ints"),
    ],
)
def test_bad_arguments(kwargs, error, message):
    test = Sessions.from_lists([[0, 1]])
    with pytest.raises(error, match=re.escape(message)):
        evaluate_next_click(Constant(2), test, **kwargs)


def test_test_must_be_sessions():
    with pytest.raises(TypeError, match="test must be a rnnrec.data.sessions.Sessions"):
        evaluate_next_click(Constant(2), [[0, 1]])

"""The next-click baselines on tiny hand-made sessions, state handling and checks.

Scores are computed by hand for a few sessions; ItemKNN and Markov are also held
against slow references built from Python sets and dicts; the scorers' state is
checked through resets, carries and sessions longer than the initial buffer.
"""

import math
import re

import numpy as np
import pytest

from rnnrec.baselines import (
    ItemKNN,
    Markov,
    Popularity,
    SessionClicks,
    SessionPopularity,
)
from rnnrec.data.sessions import Sessions
from rnnrec.metrics import target_ranks

ALL = [Popularity, SessionPopularity, ItemKNN, Markov]

# Five items, popularity [3, 4, 2, 1, 0]: item 4 is in the index but never clicked.
TRAIN = Sessions.from_lists(
    [[0, 1, 1], [1, 2, 0], [0, 1], [3, 2]], item_ids=np.arange(5)
)
POP = np.array([3, 4, 2, 1, 0])
TB = POP / 5.0  # pop / (max pop + 1)


def step(model, state, items, reset):
    return model.score_next(
        state, np.asarray(items, dtype=np.int64), np.asarray(reset, dtype=bool)
    )


# -- Popularity ------------------------------------------------------------------------


def test_popularity_scores_are_training_counts():
    model = Popularity().fit(TRAIN)
    assert model.n_items == 5
    scores, state = step(model, model.init_state(2), [3, 4], [True, False])
    assert state is None
    assert scores.dtype == np.float64 and scores.shape == (2, 5)
    assert np.array_equal(scores, [POP, POP])


# -- SessionPopularity -----------------------------------------------------------------


def test_session_popularity_by_hand():
    model = SessionPopularity().fit(TRAIN)
    state = model.init_state(2)
    # Slot 0: session [2, 3, 2]; slot 1: session [4] then a new session [0].
    scores, state = step(model, state, [2, 4], [True, True])
    assert np.allclose(scores[0], TB + [0, 0, 1, 0, 0])
    assert np.allclose(scores[1], TB + [0, 0, 0, 0, 1])
    scores, state = step(model, state, [3, 0], [False, True])
    assert np.allclose(scores[0], TB + [0, 0, 1, 1, 0])
    assert np.allclose(scores[1], TB + [1, 0, 0, 0, 0])  # item 4 forgotten
    scores, state = step(model, state, [2, 1], [False, False])
    assert np.allclose(scores[0], TB + [0, 0, 2, 1, 0])
    assert np.allclose(scores[1], TB + [1, 1, 0, 0, 0])
    # Ranking of slot 0: item 2 (twice), then 3 (once), then the others by
    # popularity: 1, 0, 4.
    assert np.argsort(-scores[0], kind="stable").tolist() == [2, 3, 1, 0, 4]
    assert state.lengths.tolist() == [3, 2]


def test_session_popularity_ties_broken_by_popularity():
    model = SessionPopularity().fit(TRAIN)
    scores, _ = step(model, model.init_state(1), [4], [True])
    # The clicked item first, then popularity; the tie-breaker never lifts an
    # unclicked item above a clicked one.
    assert np.argsort(-scores[0], kind="stable").tolist() == [4, 1, 0, 2, 3]
    assert target_ranks(scores, np.array([4])).tolist() == [1.0]


def test_session_popularity_carry_keeps_the_right_sessions():
    model = SessionPopularity().fit(TRAIN)
    state = model.init_state(3)
    _, state = step(model, state, [0, 1, 2], [True, True, True])
    _, state = step(model, state, [0, 1, 2], [False, False, False])
    state = model.carry_state(state, np.array([2, 0]))
    assert isinstance(state, SessionClicks)
    scores, state = step(model, state, [3, 3], [False, False])
    assert np.allclose(scores[0], TB + [0, 0, 2, 1, 0])  # old slot 2
    assert np.allclose(scores[1], TB + [2, 0, 0, 1, 0])  # old slot 0


def test_session_popularity_long_sessions_grow_the_buffer():
    model = SessionPopularity().fit(TRAIN)
    state = model.init_state(2)
    clicks = np.random.default_rng(0).integers(0, 5, size=(40, 2))  # (T, B)
    for t in range(40):
        scores, state = step(model, state, clicks[t], [t == 0, t == 0])
    assert state.clicks.shape[1] >= 40
    for b in range(2):
        counts = np.bincount(clicks[:, b], minlength=5)
        assert np.allclose(scores[b], counts + TB)


def test_session_popularity_does_not_modify_the_state_it_is_given():
    model = SessionPopularity().fit(TRAIN)
    _, state = step(model, model.init_state(2), [1, 2], [True, True])
    before = (state.clicks.copy(), state.lengths.copy())
    step(model, state, [3, 3], [False, True])
    assert np.array_equal(state.clicks, before[0])
    assert np.array_equal(state.lengths, before[1])


# -- ItemKNN ---------------------------------------------------------------------------


def loop_similarity(sessions, V, shrinkage, alpha):
    """Slow reference: the similarity formula over Python sets."""
    holders = [{s for s, sess in enumerate(sessions) if i in sess} for i in range(V)]
    sim = np.zeros((V, V))
    for i in range(V):
        for j in range(V):
            common = len(holders[i] & holders[j])
            if i != j and common:
                n_i, n_j = len(holders[i]), len(holders[j])
                sim[i, j] = common / (
                    (n_i + shrinkage) ** alpha * (n_j + shrinkage) ** (1 - alpha)
                )
    return sim


def test_item_knn_cosine_by_hand():
    # Sessions holding each item: 0 in {0, 1, 2}, 1 in {0, 1, 2}, 2 in {1, 3},
    # 3 in {3}. Item 1 is clicked twice in session 0 but counts once.
    model = ItemKNN(shrinkage=0.0).fit(TRAIN)
    assert model.support_.tolist() == [3, 3, 2, 1, 0]
    sim = model.similarity_.toarray()
    assert sim[0, 1] == pytest.approx(3 / 3)
    assert sim[0, 2] == pytest.approx(1 / math.sqrt(6))
    assert sim[2, 3] == pytest.approx(1 / math.sqrt(2))
    assert sim[0, 3] == 0.0 and np.all(np.diag(sim) == 0.0)
    assert np.allclose(sim, sim.T)


def test_item_knn_shrinkage_and_alpha_by_hand():
    model = ItemKNN(shrinkage=2.0, alpha=0.25).fit(TRAIN)
    sim = model.similarity_.toarray()
    # sim(2, 3) = 1 / ((2 + 2)^0.25 (1 + 2)^0.75), and the reverse swaps them.
    assert sim[2, 3] == pytest.approx(1 / (4**0.25 * 3**0.75))
    assert sim[3, 2] == pytest.approx(1 / (3**0.25 * 4**0.75))


@pytest.mark.parametrize("shrinkage, alpha", [(0.0, 0.5), (20.0, 0.5), (1.5, 0.8)])
def test_item_knn_matches_loop_reference(shrinkage, alpha):
    rng = np.random.default_rng(3)
    sessions = [
        rng.integers(0, 12, size=rng.integers(1, 7)).tolist() for _ in range(30)
    ]
    train = Sessions.from_lists(sessions, item_ids=np.arange(12))
    model = ItemKNN(n_neighbors=12, shrinkage=shrinkage, alpha=alpha).fit(train)
    expected = loop_similarity([set(s) for s in sessions], 12, shrinkage, alpha)
    assert np.allclose(model.similarity_.toarray(), expected, rtol=1e-12, atol=0)


def test_item_knn_keeps_the_top_neighbours_ties_by_index():
    # Item 0 co-occurs with 1..4: twice with 3, once with each of 1, 2, 4.
    sessions = [[0, 3], [0, 3], [0, 1], [0, 2], [0, 4], [1, 2, 4]]
    model = ItemKNN(n_neighbors=2, shrinkage=0.0).fit(Sessions.from_lists(sessions))
    row = model.similarity_[[0]]
    assert sorted(row.indices.tolist()) == [1, 3]  # 3 first, then 1 of the tie
    assert np.diff(model.similarity_.indptr).max() <= 2


def test_item_knn_scores_neighbours_first_then_popularity():
    model = ItemKNN(shrinkage=0.0).fit(TRAIN)
    scores, state = step(model, None, [2, 4], [True, False])
    assert state is None
    sim = model.similarity_.toarray()
    # Neighbours of 2 are 0, 1, 3; item 2 itself falls back to popularity.
    assert np.allclose(
        scores[0], [1 + sim[2, 0], 1 + sim[2, 1], TB[2], 1 + sim[2, 3], 0]
    )
    # Item 4 has no neighbours: pure popularity order.
    assert np.allclose(scores[1], TB)
    assert np.argsort(-scores[0], kind="stable").tolist() == [3, 0, 1, 2, 4]


# -- Markov ----------------------------------------------------------------------------


def test_markov_transition_counts_by_hand():
    model = Markov().fit(TRAIN)
    N = model.transitions_.toarray()
    expected = np.zeros((5, 5))
    # 0->1, 1->1 (repeat), 1->2, 2->0, 0->1, 3->2; none across sessions (1 | 1).
    for i, j in [(0, 1), (1, 1), (1, 2), (2, 0), (0, 1), (3, 2)]:
        expected[i, j] += 1
    assert np.array_equal(N, expected)


def test_markov_scores_by_hand():
    model = Markov().fit(TRAIN)
    scores, state = step(model, None, [1, 0, 4], [True, False, False])
    assert state is None
    assert np.allclose(scores[0], TB + [0, 1, 1, 0, 0])
    assert np.allclose(scores[1], TB + [0, 2, 0, 0, 0])
    assert np.allclose(scores[2], TB)
    # After 1: items 1 and 2 both followed once; 1 is more popular.
    assert np.argsort(-scores[0], kind="stable").tolist() == [1, 2, 0, 3, 4]


def test_markov_matches_dict_reference():
    rng = np.random.default_rng(7)
    sessions = [rng.integers(0, 9, size=rng.integers(1, 8)).tolist() for _ in range(40)]
    train = Sessions.from_lists(sessions, item_ids=np.arange(9))
    counts = {}
    for s in sessions:
        for a, b in zip(s[:-1], s[1:], strict=True):
            counts[a, b] = counts.get((a, b), 0) + 1
    N = Markov().fit(train).transitions_
    assert {(int(i), int(j)): v for (i, j), v in N.todok().items()} == counts


def test_markov_ranks_a_deterministic_chain_first():
    # Many sessions walking 0 -> 1 -> ... -> 19 from random starts, plus noise
    # sessions of random items: the chain's next item must still rank first.
    rng = np.random.default_rng(0)
    chains = [list(range(a, rng.integers(a + 2, 21))) for a in rng.integers(0, 18, 200)]
    noise = [rng.integers(0, 20, size=3).tolist() for _ in range(50)]
    train = Sessions.from_lists(chains + noise, item_ids=np.arange(20))
    model = Markov().fit(train)
    items = np.arange(19)
    scores, _ = model.score_next(None, items, np.ones(19, dtype=bool))
    for ties in ("standard", "conservative"):
        assert target_ranks(scores, items + 1, ties).tolist() == [1.0] * 19


# -- the scorer interface, shared ------------------------------------------------------


@pytest.mark.parametrize("cls", ALL)
def test_fit_returns_self_and_scores_every_item(cls):
    model = cls()
    assert model.fit(TRAIN) is model
    assert model.n_items == 5
    state = model.init_state(3)
    scores, state = step(model, state, [0, 2, 4], [True, True, True])
    assert scores.shape == (3, 5) and scores.dtype == np.float64
    assert np.isfinite(scores).all()
    state = model.carry_state(state, np.array([1], dtype=np.int64))
    scores, state = step(model, state, [3], [False])
    assert scores.shape == (1, 5)


@pytest.mark.parametrize("cls", [Popularity, ItemKNN, Markov])
def test_memoryless_scorers_depend_on_the_current_click_only(cls):
    model = cls().fit(TRAIN)
    a, _ = step(model, model.init_state(3), [2, 2, 1], [True, False, True])
    state = model.carry_state(model.init_state(3), np.array([0, 0, 2]))
    b, _ = step(model, state, [2, 2, 1], [False, True, False])
    assert np.array_equal(a, b)
    assert np.array_equal(a[0], a[1])


@pytest.mark.parametrize("cls", ALL)
def test_not_fitted(cls):
    model = cls()
    with pytest.raises(RuntimeError, match=f"this {cls.__name__} is not fitted yet"):
        model.n_items  # noqa: B018
    with pytest.raises(RuntimeError, match="call fit"):
        model.score_next(model.init_state(1), np.array([0]), np.array([True]))


@pytest.mark.parametrize("cls", ALL)
def test_fit_needs_sessions(cls):
    with pytest.raises(
        TypeError, match="train must be a rnnrec.data.sessions.Sessions"
    ):
        cls().fit([[0, 1], [1, 2]])


@pytest.mark.parametrize("cls", ALL)
@pytest.mark.parametrize(
    "items, reset, error, message",
    [
        ([0, 1], np.array([True, True]), TypeError, "items must be a 1-D numpy"),
        (np.array([0.0, 1.0]), np.array([True, True]), TypeError, "integer dtype"),
        (np.array([0, 5]), np.array([True, True]), ValueError, "in [0, 5), got"),
        (np.array([-1, 0]), np.array([True, True]), ValueError, "from -1 to 0"),
        (np.array([0, 1]), np.array([1, 1]), TypeError, "reset must have dtype bool"),
        (
            np.array([0, 1]),
            np.array([True]),
            ValueError,
            "reset must have shape (2,), got (1,)",
        ),
    ],
)
def test_bad_step_input(cls, items, reset, error, message):
    model = cls().fit(TRAIN)
    with pytest.raises(error, match=re.escape(message)):
        model.score_next(model.init_state(2), items, reset)


def test_session_popularity_checks_state_and_carry():
    model = SessionPopularity().fit(TRAIN)
    state = model.init_state(2)
    with pytest.raises(ValueError, match=re.escape("one click per slot of the state")):
        step(model, state, [0, 1, 2], [True, True, True])
    with pytest.raises(TypeError, match="state must be the SessionClicks"):
        step(model, None, [0, 1], [True, True])
    with pytest.raises(ValueError, match=re.escape("old slot numbers in [0, 2)")):
        model.carry_state(state, np.array([0, 2]))
    with pytest.raises(TypeError, match="carry must be a 1-D numpy integer"):
        model.carry_state(state, [0])


@pytest.mark.parametrize("cls", ALL)
def test_init_state_needs_a_positive_batch_size(cls):
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        cls().fit(TRAIN).init_state(0)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"n_neighbors": 0}, ValueError, "n_neighbors must be a positive integer"),
        ({"n_neighbors": 2.5}, TypeError, "n_neighbors must be a positive integer"),
        ({"shrinkage": -1.0}, ValueError, "shrinkage must be >= 0.0, got -1.0"),
        ({"shrinkage": "big"}, TypeError, "shrinkage must be a real number"),
        ({"alpha": 1.5}, ValueError, "alpha must be in [0.0, 1.0], got 1.5"),
        ({"alpha": math.nan}, ValueError, "alpha must be in [0.0, 1.0], got nan"),
    ],
)
def test_item_knn_parameters_are_checked_in_fit(kwargs, error, message):
    model = ItemKNN(**kwargs)  # the constructor only stores
    with pytest.raises(error, match=re.escape(message)):
        model.fit(TRAIN)


def test_empty_training_data():
    train = Sessions.from_lists([[]], item_ids=np.arange(3))
    for cls in ALL:
        model = cls().fit(train)
        scores, _ = step(model, model.init_state(1), [1], [True])
        assert scores.shape == (1, 3) and np.isfinite(scores).all()

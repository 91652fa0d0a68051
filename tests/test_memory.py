"""A catalogue of a million items in float32: recommend and evaluate in bounded memory.

Peak memory is measured with `tracemalloc`, which sees NumPy's allocations. The
bounds: `recommend` scores ``SCORE_BLOCK`` = 65,536 items at a time, so that it
allocates well under 2 MiB whatever the catalogue (a full row of scores alone
would take 4 MB, and selecting its top k as much again, twice); the evaluation
lowers its number of slots so that one step's ``(B, V)`` scores fit in
``max_score_bytes``.
"""

import tracemalloc

import numpy as np
import pytest

from rnnrec.data import Sessions
from rnnrec.evaluation import evaluate_next_click
from rnnrec.model import SessionRecommender
from rnnrec.model.ranking import SCORE_BLOCK

V = 1_000_000
MiB = 2**20


@pytest.fixture(scope="module")
def million():
    rng = np.random.default_rng(0)
    lists = [rng.integers(0, V, size=4).tolist() for _ in range(12)]
    train = Sessions.from_lists(lists[:6], item_ids=np.arange(V))
    test = Sessions.from_lists(lists[6:], item_ids=np.arange(V))
    model = SessionRecommender(
        layers=(8,), embedding="tied", n_sample=16, batch_size=2, n_epochs=1, seed=0
    ).fit(train)
    assert model.W_y_.dtype == np.float32 and model.n_items == V
    return model, test


def peak_bytes(run):
    tracemalloc.start()
    try:
        result = run()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_recommend_stays_within_two_mib(million):
    model, _ = million
    session = [12, 999_999, 500_000]
    model.recommend(session, k=2)  # builds the id lookup, once per model
    (items, scores), peak = peak_bytes(lambda: model.recommend(session, k=50))
    assert peak < 2 * MiB, f"recommend allocated {peak / MiB:.2f} MiB"
    assert SCORE_BLOCK * 4 * 3 < 2 * MiB

    # The same list as scoring every item at once.
    state = model.init_state(1)
    for item in session:
        all_scores, state = model.score_next(
            state, np.array([item]), np.zeros(1, dtype=bool)
        )
    best = np.argsort(-all_scores[0], kind="stable")[:50]
    np.testing.assert_array_equal(items, model.item_ids_[best])
    np.testing.assert_array_equal(scores, all_scores[0][best])

    seen, _ = model.recommend(session, k=50, exclude_seen=True)
    assert not set(seen.tolist()) & set(session)


def test_evaluation_stays_within_max_score_bytes(million):
    model, test = million
    limit = 8 * MiB  # two slots of a million float32 scores
    small, peak = peak_bytes(
        lambda: evaluate_next_click(model, test, cutoffs=(20,), max_score_bytes=limit)
    )
    assert peak < limit + MiB, f"the evaluation allocated {peak / MiB:.2f} MiB"
    assert small["n"] == 18
    # The ranks, and so the metrics, do not depend on the number of slots.
    larger = evaluate_next_click(model, test, cutoffs=(20,), max_score_bytes=4 * limit)
    assert larger == small

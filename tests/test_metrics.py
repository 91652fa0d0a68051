"""Ranks with explicit ties, and Recall/MRR/NDCG at several cutoffs.

Hand-computed cases first, then a slow loop reference (one comparison at a time,
nothing shared with the kernel) on random scores full of ties, then properties
that must hold for any input.
"""

import math
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from rnnrec.metrics import TIES, MetricAccumulator, target_ranks


def loop_ranks(scores, targets, ties):
    """Slow reference: count above and tied items one by one."""
    out = []
    for row, t in zip(scores.tolist(), targets.tolist(), strict=True):
        above = sum(1 for s in row if s > row[t])
        tied = sum(1 for j, s in enumerate(row) if s == row[t] and j != t)
        extra = {"standard": 0, "conservative": tied, "median": tied / 2}[ties]
        out.append(1 + above + extra)
    return out


# -- target_ranks: hand-computed cases -------------------------------------------------


def test_ranks_of_a_tie_group_in_each_mode():
    # Target 1 scores 0.5: one item (0.9) above it, two others tie with it.
    scores = np.array([[0.1, 0.5, 0.5, 0.9, 0.5]])
    targets = np.array([1])
    assert target_ranks(scores, targets, "standard").tolist() == [2.0]
    assert target_ranks(scores, targets, "conservative").tolist() == [4.0]
    assert target_ranks(scores, targets, "median").tolist() == [3.0]


def test_ranks_of_several_rows():
    scores = np.array(
        [
            [3.0, 1.0, 2.0, 0.0],  # distinct scores: the modes agree
            [1.0, 1.0, 1.0, 1.0],  # all tied
            [0.0, 2.0, 2.0, 5.0],  # tie of two below one
        ]
    )
    targets = np.array([2, 0, 2])
    assert target_ranks(scores, targets).tolist() == [2.0, 1.0, 2.0]
    assert target_ranks(scores, targets, "conservative").tolist() == [2.0, 4.0, 3.0]
    assert target_ranks(scores, targets, "median").tolist() == [2.0, 2.5, 2.5]


def test_default_is_standard_and_result_is_float64():
    scores = np.array([[1.0, 1.0]])
    ranks = target_ranks(scores, np.array([1]))
    assert ranks.dtype == np.float64
    assert ranks.tolist() == [1.0]


def test_best_and_worst_target():
    scores = np.array([[0.2, 0.9, 0.5], [0.2, 0.9, 0.5]])
    for ties in TIES:
        assert target_ranks(scores, np.array([1, 0]), ties).tolist() == [1.0, 3.0]


def test_infinite_scores_rank_like_numbers():
    scores = np.array([[np.inf, np.inf, 0.0, -np.inf]])
    assert target_ranks(scores, np.array([1])).tolist() == [1.0]
    assert target_ranks(scores, np.array([1]), "conservative").tolist() == [2.0]
    assert target_ranks(scores, np.array([3]), "median").tolist() == [4.0]


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.int32])
def test_dtypes(dtype):
    scores = np.array([[1, 3, 3, 2]], dtype=dtype)
    assert target_ranks(scores, np.array([3], dtype=np.int32)).tolist() == [3.0]
    assert target_ranks(scores, np.array([2]), "median").tolist() == [1.5]


def test_strided_and_broadcast_scores():
    base = np.array([[0.0, 5.0, 1.0], [2.0, 2.0, 9.0]])
    transposed = np.ascontiguousarray(base.T).T  # Fortran order
    every_other = np.repeat(base, 2, axis=1)[:, ::2]
    targets = np.array([2, 0])
    for scores in (transposed, every_other):
        assert target_ranks(scores, targets, "conservative").tolist() == [2.0, 3.0]
    same_row = np.broadcast_to(np.array([1.0, 0.0, 1.0]), (2, 3))  # read-only view
    assert target_ranks(same_row, np.array([0, 1])).tolist() == [1.0, 3.0]


def test_empty_batch():
    ranks = target_ranks(np.zeros((0, 5)), np.zeros(0, dtype=np.int64))
    assert ranks.shape == (0,)


def test_float32_rounding_is_not_hidden():
    # 1 + 1e-8 rounds to 1 in float32: the two scores tie there but not in float64.
    scores = np.array([[1.0, 1.0 + 1e-8]])
    assert target_ranks(scores, np.array([0])).tolist() == [2.0]
    assert target_ranks(scores.astype(np.float32), np.array([0])).tolist() == [1.0]


# -- target_ranks: bad input -----------------------------------------------------------


@pytest.mark.parametrize("where", [0, 3])
def test_nan_scores_are_rejected(where):
    scores = np.zeros((2, 4))
    scores[1, where] = np.nan
    with pytest.raises(ValueError, match=r"1 NaN value\(s\) in 1 of 2 rows"):
        target_ranks(scores, np.array([0, 0]))


def test_nan_in_float32_scores_is_rejected():
    scores = np.full((1, 3), np.nan, dtype=np.float32)
    with pytest.raises(ValueError, match="NaN"):
        target_ranks(scores, np.array([1]), "median")


@pytest.mark.parametrize(
    "scores, targets, error, message",
    [
        ([[1.0, 2.0]], np.array([0]), TypeError, "scores must be a numpy array"),
        (np.zeros(3), np.array([0]), ValueError, "scores must have shape (B, V)"),
        (np.zeros((2, 0)), np.array([0, 0]), ValueError, "with V >= 1, got (2, 0)"),
        (np.zeros((1, 2), dtype=bool), np.array([0]), TypeError, "real dtype"),
        (np.zeros((2, 3)), [0, 1], TypeError, "targets must be a numpy integer"),
        (np.zeros((2, 3)), np.array([0.0, 1.0]), TypeError, "integer dtype, got"),
        (np.zeros((2, 3)), np.array([0]), ValueError, "shape (2,)"),
        (np.zeros((2, 3)), np.array([0, 3]), ValueError, "in [0, 3), got values"),
        (np.zeros((2, 3)), np.array([-1, 0]), ValueError, "from -1 to 0"),
    ],
)
def test_bad_arguments_are_named(scores, targets, error, message):
    with pytest.raises(error, match=re.escape(message)):
        target_ranks(scores, targets)


def test_bad_ties_mode():
    with pytest.raises(ValueError, match="ties must be one of .* got 'optimistic'"):
        target_ranks(np.zeros((1, 2)), np.array([0]), "optimistic")


# -- target_ranks: against the loop reference, and properties --------------------------


@st.composite
def scores_and_targets(draw, max_b=6, max_v=12):
    """Small integer-valued scores (many ties) and valid targets."""
    B = draw(st.integers(1, max_b))
    V = draw(st.integers(1, max_v))
    levels = draw(st.integers(1, 4))  # few distinct values: many ties
    scores = draw(
        hnp.arrays(np.float64, (B, V), elements=st.integers(0, levels).map(float))
    )
    targets = draw(hnp.arrays(np.int64, (B,), elements=st.integers(0, V - 1)))
    return scores, targets


@settings(max_examples=100, deadline=None)
@given(scores_and_targets(), st.sampled_from(TIES))
def test_matches_loop_reference(data, ties):
    scores, targets = data
    assert target_ranks(scores, targets, ties).tolist() == loop_ranks(
        scores, targets, ties
    )


@settings(max_examples=100, deadline=None)
@given(scores_and_targets())
def test_rank_properties(data):
    scores, targets = data
    V = scores.shape[1]
    standard, conservative, median = (target_ranks(scores, targets, t) for t in TIES)
    for ranks in (standard, conservative, median):
        assert ranks.min() >= 1 and ranks.max() <= V
    assert (standard <= median).all() and (median <= conservative).all()
    assert np.array_equal(median, (standard + conservative) / 2)
    # Distinct scores make the three agree.
    distinct = np.array([len(set(row)) == V for row in scores.tolist()])
    assert np.array_equal(standard[distinct], conservative[distinct])


def test_kernel_matches_numpy_on_a_large_batch():
    rng = np.random.default_rng(5)
    scores = rng.integers(0, 50, size=(64, 5000)).astype(np.float32)  # (B, V)
    targets = rng.integers(0, 5000, size=64)
    s_t = scores[np.arange(64), targets][:, None]
    above = (scores > s_t).sum(axis=1)
    tied = (scores == s_t).sum(axis=1) - 1
    assert np.array_equal(target_ranks(scores, targets), 1 + above)
    assert np.array_equal(
        target_ranks(scores, targets, "conservative"), 1 + above + tied
    )


# -- MetricAccumulator -----------------------------------------------------------------


def test_metrics_by_hand():
    acc = MetricAccumulator(cutoffs=(1, 2, 5))
    acc.add(np.array([1.0, 2.0, 5.0, 3.0]))
    r = acc.result()
    assert r["n"] == 4
    assert r["recall@1"] == 0.25 and r["mrr@1"] == 0.25 and r["ndcg@1"] == 0.25
    assert r["recall@2"] == 0.5
    assert r["mrr@2"] == pytest.approx((1 + 1 / 2) / 4)
    assert r["ndcg@2"] == pytest.approx((1 + 1 / math.log2(3)) / 4)
    assert r["recall@5"] == 1.0
    assert r["mrr@5"] == pytest.approx((1 + 1 / 2 + 1 / 5 + 1 / 3) / 4)
    assert r["ndcg@5"] == pytest.approx(
        (1 + 1 / math.log2(3) + 1 / math.log2(6) + 1 / math.log2(4)) / 4
    )
    assert list(r) == [
        "recall@1",
        "mrr@1",
        "ndcg@1",
        "recall@2",
        "mrr@2",
        "ndcg@2",
        "recall@5",
        "mrr@5",
        "ndcg@5",
        "n",
    ]


def test_median_half_ranks_count_only_within_the_cutoff():
    acc = MetricAccumulator(cutoffs=(2, 3))
    acc.add([2.5])
    r = acc.result()
    assert r["recall@2"] == 0.0 and r["mrr@2"] == 0.0
    assert r["recall@3"] == 1.0 and r["mrr@3"] == pytest.approx(0.4)
    assert r["ndcg@3"] == pytest.approx(1 / math.log2(3.5))


def test_batches_add_up_to_the_whole():
    ranks = np.random.default_rng(0).integers(1, 40, size=100).astype(float)
    whole, parts = MetricAccumulator(), MetricAccumulator()
    whole.add(ranks)
    for chunk in np.array_split(ranks, 7):
        parts.add(chunk)
    assert parts.result() == pytest.approx(whole.result())


def test_empty_accumulator_and_reset():
    acc = MetricAccumulator(cutoffs=3)
    r = acc.result()
    assert r["n"] == 0 and math.isnan(r["recall@3"]) and math.isnan(r["ndcg@3"])
    acc.add(np.array([1.0]))
    acc.add(np.zeros(0))
    assert acc.result()["n"] == 1
    acc.reset()
    assert acc.result()["n"] == 0


def test_cutoffs_are_sorted_and_deduplicated():
    assert MetricAccumulator(cutoffs=[20, 5, 20, np.int64(10)]).cutoffs == (5, 10, 20)
    assert MetricAccumulator(cutoffs=7).cutoffs == (7,)
    assert MetricAccumulator().cutoffs == (5, 10, 20)


@pytest.mark.parametrize(
    "cutoffs, error, message",
    [
        ((0, 5), ValueError, "cutoffs must be positive ints, got 0"),
        ((-1,), ValueError, "got -1"),
        ((2.5,), TypeError, "got 2.5"),
        ((True,), TypeError, "got True"),
        (("20",), TypeError, "got '20'"),
        ((), ValueError, "at least one cutoff"),
        (None, TypeError, "got None"),
    ],
)
def test_bad_cutoffs(cutoffs, error, message):
    with pytest.raises(error, match=re.escape(message)):
        MetricAccumulator(cutoffs=cutoffs)


@pytest.mark.parametrize(
    "ranks, message",
    [
        (np.array([1.0, 0.0]), "finite and >= 1, got values from 0.0 to 1.0"),
        (np.array([np.nan, 2.0]), "NaN: 1"),
        (np.array([np.inf]), "finite"),
        (np.ones((2, 2)), "ranks must be 1-D"),
    ],
)
def test_bad_ranks(ranks, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        MetricAccumulator().add(ranks)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.integers(1, 60), min_size=1, max_size=50),
    st.lists(st.integers(1, 40), min_size=1, max_size=6),
    st.booleans(),
)
def test_metrics_are_monotone_in_k_and_ordered(ranks, cutoffs, halves):
    ranks = np.array(ranks, dtype=float) + (0.5 if halves else 0.0)
    acc = MetricAccumulator(cutoffs)
    acc.add(ranks)
    r = acc.result()
    ks = acc.cutoffs
    for name in ("recall", "mrr", "ndcg"):
        values = [r[f"{name}@{k}"] for k in ks]
        assert all(0.0 <= v <= 1.0 for v in values)
        assert values == sorted(values)
    for k in ks:
        # One relevant item: 1 / rank <= 1 / log2(rank + 1) <= 1.
        assert r[f"mrr@{k}"] <= r[f"ndcg@{k}"] + 1e-12
        assert r[f"ndcg@{k}"] <= r[f"recall@{k}"] + 1e-12
        assert r[f"recall@{k}"] == np.mean(ranks <= k)

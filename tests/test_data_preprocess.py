"""Preprocessing: grouping, repeats, iterated filtering, time split, indexing, stats.

Hand-worked cases, slow list-based references under hypothesis, a pandas
reference of the whole pipeline on the DIGINETICA sample, and the counts the
data README gives for the pre-split sets.
"""

import os

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnrec.data import (
    Sessions,
    SessionStats,
    TrainTest,
    filter_sessions,
    index_test_like_train,
    n_pairs,
    preprocess,
    read_diginetica,
    read_session_lines,
    remove_consecutive_repeats,
    session_stats,
    sessions_from_events,
    split_by_time,
)

DATA = os.path.join(os.path.dirname(os.path.dirname(__file__)), "..", "shared", "data")
needs_data = pytest.mark.skipif(
    not os.path.isdir(DATA), reason=f"real data not found at {DATA}"
)
DAY = 86400.0

session_lists = st.lists(st.lists(st.integers(0, 9), max_size=7), max_size=15)


def raw(sessions):
    return sessions.to_lists(raw=True)


def with_ids(lists, ids=None, times=None):
    """Sessions of raw ids ``lists`` under the index ``ids`` (default: sorted)."""
    ids = np.array(sorted({i for s in lists for i in s}) if ids is None else ids)
    lookup = {v: k for k, v in enumerate(ids.tolist())}
    base = Sessions.from_lists([[lookup[i] for i in s] for s in lists], item_ids=ids)
    if times is None:
        return base
    return Sessions(
        items=base.items,
        offsets=base.offsets,
        item_ids=base.item_ids,
        times=np.asarray(times, dtype=float),
        session_ids=np.arange(base.n_sessions),
    )


# ---------------------------------------------------------------------------
# Grouping
# ---------------------------------------------------------------------------


def test_sessions_from_events_by_hand():
    sessions = sessions_from_events(
        session_ids=[9, 4, 9, 4, 6, 9],
        item_ids=[1, 2, 3, 4, 5, 6],
        times=[3.0, 2.0, 1.0, 2.0, 1.0, 3.0],
    )
    # Starts: 9 at 1.0, 6 at 1.0 (tie: id 6 first), 4 at 2.0. Within 9, the
    # clicks at 3.0 keep their log order (1 before 6).
    assert sessions.session_ids.tolist() == [6, 9, 4]
    assert raw(sessions) == [[5], [3, 1, 6], [2, 4]]
    assert sessions.times.tolist() == [1.0, 1.0, 3.0, 3.0, 2.0, 2.0]
    untimed = sessions_from_events([9, 4, 9, 4, 6], [1, 2, 3, 4, 5])
    assert untimed.session_ids.tolist() == [9, 4, 6]  # first appearance
    assert raw(untimed) == [[1, 3], [2, 4], [5]]


def test_sessions_from_events_errors():
    with pytest.raises(ValueError, match=r"equal length, got shapes \(2,\) and \(3,"):
        sessions_from_events([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="holds no events"):
        sessions_from_events([], [])
    with pytest.raises(ValueError, match="times must be finite"):
        sessions_from_events([1, 1], [1, 2], [0.0, np.nan])
    with pytest.raises(ValueError, match=r"times must have shape \(2,\), got \(1,\)"):
        sessions_from_events([1, 1], [1, 2], [0.0])


# ---------------------------------------------------------------------------
# Repeats and filtering
# ---------------------------------------------------------------------------


def test_remove_consecutive_repeats():
    sessions = with_ids([[1, 1, 2, 2, 2, 1], [1, 1], [], [2, 3, 3]])
    cleaned = remove_consecutive_repeats(sessions)
    assert raw(cleaned) == [[1, 2, 1], [1], [], [2, 3]]
    assert cleaned.item_ids is sessions.item_ids
    # A session starting with the item the previous one ended with keeps it.
    assert raw(remove_consecutive_repeats(with_ids([[1, 2], [2, 2, 3]]))) == [
        [1, 2],
        [2, 3],
    ]


def test_filter_iterates_until_stable():
    # x occurs once: dropping it shortens [x, y] to [y], dropped; y then has
    # one click left and goes, which drops [y, z]; then z goes, and [z, w, w]
    # becomes [w, w]. One pass of each rule would stop after the first step.
    x, y, z, w = 1, 2, 3, 4
    sessions = with_ids([[x, y], [y, z], [z, w, w]])
    kept = filter_sessions(sessions, min_item_support=2, min_session_length=2)
    assert raw(kept) == [[w, w]]
    assert kept.item_ids.tolist() == [1, 2, 3, 4]  # the index is kept


def reference_filter(lists, support, length):
    lists = [list(s) for s in lists]
    while True:
        counts = {}
        for s in lists:
            for i in s:
                counts[i] = counts.get(i, 0) + 1
        new = [[i for i in s if counts[i] >= support] for s in lists]
        new = [s for s in new if len(s) >= length]
        if new == lists:
            return new
        lists = new


@settings(max_examples=150, deadline=None)
@given(lists=session_lists, support=st.integers(1, 4), length=st.integers(1, 4))
def test_filter_matches_reference(lists, support, length):
    sessions = with_ids(lists, ids=np.arange(10))
    kept = filter_sessions(
        sessions, min_item_support=support, min_session_length=length
    )
    assert raw(kept) == reference_filter(lists, support, length)
    counts = kept.item_counts()
    assert np.all((counts == 0) | (counts >= support))
    assert np.all(kept.lengths >= length)


def test_filter_errors():
    sessions = with_ids([[1, 2]])
    with pytest.raises(ValueError, match="min_item_support must be an integer >= 1"):
        filter_sessions(sessions, min_item_support=0)
    with pytest.raises(TypeError, match="min_session_length must be an integer"):
        filter_sessions(sessions, min_session_length=2.0)
    with pytest.raises(TypeError, match="sessions must be a Sessions, got list"):
        filter_sessions([[1, 2]])


# ---------------------------------------------------------------------------
# Splitting
# ---------------------------------------------------------------------------


def test_split_by_days():
    # Starts at days 0, 1, 2, 3.5, 4; the data ends at day 4.5.
    lists = [[1, 2], [2, 3], [3, 4], [4, 5], [5, 1]]
    times = np.array([0, 0.1, 1, 1.1, 2, 2.1, 3.5, 3.6, 4, 4.5]) * DAY
    sessions = with_ids(lists, times=times)
    train, test = split_by_time(sessions, test_days=1)
    assert raw(test) == [[4, 5], [5, 1]]  # started at or after day 3.5
    assert raw(train) == lists[:3]
    train, test = split_by_time(sessions, test_days=2.5)
    assert (train.n_sessions, test.n_sessions) == (2, 3)
    assert train.times.tolist() == times[:4].tolist()


def test_split_by_fraction():
    lists = [[1, 2], [2, 3], [3], [4, 5], [5, 1]]
    # Session 1 starts last, although it is stored second.
    times = [0, 1, 50, 51, 2, 3, 4, 5, 6]
    sessions = with_ids(lists, times=times)
    train, test = split_by_time(sessions, test_fraction=0.3)  # ceil(1.5) = 2
    assert raw(test) == [[2, 3], [5, 1]]
    assert raw(train) == [[1, 2], [3], [4, 5]]
    untimed = with_ids(lists)
    assert raw(split_by_time(untimed, test_fraction=0.2)[1]) == [[5, 1]]


def test_split_errors():
    timed = with_ids([[1, 2], [2, 3]], times=[0, 1, 2, 3])
    with pytest.raises(ValueError, match="exactly one of test_days and test_fraction"):
        split_by_time(timed)
    with pytest.raises(ValueError, match="exactly one"):
        split_by_time(timed, test_days=1, test_fraction=0.5)
    with pytest.raises(ValueError, match="test_days needs click times"):
        split_by_time(with_ids([[1, 2], [2, 3]]), test_days=1)
    with pytest.raises(ValueError, match="test_fraction must be a number in"):
        split_by_time(timed, test_fraction=1.0)
    with pytest.raises(ValueError, match="test_days must be a number > 0, got -2"):
        split_by_time(timed, test_days=-2)
    with pytest.raises(ValueError, match=r"leaves the training set empty \(2 of 2"):
        split_by_time(timed, test_days=1)
    with pytest.raises(ValueError, match="at least 2 non-empty sessions, got 1"):
        split_by_time(with_ids([[1, 2], []], times=[0, 1]), test_days=1)


# ---------------------------------------------------------------------------
# Indexing by the training items
# ---------------------------------------------------------------------------


def test_index_test_like_train_by_hand():
    train = with_ids([[30, 10], [10, 40]], ids=[10, 20, 30, 40])  # 20 unused
    test = with_ids([[10, 99, 30], [98, 40], [99, 99], [40, 30]])
    result = index_test_like_train(train, test)
    assert isinstance(result, TrainTest)
    assert result.train.item_ids.tolist() == [10, 30, 40]  # train clicks only
    assert result.test.item_ids is result.train.item_ids
    assert result.train.items.tolist() == [1, 0, 0, 2]
    # 99 dropped: 10 and 30 become neighbours; [98, 40] keeps one click and
    # goes; [99, 99] loses everything and goes.
    assert raw(result.test) == [[10, 30], [40, 30]]
    assert result.n_unknown_clicks == 4
    assert result.n_unknown_items == 2
    assert result.n_dropped_test_sessions == 2
    assert result.n_test_pairs_before == 5
    assert result.n_test_pairs == 2


@pytest.mark.filterwarnings("ignore::UserWarning")  # random data may warn
@settings(max_examples=150, deadline=None)
@given(train=session_lists, test=session_lists, shift=st.integers(0, 5))
def test_index_matches_reference(train, test, shift):
    train = train or [[]]  # a Sessions of no sessions has no ids to index
    test = [[i + shift for i in s] for s in test] or [[]]  # some ids unknown
    known = {i for s in train for i in s}
    expected = [[i for i in s if i in known] for s in test]
    result = index_test_like_train(with_ids(train), with_ids(test))
    assert raw(result.test) == [s for s in expected if len(s) >= 2]
    assert raw(result.train) == train
    assert result.train.item_ids.tolist() == sorted(known)
    assert result.n_unknown_clicks == sum(i not in known for s in test for i in s)
    assert result.n_unknown_items == len({i for s in test for i in s} - known)
    assert result.n_dropped_test_sessions == sum(len(s) < 2 for s in expected)


def test_index_errors():
    numbers = with_ids([[1, 2]])
    words = Sessions.from_lists([[0, 1]], item_ids=np.array(["a", "b"]))
    with pytest.raises(TypeError, match="of one kind .* got int64 and <U1"):
        index_test_like_train(numbers, words)
    with pytest.raises(ValueError, match="min_test_length must be an integer >= 1"):
        index_test_like_train(numbers, numbers, min_test_length=0)


# ---------------------------------------------------------------------------
# Statistics and the pipeline
# ---------------------------------------------------------------------------


def test_session_stats():
    times = np.arange(12, dtype=float) * DAY / 4
    stats = session_stats(with_ids([[1, 2], [2, 2, 3], [4] * 7], times=times))
    assert isinstance(stats, SessionStats)
    assert (stats.n_sessions, stats.n_clicks, stats.n_pairs, stats.n_items) == (
        3,
        12,
        9,
        4,
    )
    assert (stats.length_min, stats.length_median, stats.length_max) == (2, 3.0, 7)
    assert stats.length_mean == pytest.approx(4.0)
    assert stats.length_percentiles[25] == 2.5
    assert stats.length_percentiles[95] == pytest.approx(6.6)
    text = str(stats)
    assert "sessions  3\n" in text and "clicks    12\n" in text
    assert "min 2, median 3, mean 4.00, max 7" in text
    assert "1970-01-01T00:00:00 to 1970-01-03T18:00:00 (2.8 days)" in text
    empty = session_stats(Sessions.from_lists([]))
    assert (empty.n_sessions, empty.length_max) == (0, 0)
    assert np.isnan(empty.length_mean)
    assert str(empty).startswith("sessions  0")


def test_preprocess_runs_the_steps_in_order():
    # Session k starts on day k.
    lists = [[1, 1, 2], [2, 3], [1, 3, 9], [3, 2], [1, 7, 7, 2], [2, 2]]
    lengths = [len(s) for s in lists]
    times = np.repeat(np.arange(6) * DAY, lengths) + np.arange(sum(lengths))
    sessions = with_ids(lists, times=times)
    result = preprocess(
        sessions, test_days=0.5, remove_repeats=True, min_item_support=2
    )
    # Repeats go ([1, 2], [1, 7, 2], [2]); 9 and 7 (one click each) go; [2] is
    # too short. The last click left is on day 4, so the test set is the
    # session of day 4; no unknown item is left.
    assert raw(result.train) == [[1, 2], [2, 3], [1, 3], [3, 2]]
    assert raw(result.test) == [[1, 2]]
    assert result.n_unknown_clicks == 0
    assert result.train.item_ids.tolist() == [1, 2, 3]
    assert "unknown test clicks 0 on 0 items, dropped" in str(result)


def pandas_pipeline(path, test_days, support):
    """An independent pandas version of read + filter + split + index."""
    frame = pd.read_csv(path, sep=";")
    day = pd.to_datetime(frame.eventdate).to_numpy("datetime64[s]").astype("int64")
    frame["Time"] = day + frame.timeframe / 1000
    frame = frame.sort_values(["session_id", "Time"], kind="stable")
    while True:
        before = len(frame)
        counts = frame.groupby("item_id").item_id.transform("size")
        frame = frame[counts >= support]
        lengths = frame.groupby("session_id").session_id.transform("size")
        frame = frame[lengths >= 2]
        if len(frame) == before:
            break
    start = frame.groupby("session_id").Time.min()
    is_test = start >= frame.Time.max() - test_days * DAY
    test_ids = set(start.index[is_test])
    train = frame[~frame.session_id.isin(test_ids)]
    test = frame[frame.session_id.isin(test_ids)]
    unknown = ~test.item_id.isin(set(train.item_id))
    test = test[~unknown]
    test = test[test.groupby("session_id").session_id.transform("size") >= 2]

    def by_session(part):
        return {s: g.item_id.tolist() for s, g in part.groupby("session_id")}

    return by_session(train), by_session(test), int(unknown.sum())


@needs_data
def test_diginetica_sample_pipeline_matches_pandas():
    path = os.path.join(DATA, "diginetica_sample", "train-item-views.csv")
    result = preprocess(read_diginetica(path), test_days=7, min_item_support=5)
    train, test, unknown = pandas_pipeline(path, 7, 5)

    def by_session(sessions):
        return dict(zip(sessions.session_ids.tolist(), raw(sessions), strict=True))

    assert by_session(result.train) == train
    assert by_session(result.test) == test
    assert result.n_unknown_clicks == unknown
    assert (result.train.n_sessions, result.test.n_sessions) == (380, 36)
    assert (result.train.n_clicks, result.test.n_clicks) == (1_378, 124)
    assert (result.n_unknown_clicks, result.n_unknown_items) == (11, 2)
    starts = result.test.times[result.test.offsets[:-1]]
    assert np.all(np.diff(starts) >= 0)  # test sessions in time order


@needs_data
@pytest.mark.parametrize(
    ("folder", "unknown_clicks", "unknown_items", "pairs", "pairs_before"),
    [
        ("yoochoose1_64", 531, 369, 55_400, 55_898),
        ("diginetica", 0, 0, 60_858, 60_858),
    ],
)
def test_pre_split_real_data(
    folder, unknown_clicks, unknown_items, pairs, pairs_before
):
    train = read_session_lines(os.path.join(DATA, folder, "train_sessions.txt"))
    test = read_session_lines(os.path.join(DATA, folder, "test_sessions.txt"))
    result = index_test_like_train(train, test)
    assert result.n_unknown_clicks == unknown_clicks
    assert result.n_unknown_items == unknown_items
    assert result.n_test_pairs == n_pairs(result.test) == pairs
    assert result.n_test_pairs_before == pairs_before
    assert result.train.n_items == train.n_items  # every train item is clicked
    assert result.test.items.max() < result.train.n_items

"""The selection helpers added to Sessions: sessions, clicks, lists."""

import numpy as np
import pytest

from rnnrec.data import Sessions


def timed():
    base = Sessions.from_lists([[0, 1, 2], [3], [], [4, 0]], item_ids=[9, 8, 7, 6, 5])
    return Sessions(
        items=base.items,
        offsets=base.offsets,
        item_ids=base.item_ids,
        times=np.arange(6, dtype=float),
        session_ids=np.array([10, 11, 12, 13]),
    )


def test_session_index_and_to_lists():
    sessions = timed()
    assert sessions.session_index().tolist() == [0, 0, 0, 1, 3, 3]
    assert sessions.to_lists() == [[0, 1, 2], [3], [], [4, 0]]
    assert sessions.to_lists(raw=True) == [[9, 8, 7], [6], [], [5, 9]]


def test_select_sessions_by_index_and_mask():
    sessions = timed()
    picked = sessions.select_sessions([3, 0])
    assert picked.to_lists() == [[4, 0], [0, 1, 2]]
    assert picked.times.tolist() == [4.0, 5.0, 0.0, 1.0, 2.0]
    assert picked.session_ids.tolist() == [13, 10]
    assert picked.item_ids is sessions.item_ids
    masked = sessions.select_sessions(np.array([False, True, True, False]))
    assert masked.to_lists() == [[3], []]
    assert masked.offsets.tolist() == [0, 1, 1]
    assert sessions.select_sessions([]).n_sessions == 0
    with pytest.raises(ValueError, match=r"must have shape \(4,\), got \(2,\)"):
        sessions.select_sessions(np.array([True, False]))


def test_select_clicks_keeps_empty_sessions():
    sessions = timed()
    kept = sessions.select_clicks(sessions.items != 0)
    assert kept.to_lists() == [[1, 2], [3], [], [4]]
    assert kept.times.tolist() == [1.0, 2.0, 3.0, 4.0]
    assert kept.session_ids.tolist() == [10, 11, 12, 13]
    with pytest.raises(ValueError, match=r"boolean mask of shape \(6,\), got dtype"):
        sessions.select_clicks(np.ones(6, dtype=int))

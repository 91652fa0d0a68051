"""Readers: session lines, GRU4Rec event logs, raw DIGINETICA; their errors."""

import os
import sys
import time

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnrec.data import read_diginetica, read_events, read_session_lines

DATA = os.path.join(os.path.dirname(os.path.dirname(__file__)), "..", "shared", "data")
needs_data = pytest.mark.skipif(
    not os.path.isdir(DATA), reason=f"real data not found at {DATA}"
)


def write(tmp_path, content, name="data.txt"):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


# ---------------------------------------------------------------------------
# Session lines
# ---------------------------------------------------------------------------


def test_session_lines_by_hand(tmp_path):
    sessions = read_session_lines(write(tmp_path, "30 10 30\n-5 20\n7\n"))
    assert sessions.item_ids.tolist() == [-5, 7, 10, 20, 30]
    assert sessions.items.tolist() == [4, 2, 4, 0, 3, 1]
    assert sessions.offsets.tolist() == [0, 3, 5, 6]
    assert sessions.session_ids.tolist() == [1, 2, 3]
    assert sessions.times is None
    assert sessions.to_lists(raw=True) == [[30, 10, 30], [-5, 20], [7]]


def test_session_lines_bom_crlf_tabs_blank_lines(tmp_path):
    content = b"\xef\xbb\xbf1  2\t3\r\n\r\n   \n4 5\r\n\n6 7"
    sessions = read_session_lines(write(tmp_path, content))
    assert sessions.to_lists(raw=True) == [[1, 2, 3], [4, 5], [6, 7]]
    # Blank lines are skipped; sessions keep their line numbers.
    assert sessions.session_ids.tolist() == [1, 4, 6]


@pytest.mark.filterwarnings("ignore::UserWarning")  # random data may warn
@settings(max_examples=60, deadline=None)
@given(
    lists=st.lists(
        st.lists(st.integers(-(2**63), 2**63 - 1), min_size=1, max_size=6),
        min_size=1,
        max_size=12,
    ),
    crlf=st.booleans(),
    sep=st.sampled_from([" ", "\t", "  ", " \t"]),
)
def test_session_lines_round_trip(tmp_path_factory, lists, crlf, sep):
    end = "\r\n" if crlf else "\n"
    text = end.join(sep.join(str(i) for i in s) for s in lists) + end
    path = write(tmp_path_factory.mktemp("lines"), text)
    sessions = read_session_lines(path)
    assert sessions.to_lists(raw=True) == lists
    assert sessions.item_ids.tolist() == sorted({i for s in lists for i in s})
    assert sessions.session_ids.tolist() == list(range(1, len(lists) + 1))


@pytest.mark.parametrize(
    ("content", "line", "token"),
    [
        ("1 2\n3 x 4\n", 2, "x"),
        ("1 2\n3 4\n5 1.5\n", 3, "1.5"),
        ("1 +2\n", 1, "+2"),
        ("1 1_000\n", 1, "1_000"),
        ("1 2\n1-2\n", 2, "1-2"),
        ("4\n5\n-\n", 3, "-"),
        ("1,2,3\n", 1, "1,2,3"),
        ("1 2\r3 4\n", 1, "2\r3"),
    ],
)
def test_session_lines_bad_line_is_named(tmp_path, content, line, token):
    path = write(tmp_path, content)
    with pytest.raises(ValueError, match=f"line {line}: ") as info:
        read_session_lines(path)
    assert repr(token) in str(info.value)


def test_session_lines_overflow_and_bad_bytes(tmp_path):
    with pytest.raises(ValueError, match="line 2: item id 9223372036854775808 does"):
        read_session_lines(write(tmp_path, "1\n9223372036854775808\n"))
    with pytest.raises(ValueError, match="line 3: "):
        read_session_lines(write(tmp_path, b"1 2\n3 4\n5 \xff\xfe\n"))


def test_session_lines_missing_and_empty(tmp_path):
    with pytest.raises(FileNotFoundError, match="session file not found"):
        read_session_lines(tmp_path / "nope.txt")
    with pytest.raises(IsADirectoryError, match="is a directory"):
        read_session_lines(tmp_path)
    with pytest.raises(ValueError, match="holds no session"):
        read_session_lines(write(tmp_path, ""))
    with pytest.raises(ValueError, match="holds no session"):
        read_session_lines(write(tmp_path, "\n  \n\r\n"))
    with pytest.raises(
        TypeError, match=r"session file must be a path \(str or os.PathLike\), got int"
    ):
        read_session_lines(3)


# ---------------------------------------------------------------------------
# Event logs
# ---------------------------------------------------------------------------

EVENTS = (
    "SessionId\tItemId\tTime\n"
    "2\t20\t105.0\n"
    "1\t10\t100.0\n"
    "2\t21\t101.0\n"
    "1\t11\t100.0\n"
    "3\t30\t50.0\n"
    "1\t12\t99.0\n"
)


def test_events_sorted_by_session_then_time(tmp_path):
    sessions = read_events(write(tmp_path, EVENTS))
    # Session 3 starts first (50), then 1 (99), then 2 (101); ties (10 and 11
    # at 100.0) keep the file order.
    assert sessions.session_ids.tolist() == [3, 1, 2]
    assert sessions.to_lists(raw=True) == [[30], [12, 10, 11], [21, 20]]
    assert sessions.times.tolist() == [50.0, 99.0, 100.0, 100.0, 101.0, 105.0]
    assert sessions.item_ids.tolist() == [10, 11, 12, 20, 21, 30]


@pytest.mark.filterwarnings("ignore::UserWarning")  # random data may warn
def test_events_match_a_pandas_stable_sort():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "SessionId": rng.integers(0, 50, 400),
            "ItemId": rng.integers(0, 30, 400),
            "Time": rng.integers(0, 20, 400).astype(float),
        }
    )
    sessions = read_events(frame)
    expected = frame.sort_values(["SessionId", "Time"], kind="stable")
    starts = expected.groupby("SessionId")["Time"].min()
    order = sorted(starts.index, key=lambda s: (starts[s], s))
    rows = [expected[expected.SessionId == s].ItemId.tolist() for s in order]
    assert sessions.to_lists(raw=True) == rows
    assert sessions.session_ids.tolist() == order
    assert sessions.n_clicks == 400


def test_events_frame_options():
    frame = pd.DataFrame(
        {
            "sid": [5, 5, 4],
            "item": [1.0, 2.0, 3.0],  # integral floats are accepted
            "when": pd.to_datetime(
                ["2020-01-01 00:00:10", "2020-01-01 00:00:00", "2020-01-01 00:00:00"]
            ),
            "other": ["a", "b", "c"],
        }
    )
    sessions = read_events(frame, session_key="sid", item_key="item", time_key="when")
    assert sessions.session_ids.tolist() == [4, 5]
    assert sessions.to_lists(raw=True) == [[3], [2, 1]]
    assert sessions.times.tolist() == [1577836800.0, 1577836800.0, 1577836810.0]

    untimed = read_events(frame, session_key="sid", item_key="item", time_key=None)
    assert untimed.times is None
    assert untimed.to_lists(raw=True) == [[1, 2], [3]]  # row order


def test_events_bom_crlf_and_other_separator(tmp_path):
    text = "\ufeffSessionId,ItemId,Time\r\n1,7,2\r\n1,8,1\r\n"
    sessions = read_events(write(tmp_path, text), sep=",")
    assert sessions.to_lists(raw=True) == [[8, 7]]


def test_events_missing_columns_are_listed(tmp_path):
    path = write(tmp_path, "session\tItemId\tTime\n1\t2\t3\n")
    with pytest.raises(ValueError) as info:
        read_events(path)
    message = str(info.value)
    assert "lacks the column(s) ['SessionId']" in message
    assert "required: ['SessionId', 'ItemId', 'Time']" in message
    assert "found: ['session', 'ItemId', 'Time']" in message

    comma = write(tmp_path, "SessionId,ItemId,Time\n1,2,3\n", "comma.txt")
    with pytest.raises(ValueError, match="is the separator '\\\\t' right"):
        read_events(comma)
    with pytest.raises(ValueError, match=r"lacks the column\(s\) \['Time'\]"):
        read_events(pd.DataFrame({"SessionId": [1], "ItemId": [2]}))


@pytest.mark.parametrize(
    ("rows", "match"),
    [
        (
            "1\t2\t3\n1\t\t4\n",
            "column 'ItemId' has an empty or NaN value in data row 2",
        ),
        ("1\t2\t3\nNaN\t3\t4\n", "column 'SessionId' has an empty or NaN value"),
        ("1\t2\t3\n1\tabc\t4\n", "column 'ItemId' must hold integer ids, got 'abc' in"),
        ("1\t2.5\t3\n", "column 'ItemId' must hold integer ids, got '2.5' in data r"),
        ("1\t2\tsoon\n", "column 'Time' must hold finite times in seconds"),
        ("1\t2\t3\n1\t2\t\n", "column 'Time' has an empty or NaN value in data row 2"),
    ],
)
def test_events_bad_fields(tmp_path, rows, match):
    path = write(tmp_path, "SessionId\tItemId\tTime\n" + rows)
    with pytest.raises(ValueError, match=match):
        read_events(path)


def test_events_missing_and_empty_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="event file not found"):
        read_events(tmp_path / "none.tsv")
    with pytest.raises(ValueError, match="is empty"):
        read_events(write(tmp_path, ""))
    with pytest.raises(ValueError, match="is empty"):
        read_events(write(tmp_path, "\n\n", "blank.tsv"))
    with pytest.raises(ValueError, match="has the required columns but no rows"):
        read_events(write(tmp_path, "SessionId\tItemId\tTime\n", "header.tsv"))
    with pytest.raises(
        TypeError, match=r"must be a path \(str or os.PathLike\), got list"
    ):
        read_events([1, 2])
    with pytest.raises(TypeError, match="must hold integer ids, got bool"):
        read_events(pd.DataFrame({"SessionId": [True], "ItemId": [1], "Time": [0]}))


def test_readers_explain_a_missing_pandas(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match=r"pip install rnnrec\[data\]"):
        read_events(write(tmp_path, EVENTS))
    with pytest.raises(ImportError, match=r"read_diginetica needs pandas"):
        read_diginetica(write(tmp_path, EVENTS))
    # The session-lines reader does not need pandas.
    assert read_session_lines(write(tmp_path, "1 2\n")).n_clicks == 2


# ---------------------------------------------------------------------------
# Raw DIGINETICA
# ---------------------------------------------------------------------------

DIGINETICA = (
    "session_id;user_id;item_id;timeframe;eventdate\n"
    "7;NA;100;5000;2016-05-09\n"
    "7;NA;101;1500;2016-05-09\n"
    "3;12;200;0;2016-05-10\n"
    "7;NA;102;2500;2016-05-09\n"
    "3;12;201;999;2016-05-10\n"
)


def test_diginetica_by_hand(tmp_path):
    sessions = read_diginetica(write(tmp_path, DIGINETICA, "views.csv"))
    may9 = 1462752000.0  # 2016-05-09T00:00:00Z
    assert sessions.session_ids.tolist() == [7, 3]
    assert sessions.to_lists(raw=True) == [[101, 102, 100], [200, 201]]
    assert sessions.times.tolist() == [
        may9 + 1.5,
        may9 + 2.5,
        may9 + 5.0,
        may9 + 86400.0,
        may9 + 86400.999,
    ]


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ("1;NA;5;0;2016-13-01\n", "column 'eventdate' must hold dates as YYYY-MM-DD"),
        ("1;NA;5;;2016-01-01\n", "column 'timeframe' has an empty or NaN value in"),
        ("1;NA;x5;0;2016-01-01\n", "column 'item_id' must hold integer ids, got 'x5'"),
        ("1;NA;5;0;\n", "column 'eventdate' must hold dates"),
    ],
)
def test_diginetica_bad_fields(tmp_path, body, match):
    header = "session_id;user_id;item_id;timeframe;eventdate\n"
    path = write(tmp_path, header + "1;NA;4;0;2016-01-01\n" + body, "views.csv")
    with pytest.raises(ValueError, match=match):
        read_diginetica(path)


def test_diginetica_missing_columns(tmp_path):
    path = write(tmp_path, "session_id;user_id;itemId;timeframe\n1;NA;2;3\n", "v.csv")
    with pytest.raises(ValueError) as info:
        read_diginetica(path)
    assert "lacks the column(s) ['item_id', 'eventdate']" in str(info.value)
    assert "found: ['session_id', 'user_id', 'itemId', 'timeframe']" in str(info.value)
    with pytest.raises(ValueError, match="only one column was found"):
        read_diginetica(write(tmp_path, DIGINETICA.replace(";", ","), "c.csv"))


# ---------------------------------------------------------------------------
# Real data: the counts of /work/shared/data/README.md
# ---------------------------------------------------------------------------


@needs_data
@pytest.mark.parametrize(
    ("folder", "sessions", "clicks", "items"),
    [
        ("yoochoose1_64", (116_167, 15_324), (486_026, 71_222), 17_376),
        ("diginetica", (186_670, 15_963), (906_140, 76_821), 43_097),
    ],
)
def test_real_session_files(folder, sessions, clicks, items):
    started = time.perf_counter()
    train = read_session_lines(os.path.join(DATA, folder, "train_sessions.txt"))
    test = read_session_lines(os.path.join(DATA, folder, "test_sessions.txt"))
    seconds = time.perf_counter() - started
    assert (train.n_sessions, test.n_sessions) == sessions
    assert (train.n_clicks, test.n_clicks) == clicks
    assert train.n_items == items
    assert train.lengths.min() >= 2 and test.lengths.min() >= 2
    assert seconds < 5.0  # about 0.2 s (yoochoose) and 0.35 s (diginetica)


@needs_data
def test_real_diginetica_sample():
    path = os.path.join(DATA, "diginetica_sample", "train-item-views.csv")
    sessions = read_diginetica(path)
    raw = pd.read_csv(path, sep=";")
    assert (sessions.n_sessions, sessions.n_clicks, sessions.n_items) == (
        2_986,
        12_391,
        7_139,
    )
    # Times are non-decreasing within sessions and session starts are in order.
    inner = np.ones(sessions.n_clicks, dtype=bool)
    inner[sessions.offsets[:-1]] = False
    assert np.all(np.diff(sessions.times)[inner[1:]] >= 0)
    assert np.all(np.diff(sessions.times[sessions.offsets[:-1]]) >= 0)
    # Every row is there once: same multiset of (session, item) pairs.
    ours = sorted(
        zip(
            np.repeat(sessions.session_ids, sessions.lengths).tolist(),
            sessions.item_ids[sessions.items].tolist(),
            strict=True,
        )
    )
    assert ours == sorted(zip(raw.session_id, raw.item_id, strict=True))

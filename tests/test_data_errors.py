"""The readers on bad and doubtful input, by hand and fuzzed with Hypothesis.

By hand: ids too large for int64 (never wrapped around), lines that do not
parse, duplicate rows and single-click sessions (warned about), test sets with
nothing known, filtering that leaves nothing. Fuzzed: whatever bytes a file
holds and whatever a DataFrame holds, a reader returns sessions or raises one
of its documented errors with a one-line message.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnnrec.data import (
    Sessions,
    index_test_like_train,
    preprocess,
    read_diginetica,
    read_events,
    read_session_lines,
)

HEADER = "SessionId\tItemId\tTime\n"


def write(tmp_path, content, name="data.txt"):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


# -- ids that do not fit -------------------------------------------------------


@pytest.mark.parametrize(
    "item, match",
    [
        ("9223372036854775808", "holds 9223372036854775808 in data row 2, too large"),
        ("-9223372036854775809", "too large for a 64-bit id"),
        ("99999999999999999999999", "holds 99999999999999999999999 in data row 2"),
        ("1e30", r"holds 1e\+30 in data row 2, too large"),
        ("9007199254740993.0", r"from 2\*\*53 on, floating-point numbers skip"),
        ("inf", "must hold integer ids, got 'inf' in data row 2"),
    ],
)
def test_ids_too_large_for_int64_are_refused_not_wrapped(tmp_path, item, match):
    path = write(tmp_path, HEADER + "1\t5\t0\n" + f"1\t{item}\t1\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no cast warning on the way either
        with pytest.raises(ValueError, match=match):
            read_events(path)


def test_ids_at_the_int64_limits_and_negative_ids_are_kept(tmp_path):
    big, small = 2**63 - 1, -(2**63)
    path = write(tmp_path, HEADER + f"{big}\t{small}\t0\n{big}\t-7\t1\n")
    sessions = read_events(path)
    assert sessions.to_lists(raw=True) == [[small, -7]]  # ids are labels
    assert sessions.session_ids.tolist() == [big]
    frame = pd.DataFrame(
        {
            "SessionId": np.array([1, 1], dtype=np.uint64),
            "ItemId": np.array([2**64 - 1, 3], dtype=np.uint64),
            "Time": [0.0, 1.0],
        }
    )
    with pytest.raises(ValueError, match="the DataFrame: column 'ItemId' holds 18"):
        read_events(frame)


def test_diginetica_ids_too_large(tmp_path):
    text = (
        "session_id;user_id;item_id;timeframe;eventdate\n"
        "1;NA;5;0;2016-05-09\n"
        "18446744073709551616;NA;6;1;2016-05-09\n"
    )
    with pytest.raises(ValueError, match="column 'session_id' holds 1844674407"):
        read_diginetica(write(tmp_path, text, "views.csv"))


def test_sessions_refuse_indices_outside_the_item_ids():
    with pytest.raises(ValueError, match=r"in \[0, 3\), got -1 at click 2"):
        Sessions(
            items=np.array([0, 2, -1], dtype=np.int64),
            offsets=np.array([0, 3], dtype=np.int64),
            item_ids=np.arange(3),
        )
    with pytest.raises(TypeError, match="items must be a 1-D int64 array"):
        Sessions(
            items=np.array([0.0, 1.0]),
            offsets=np.array([0, 2], dtype=np.int64),
            item_ids=np.arange(2),
        )


# -- lines that do not parse, encodings ---------------------------------------


def test_an_event_line_with_extra_fields_is_named(tmp_path):
    path = write(tmp_path, HEADER + "1\t2\t3\n1\t2\t3\t4\t5\n")
    with pytest.raises(ValueError, match="Expected 3 fields in line 3, saw 5"):
        read_events(path)


def test_bytes_that_are_not_utf8(tmp_path):
    path = write(tmp_path, HEADER.encode() + b"1\t2\t3\n1\t\xff\xfe\t4\n")
    with pytest.raises(ValueError, match="is not UTF-8 text: byte"):
        read_events(path)


def test_diginetica_with_bom_and_crlf(tmp_path):
    text = (
        "\ufeffsession_id;user_id;item_id;timeframe;eventdate\r\n"
        "1;NA;5;2000;2016-05-09\r\n"
        "1;NA;6;1000;2016-05-09\r\n"
    )
    sessions = read_diginetica(write(tmp_path, text.encode("utf-8"), "views.csv"))
    assert sessions.to_lists(raw=True) == [[6, 5]]  # sorted by time


# -- data that reads but is probably wrong -----------------------------------------


def test_duplicate_rows_are_kept_with_a_warning(tmp_path):
    rows = "1\t7\t10\n1\t8\t10\n1\t7\t10\n2\t5\t3\n2\t5\t4\n1\t7\t10\n"
    with pytest.warns(UserWarning, match="2 click.s. repeat an earlier click") as w:
        sessions = read_events(write(tmp_path, HEADER + rows))
    assert "first in session 1 (item 7, time 10.0)" in str(w[0].message)
    assert sessions.to_lists(raw=True) == [[5, 5], [7, 8, 7, 7]]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # same item, another time: no warning
        read_events(write(tmp_path, HEADER + "1\t7\t10\n1\t7\t11\n", "ok.tsv"))


@pytest.mark.parametrize("reader", ["lines", "events"])
def test_every_session_of_one_click_is_warned_about(tmp_path, reader):
    if reader == "lines":
        path, read = write(tmp_path, "1\n2\n3\n"), read_session_lines
    else:
        path, read = write(tmp_path, HEADER + "1\t5\t0\n2\t6\t1\n"), read_events
    with pytest.warns(UserWarning, match="every one of its .* sessions has a single"):
        sessions = read(path)
    with pytest.raises(ValueError, match="no session is left after filtering"):
        preprocess(sessions, test_fraction=0.5, min_item_support=1)


def test_a_test_set_with_no_known_items(tmp_path):
    train = read_session_lines(write(tmp_path, "1 2 3\n2 3\n", "train.txt"))
    test = read_session_lines(write(tmp_path, "7 8\n9 7 8\n", "test.txt"))
    with pytest.warns(UserWarning, match="none of the 5 test clicks is on an item"):
        split = index_test_like_train(train, test)
    assert split.test.n_sessions == 0 and split.n_unknown_clicks == 5


def test_the_command_line_refuses_a_test_set_with_no_known_items(tmp_path, capsys):
    from rnnrec.cli import main

    train = write(tmp_path, "1 2 3\n2 3 1\n3 1 2\n", "train.txt")
    test = write(tmp_path, "7 8\n9 7 8\n", "test.txt")
    status = main(
        ["train", str(train), "--test", str(test), "--quiet", "--layers", "4",
         "--n-sample", "2", "--n-epochs", "1"]
    )  # fmt: skip
    assert status == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "warning: none of the 5 test clicks is on an item" in err
    assert (
        err.strip()
        .splitlines()[-1]
        .startswith(
            f"rnnrec train: error: the test set ({test}) has no prediction left: 5 of"
        )
    )


# -- fuzzing -----------------------------------------------------------------------

# Bytes drawn mostly from the characters that matter to the formats.
ALPHABET = b"0123456789 \t\r\n-.,;eE+xN\xef\xbb\xbf\xff"
file_bytes = st.one_of(
    st.binary(max_size=80),
    st.lists(st.sampled_from(list(ALPHABET)), max_size=80).map(bytes),
)


def read_or_refuse(read, *args):
    """Read, allowing only the documented errors and one-line messages."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # doubtful data is allowed
        warnings.simplefilter("error", RuntimeWarning)  # numerical noise is not
        try:
            sessions = read(*args)
        except (ValueError, TypeError) as err:
            message = str(err)
            assert message, type(err)
            return None
    assert isinstance(sessions, Sessions)
    assert sessions.n_sessions >= 1
    assert np.all(sessions.lengths >= 1)
    return sessions


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(content=file_bytes)
def test_fuzz_session_lines(tmp_path_factory, content):
    path = write(tmp_path_factory.mktemp("fuzz"), content)
    sessions = read_or_refuse(read_session_lines, path)
    if sessions is not None:  # what was read is what the file says
        body = content.removeprefix(b"\xef\xbb\xbf").decode("ascii")
        lines = [line.split() for line in body.split("\n")]
        assert sessions.to_lists(raw=True) == [
            [int(i) for i in line] for line in lines if line
        ]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=file_bytes, diginetica=st.booleans())
def test_fuzz_event_files(tmp_path_factory, body, diginetica):
    folder = tmp_path_factory.mktemp("fuzz")
    if diginetica:
        header = b"session_id;user_id;item_id;timeframe;eventdate\n"
        read_or_refuse(read_diginetica, write(folder, header + body, "views.csv"))
    else:
        read_or_refuse(read_events, write(folder, HEADER.encode() + body, "log.tsv"))


cells = st.one_of(
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=4),
    st.booleans(),
    st.none(),
)
columns = st.one_of(
    st.lists(cells, min_size=1, max_size=6),
    st.lists(st.integers(-5, 5), min_size=1, max_size=6),
    st.lists(st.floats(-1e20, 1e20), min_size=1, max_size=6),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(session=columns, item=columns, time=columns)
def test_fuzz_event_frames(session, item, time):
    n = min(len(session), len(item), len(time))
    frame = pd.DataFrame(
        {"SessionId": session[:n], "ItemId": item[:n], "Time": time[:n]}
    )
    sessions = read_or_refuse(read_events, frame)
    if sessions is not None:
        assert sessions.n_clicks == n
        expected = pd.to_numeric(frame["ItemId"]).to_numpy().astype(np.int64)
        assert sorted(sessions.item_ids[sessions.items].tolist()) == sorted(
            expected.tolist()
        )

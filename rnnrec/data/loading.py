"""Reading click data from files: session lines, event logs and raw DIGINETICA.

Every reader returns a `Sessions` whose ``item_ids`` are the sorted distinct ids
found in the input and whose ``items`` index them. That index is provisional:
`rnnrec.data.index_test_like_train` (or `rnnrec.data.preprocess`) builds the
final one from the training data only.

Three layouts are understood:

- **session lines** (`read_session_lines`): one session per line, integer item
  ids separated by spaces or tabs, in click order; the format of the
  ``*_sessions.txt`` files of the SR-GNN-style splits. Plain NumPy, no pandas.
- **event logs** (`read_events`): one click per row with a session id, an item
  id and a time, GRU4Rec's tab-separated ``SessionId ItemId Time`` layout, or a
  pandas DataFrame holding such columns.
- **raw DIGINETICA** (`read_diginetica`): the CIKM Cup 2016 item views,
  ``session_id;user_id;item_id;timeframe;eventdate``.

The last two need pandas, an optional dependency (``pip install rnnrec[data]``).
"""

from __future__ import annotations

import codecs
import os
import re
import warnings

import numpy as np

from rnnrec.data.preprocess import sessions_from_events
from rnnrec.data.sessions import Sessions

__all__ = ["read_diginetica", "read_events", "read_session_lines"]

# Bytes a well-formed session-lines file may hold (after an optional BOM):
# digits, the minus sign, spaces, tabs and line ends.
_ALLOWED_BYTES = np.zeros(256, dtype=np.bool_)
_ALLOWED_BYTES[np.frombuffer(b"0123456789- \t\r\n", dtype=np.uint8)] = True

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_TOKEN = re.compile(r"-?[0-9]+")
_SEPARATOR = re.compile(r"[ \t]+")


def _existing_file(path, what):
    """Return ``path`` as a string after checking that it names a file."""
    try:
        path = os.fspath(path)
    except TypeError:
        raise TypeError(
            f"{what} must be a path (str or os.PathLike), got {type(path).__name__}"
        ) from None
    if not os.path.exists(path):
        raise FileNotFoundError(f"{what} not found: {path!r}")
    if os.path.isdir(path):
        raise IsADirectoryError(f"{what} is a directory, not a file: {path!r}")
    return path


# ---------------------------------------------------------------------------
# Session lines
# ---------------------------------------------------------------------------


def read_session_lines(path):
    r"""Read a file holding one session per line as item ids separated by spaces.

    The format: lines end with ``\n`` or ``\r\n``; on each line, integer item
    ids (``-?[0-9]+``, within int64) are separated by runs of spaces or tabs,
    in click order. A UTF-8 byte order mark at the start is ignored. Blank
    lines (empty or only spaces) are skipped without a warning: a session
    without clicks gives nothing to learn or evaluate. Each session keeps the
    number of its line as its session id, so skipped lines stay traceable.

    The parsing is vectorised (about 0.5 s per million clicks); only when the
    file is malformed does a line-by-line pass look for the first bad line.

    Parameters
    ----------
    path : str or os.PathLike
        The file.

    Returns
    -------
    Sessions
        Sessions in file order, without times. ``item_ids`` holds the sorted
        distinct ids of the file (int64), ``session_ids`` the 1-based line
        numbers.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file holds no session, or a line holds anything but integers
        (the message names the line and the offending text).

    Warns
    -----
    UserWarning
        If every session has a single click: there is nothing to predict.
    """
    path = _existing_file(path, "session file")
    with open(path, "rb") as f:
        data = f.read()
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]

    # Fast path: only legal bytes, every \r followed by \n, every token an int64.
    codes = np.frombuffer(data, dtype=np.uint8)  # (n_bytes,)
    values = None
    if _ALLOWED_BYTES[codes].all() and data.count(b"\r") == data.count(b"\r\n"):
        text = data.decode("ascii")
        try:
            values = np.array(text.split(), dtype=np.int64)  # (n_clicks,)
        except (ValueError, OverflowError):
            values = None
    if values is None:
        _raise_first_bad_line(data, path)

    lines = text.split("\n")
    if lines[-1].strip() == "":
        lines.pop()  # the text after the final line end is not a line
    counts = np.fromiter(
        (len(line.split()) for line in lines), dtype=np.int64, count=len(lines)
    )  # (n_lines,)
    if len(values) == 0:
        raise ValueError(
            f"session file {path!r} holds no session: it is empty or has only "
            "blank lines"
        )

    nonblank = counts > 0  # (n_lines,)
    offsets = np.zeros(int(nonblank.sum()) + 1, dtype=np.int64)  # (n_sessions + 1,)
    np.cumsum(counts[nonblank], out=offsets[1:])
    item_ids, items = np.unique(values, return_inverse=True)
    sessions = Sessions(
        items=items.astype(np.int64, copy=False).reshape(-1),
        offsets=offsets,
        item_ids=item_ids,
        session_ids=np.flatnonzero(nonblank).astype(np.int64) + 1,
    )
    source = f"session file {path!r}"
    _warn_if_doubtful(sessions, source, "does each line hold one whole session?")
    return sessions


def _warn_if_doubtful(sessions, source, hint):
    """Warn about data that reads well but is probably not what was meant.

    Two cases: every session has a single click (nothing to predict: the
    session column is often the wrong one), and clicks that repeat another
    click of their session on the same item at the same time (logging
    duplicates, usually; they are kept as repeated clicks).
    """
    if sessions.n_sessions and sessions.lengths.max() < 2:
        warnings.warn(
            f"{source}: every one of its {sessions.n_sessions} sessions has a "
            f"single click, so there is nothing to predict; {hint}",
            stacklevel=3,
        )
    if sessions.times is None:
        return
    n, first = _duplicate_clicks(sessions)
    if n:
        session = sessions.session_ids[
            np.searchsorted(sessions.offsets, first, "right") - 1
        ]
        item = sessions.item_ids[sessions.items[first]]
        warnings.warn(
            f"{source}: {n} click(s) repeat an earlier click of their session on "
            f"the same item at the same time, the first in session {session} "
            f"(item {item}, time {sessions.times[first]}); they are kept as "
            "repeated clicks: drop duplicate rows beforehand if they are logging "
            "errors",
            stacklevel=3,
        )


def _duplicate_clicks(sessions):
    """Count clicks equal to another of their session in item and time.

    Returns the count and the position of the first such click (-1 if none).
    Clicks are sorted by session and time, so duplicates lie in runs of equal
    (session, time); only the clicks of such runs are sorted by item.
    """
    session = sessions.session_index()  # (n_clicks,)
    times, items = sessions.times, sessions.items
    tie = (session[1:] == session[:-1]) & (times[1:] == times[:-1])  # (n_clicks - 1,)
    if not tie.any():
        return 0, -1
    in_run = np.zeros(len(items), dtype=np.bool_)  # (n_clicks,)
    in_run[1:] |= tie
    in_run[:-1] |= tie
    c = np.flatnonzero(in_run)  # the clicks of runs of ties
    c = c[np.lexsort((c, items[c], times[c], session[c]))]
    same = (
        (session[c[1:]] == session[c[:-1]])
        & (times[c[1:]] == times[c[:-1]])
        & (items[c[1:]] == items[c[:-1]])
    )
    if not same.any():
        return 0, -1
    return int(same.sum()), int(c[1:][same].min())


def _raise_first_bad_line(data, path):
    """Find the first malformed line of a session-lines file and raise for it."""
    text = data.decode("utf-8", errors="replace")
    for number, line in enumerate(text.split("\n"), start=1):
        if line.endswith("\r"):
            line = line[:-1]
        stripped = line.strip(" \t")
        if stripped == "":
            continue
        for token in _SEPARATOR.split(stripped):
            if not _TOKEN.fullmatch(token):
                raise ValueError(
                    f"session file {path!r}, line {number}: {_clip(token)!r} is not "
                    "an integer item id; each line must hold integers separated by "
                    f"spaces, got {_clip(line)!r}"
                )
            if not _INT64_MIN <= int(token) <= _INT64_MAX:
                raise ValueError(
                    f"session file {path!r}, line {number}: item id {_clip(token)} "
                    "does not fit in a 64-bit integer"
                )
    raise ValueError(f"session file {path!r} could not be parsed")  # unreachable


def _clip(text, width=60):
    """Shorten ``text`` for an error message."""
    return text if len(text) <= width else text[: width - 3] + "..."


# ---------------------------------------------------------------------------
# Event logs (pandas)
# ---------------------------------------------------------------------------


def _import_pandas(what):
    """Import pandas or explain how to install it."""
    try:
        import pandas as pd
    except ImportError as error:
        raise ImportError(
            f"{what} needs pandas, an optional dependency of rnnrec: "
            "pip install rnnrec[data]"
        ) from error
    return pd


def _read_table(pd, path, sep, what):
    """Read a delimited text file with pandas, turning its errors into ours."""
    path = _existing_file(path, what)
    if os.path.getsize(path) == 0:
        raise ValueError(f"{what} {path!r} is empty")
    try:
        return pd.read_csv(path, sep=sep, encoding="utf-8-sig")
    except pd.errors.EmptyDataError:
        raise ValueError(f"{what} {path!r} is empty") from None
    except pd.errors.ParserError as error:
        raise ValueError(f"{what} {path!r} could not be parsed: {error}") from None
    except UnicodeDecodeError as error:
        raise ValueError(
            f"{what} {path!r} is not UTF-8 text: byte {error.start} is "
            f"{error.object[error.start : error.start + 1]!r}"
        ) from None


def _check_columns(frame, required, source, sep=None):
    """Raise if ``frame`` lacks a required column, listing found and required."""
    found = [str(c) for c in frame.columns]
    missing = [c for c in required if c not in frame.columns]
    if missing:
        hint = ""
        if sep is not None and len(found) == 1:
            hint = f" (only one column was found: is the separator {sep!r} right?)"
        raise ValueError(
            f"{source} lacks the column(s) {missing}; required: {list(required)}, "
            f"found: {found}{hint}"
        )
    if len(frame) == 0:
        raise ValueError(f"{source} has the required columns but no rows")


def _first_row(mask):
    """Return the 1-based number of the first true entry of ``mask``."""
    return int(np.flatnonzero(mask)[0]) + 1


def _integer_column(pd, column, name, source):
    """Return a column of integer ids as int64, rejecting what is not one.

    Refused, with the first offending row: NaN and empty fields, anything that
    is not an integer, ids outside int64, and ids written as floating-point
    numbers from 2**53 on, which a float cannot hold exactly. Nothing is
    rounded or wrapped around.
    """
    missing = column.isna().to_numpy()  # (n_rows,)
    if missing.any():
        raise ValueError(
            f"{source}: column {name!r} has an empty or NaN value in data row "
            f"{_first_row(missing)} (rows counted from 1 after the header)"
        )
    if pd.api.types.is_bool_dtype(column.dtype):
        raise TypeError(f"{source}: column {name!r} must hold integer ids, got bool")
    numbers = column
    if not pd.api.types.is_integer_dtype(column.dtype):
        numbers = pd.to_numeric(column, errors="coerce")  # NaN where unparsable
    none = np.zeros(len(column), dtype=np.bool_)  # (n_rows,)
    if pd.api.types.is_integer_dtype(numbers.dtype):
        values = numbers.to_numpy()  # (n_rows,) int64, or uint64 beyond int64
        not_integer, inexact = none, none
        too_large = none
        if values.dtype == np.uint64:
            too_large = values > np.uint64(_INT64_MAX)
    else:
        values = numbers.to_numpy(dtype=np.float64, na_value=np.nan)  # (n_rows,)
        not_integer = ~np.isfinite(values) | (values != np.floor(values))
        too_large = ~not_integer & (np.abs(values) >= 2.0**63)
        inexact = ~not_integer & ~too_large & (np.abs(values) >= 2.0**53)
    problems = [
        (not_integer, "must hold integer ids, got {value!r} in data row {row}"),
        (too_large, "holds {value} in data row {row}, too large for a 64-bit id"),
        (
            inexact,
            "holds {value} in data row {row}: from 2**53 on, floating-point numbers "
            "skip integers, so write the ids as integers, without a decimal point",
        ),
    ]
    for bad, problem in problems:
        if bad.any():
            row = _first_row(bad)
            value = _clip(str(column.iloc[row - 1]))
            raise ValueError(
                f"{source}: column {name!r} {problem.format(value=value, row=row)} "
                "(rows counted from 1 after the header)"
            )
    return values.astype(np.int64)


def _time_column(pd, column, name, source):
    """Return a time column as float64 seconds (numbers, or datetimes since 1970)."""
    missing = column.isna().to_numpy()  # (n_rows,)
    if missing.any():
        raise ValueError(
            f"{source}: column {name!r} has an empty or NaN value in data row "
            f"{_first_row(missing)} (rows counted from 1 after the header)"
        )
    if pd.api.types.is_datetime64_any_dtype(column.dtype):
        stamps = column.dt.tz_convert("UTC") if column.dt.tz is not None else column
        ns = stamps.to_numpy(dtype="datetime64[ns]").astype(np.int64)  # (n_rows,)
        return ns / 1e9
    if pd.api.types.is_bool_dtype(column.dtype):
        raise TypeError(f"{source}: column {name!r} must hold times, got bool")
    numbers = pd.to_numeric(column, errors="coerce")
    values = numbers.to_numpy(dtype=np.float64, na_value=np.nan)  # (n_rows,)
    bad = ~np.isfinite(values)
    if bad.any():
        row = _first_row(bad)
        raise ValueError(
            f"{source}: column {name!r} must hold finite times in seconds (or "
            f"datetimes), got {_clip(str(column.iloc[row - 1]))!r} in data row "
            f"{row} (rows counted from 1 after the header)"
        )
    return values


def read_events(
    path_or_frame,
    *,
    session_key="SessionId",
    item_key="ItemId",
    time_key="Time",
    sep="\t",
):
    r"""Read a click log with one event per row into sessions.

    The default layout is GRU4Rec's: a header ``SessionId ItemId Time`` and
    tab-separated rows, times in seconds. Other columns are ignored. Clicks are
    grouped by session and stably sorted by time within it (ties keep the row
    order); sessions are ordered by the time of their first click, ties by
    session id. Needs pandas.

    Parameters
    ----------
    path_or_frame : str, os.PathLike or pandas.DataFrame
        A delimited text file with a header, or a DataFrame.
    session_key, item_key : str
        Names of the session id and item id columns; both must hold integers.
    time_key : str or None, default "Time"
        Name of the time column: numbers (seconds) or datetimes. ``None``
        reads no times and keeps the row order within each session, sessions
        then ordered by their first row.
    sep : str, default "\t"
        Field separator of a file.

    Returns
    -------
    Sessions
        With times (unless ``time_key`` is None) and the session ids of the log.

    Raises
    ------
    ImportError
        If pandas is not installed.
    FileNotFoundError
        If the file does not exist.
    ValueError
        If the file is empty or a line cannot be parsed (the message names the
        line), a column is missing (the message lists the columns found and
        the ones required), or a field is empty, NaN, not an integer where an
        id is required, or an id too large for int64 (the message names the
        data row). Ids may be negative: they are labels.
    TypeError
        If an id or time column of a DataFrame holds booleans.

    Warns
    -----
    UserWarning
        If every session has a single click (often the wrong session column),
        or clicks repeat another of their session in item and time (they are
        kept).
    """
    pd = _import_pandas("read_events")
    if isinstance(path_or_frame, pd.DataFrame):
        frame, source, file_sep = path_or_frame, "the DataFrame", None
    else:
        frame = _read_table(pd, path_or_frame, sep, "event file")
        source = f"event file {os.fspath(path_or_frame)!r}"
        file_sep = sep
    required = [session_key, item_key] + ([] if time_key is None else [time_key])
    _check_columns(frame, required, source, sep=file_sep)

    session_ids = _integer_column(pd, frame[session_key], session_key, source)
    item_ids = _integer_column(pd, frame[item_key], item_key, source)
    times = None
    if time_key is not None:
        times = _time_column(pd, frame[time_key], time_key, source)
    sessions = sessions_from_events(session_ids, item_ids, times)
    _warn_if_doubtful(sessions, source, f"is {session_key!r} the session column?")
    return sessions


DIGINETICA_COLUMNS = ("session_id", "item_id", "timeframe", "eventdate")


def read_diginetica(path):
    """Read the raw DIGINETICA (CIKM Cup 2016) item views into sessions.

    The file is ``;``-separated with the header
    ``session_id;user_id;item_id;timeframe;eventdate``: ``timeframe`` is the
    time in milliseconds since the session started and ``eventdate`` the date
    (``YYYY-MM-DD``) of the session; rows are not sorted within a session, and
    ``user_id`` (mostly ``NA``) is ignored. The time of a click is
    ``eventdate`` as seconds since 1970-01-01 (UTC midnight) plus
    ``timeframe / 1000``. Needs pandas.

    Parameters
    ----------
    path : str or os.PathLike
        The ``train-item-views.csv`` file (or a sample of it).

    Returns
    -------
    Sessions
        Sorted by time within sessions, sessions ordered by start time, with
        times in seconds and the file's session ids.

    Raises
    ------
    ImportError
        If pandas is not installed.
    FileNotFoundError
        If the file does not exist.
    ValueError
        If the file is empty, a line cannot be parsed, a column is missing, or
        a field is empty, an id is not an integer or too large for int64, a
        timeframe is not a number or a date is malformed.

    Warns
    -----
    UserWarning
        As `read_events`.
    """
    pd = _import_pandas("read_diginetica")
    frame = _read_table(pd, path, ";", "DIGINETICA file")
    source = f"DIGINETICA file {os.fspath(path)!r}"
    _check_columns(frame, DIGINETICA_COLUMNS, source, sep=";")

    session_ids = _integer_column(pd, frame["session_id"], "session_id", source)
    item_ids = _integer_column(pd, frame["item_id"], "item_id", source)
    timeframe = _time_column(pd, frame["timeframe"], "timeframe", source)  # ms

    text = frame["eventdate"]
    dates = pd.to_datetime(text, format="%Y-%m-%d", errors="coerce")
    bad = dates.isna().to_numpy()  # (n_rows,)
    if bad.any():
        row = _first_row(bad)
        raise ValueError(
            f"{source}: column 'eventdate' must hold dates as YYYY-MM-DD, got "
            f"{_clip(str(text.iloc[row - 1]))!r} in data row {row} "
            "(rows counted from 1 after the header)"
        )
    days = dates.to_numpy(dtype="datetime64[s]").astype(np.int64)  # (n_rows,)
    times = days.astype(np.float64) + timeframe / 1000.0  # (n_rows,)
    sessions = sessions_from_events(session_ids, item_ids, times)
    _warn_if_doubtful(sessions, source, "is this the item-views file?")
    return sessions

"""From raw clicks to a train/test split indexed by the training items.

The steps, each a function, in the order `preprocess` runs them:

1. `sessions_from_events`: group clicks by session, stably sorted by time
   within a session; sessions ordered by start time (the loaders call this).
2. `remove_consecutive_repeats` (optional): ``a a b a`` becomes ``a b a``.
3. `filter_sessions`: drop the clicks on items with fewer than
   ``min_item_support`` clicks and the sessions shorter than
   ``min_session_length``, again and again until neither removes anything
   (dropping a session can push an item below the threshold and back).
4. `split_by_time`: the test set is the sessions that start in the last
   ``test_days`` days, or the last ``test_fraction`` of sessions by start time.
5. `index_test_like_train`: the item index is built from the training clicks
   only; test clicks on items unknown to training are dropped and counted,
   then test sessions left shorter than 2 clicks are dropped. Data that comes
   already split (the ``*_sessions.txt`` files) starts here.

`session_stats` summarises a set of sessions; `TrainTest` holds the result with
the counts of what was dropped.
"""

from __future__ import annotations

import numbers
import warnings
from dataclasses import dataclass, field

import numpy as np

from rnnrec.data.batches import n_pairs
from rnnrec.data.sessions import Sessions

__all__ = [
    "SessionStats",
    "TrainTest",
    "filter_sessions",
    "index_test_like_train",
    "preprocess",
    "remove_consecutive_repeats",
    "session_stats",
    "sessions_from_events",
    "split_by_time",
]

SECONDS_PER_DAY = 86400.0
PERCENTILES = (5, 25, 75, 95, 99)


def _check_sessions(sessions, name="sessions"):
    if not isinstance(sessions, Sessions):
        raise TypeError(f"{name} must be a Sessions, got {type(sessions).__name__}")
    return sessions


def _check_count(value, name, minimum):
    """Return ``value`` as an int after checking it is an integer >= minimum."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    return int(value)


def _by_start_time(sessions):
    """Stably reorder non-empty sessions by their first click time, if timed.

    Dropping clicks can move a session's first click later; this restores
    the time order that splitting and batching rely on.
    """
    if sessions.times is None or sessions.n_sessions < 2:
        return sessions
    first_time = sessions.times[sessions.offsets[:-1]]  # (n_sessions,)
    if np.all(first_time[1:] >= first_time[:-1]):
        return sessions
    return sessions.select_sessions(np.argsort(first_time, kind="stable"))


# ---------------------------------------------------------------------------
# Grouping and cleaning
# ---------------------------------------------------------------------------


def sessions_from_events(session_ids, item_ids, times=None):
    """Group a click log into sessions sorted by time.

    Clicks are stably sorted by session, then time: clicks of one session at
    the same time keep their order in the log. Sessions are then ordered by
    the time of their first click, ties broken by session id. Without times,
    clicks keep their log order and sessions are ordered by their first click
    in the log.

    Parameters
    ----------
    session_ids : array_like
        ``(n_events,)`` session id of every click (any sortable type).
    item_ids : array_like
        ``(n_events,)`` item id of every click.
    times : array_like, optional
        ``(n_events,)`` click times, finite numbers (seconds).

    Returns
    -------
    Sessions
        ``item_ids`` is the sorted distinct item ids of the log.
    """
    session_ids = np.asarray(session_ids)
    item_ids = np.asarray(item_ids)
    n = len(item_ids)
    if session_ids.ndim != 1 or item_ids.ndim != 1 or len(session_ids) != n:
        raise ValueError(
            "session_ids and item_ids must be 1-D of equal length, got shapes "
            f"{session_ids.shape} and {item_ids.shape}"
        )
    if n == 0:
        raise ValueError("the click log holds no events")
    if times is not None:
        times = np.asarray(times, dtype=np.float64)
        if times.shape != (n,):
            raise ValueError(f"times must have shape ({n},), got {times.shape}")
        if not np.isfinite(times).all():
            raise ValueError("times must be finite, got NaN or infinity")

    # Clicks sorted by session then time; stable, so ties keep the log order.
    if times is None:
        order = np.argsort(session_ids, kind="stable")  # (n,)
    else:
        order = np.lexsort((times, session_ids))  # (n,)
    sorted_ids = session_ids[order]  # (n,)
    is_first = np.ones(n, dtype=np.bool_)  # (n,)
    is_first[1:] = sorted_ids[1:] != sorted_ids[:-1]
    starts = np.flatnonzero(is_first)  # (n_sessions,)
    lengths = np.diff(np.append(starts, n))  # (n_sessions,)

    # Sessions by start time (or first log position), ties by session id.
    first_key = order[starts] if times is None else times[order[starts]]
    by_start = np.lexsort((sorted_ids[starts], first_key))  # (n_sessions,)

    offsets = np.zeros(len(starts) + 1, dtype=np.int64)  # (n_sessions + 1,)
    np.cumsum(lengths[by_start], out=offsets[1:])
    shift = np.repeat(starts[by_start] - offsets[:-1], lengths[by_start])  # (n,)
    clicks = order[np.arange(n) + shift]  # (n,)

    unique_ids, items = np.unique(item_ids[clicks], return_inverse=True)
    return Sessions(
        items=items.astype(np.int64).reshape(-1),
        offsets=offsets,
        item_ids=unique_ids,
        times=None if times is None else times[clicks],
        session_ids=sorted_ids[starts][by_start],
    )


def remove_consecutive_repeats(sessions):
    """Collapse runs of the same item within a session to their first click.

    Parameters
    ----------
    sessions : Sessions
        The sessions.

    Returns
    -------
    Sessions
        Same sessions and item index, ``a a b b a`` becoming ``a b a``; the
        first click of a run keeps its time.
    """
    _check_sessions(sessions)
    items = sessions.items
    keep = np.ones(len(items), dtype=np.bool_)  # (n_clicks,)
    keep[1:] = items[1:] != items[:-1]
    starts = sessions.offsets[:-1][sessions.lengths > 0]
    keep[starts] = True  # a session's first click never repeats the previous one
    return sessions.select_clicks(keep)


def filter_sessions(sessions, *, min_item_support=5, min_session_length=2):
    """Drop rare items and short sessions until both conditions hold.

    Each round removes the clicks on items with fewer than
    ``min_item_support`` clicks, then the sessions with fewer than
    ``min_session_length`` clicks; rounds repeat until one removes nothing,
    so that every remaining item has enough clicks and every remaining
    session enough length. Sessions stay in time order: if they have times,
    they are reordered by their first remaining click. The item index is kept
    as it is (items may be left without clicks); the training index is built
    later, from the training split.

    Parameters
    ----------
    sessions : Sessions
        The sessions.
    min_item_support : int, default 5
        Least number of clicks an item needs to stay.
    min_session_length : int, default 2
        Least number of clicks a session needs to stay.

    Returns
    -------
    Sessions
        The remaining sessions, in their order.
    """
    _check_sessions(sessions)
    min_item_support = _check_count(min_item_support, "min_item_support", 1)
    min_session_length = _check_count(min_session_length, "min_session_length", 1)
    items = sessions.items
    session = sessions.session_index()  # (n_clicks,)
    keep = np.ones(sessions.n_clicks, dtype=np.bool_)  # (n_clicks,)
    while True:
        support = np.bincount(items[keep], minlength=sessions.n_items)  # (n_items,)
        rare = keep & (support[items] < min_item_support)  # (n_clicks,)
        keep &= ~rare
        length = np.bincount(session[keep], minlength=sessions.n_sessions)
        short = keep & (length[session] < min_session_length)  # (n_clicks,)
        keep &= ~short
        if not (rare.any() or short.any()):
            break
    kept = sessions.select_clicks(keep)
    return _by_start_time(kept.select_sessions(kept.lengths > 0))


# ---------------------------------------------------------------------------
# Splitting and indexing
# ---------------------------------------------------------------------------


def split_by_time(sessions, *, test_days=None, test_fraction=None):
    """Split sessions by their start time into train and test.

    Give exactly one of ``test_days`` (test = the sessions whose first click is
    within ``test_days`` days of the last click of the data, which needs
    times) or ``test_fraction`` (test = that share of the sessions, rounded
    up, that start last; without times the stored order is taken as time
    order). Both parts keep the stored order; empty sessions are dropped.

    Parameters
    ----------
    sessions : Sessions
        The sessions.
    test_days : float, optional
        Length of the test period in days, > 0.
    test_fraction : float, optional
        Share of sessions for the test set, in (0, 1).

    Returns
    -------
    tuple of Sessions
        ``(train, test)``, both with the item index of ``sessions``.

    Raises
    ------
    ValueError
        If both or neither option is given, a value is out of range, or one
        side of the split would be empty.
    """
    _check_sessions(sessions)
    if (test_days is None) == (test_fraction is None):
        raise ValueError(
            "give exactly one of test_days and test_fraction, got "
            f"test_days={test_days!r}, test_fraction={test_fraction!r}"
        )
    sessions = sessions.select_sessions(sessions.lengths > 0)
    if sessions.n_sessions < 2:
        raise ValueError(
            f"splitting needs at least 2 non-empty sessions, got {sessions.n_sessions}"
        )
    starts = sessions.offsets[:-1]  # (n_sessions,)
    if test_days is not None:
        if not isinstance(test_days, numbers.Real) or not test_days > 0:
            raise ValueError(f"test_days must be a number > 0, got {test_days!r}")
        if sessions.times is None:
            raise ValueError(
                "test_days needs click times, and these sessions have none; "
                "use test_fraction instead"
            )
        first_time = np.minimum.reduceat(sessions.times, starts)  # (n_sessions,)
        cut = sessions.times.max() - test_days * SECONDS_PER_DAY
        is_test = first_time >= cut  # (n_sessions,)
        rule = f"test_days={test_days}"
    else:
        if not isinstance(test_fraction, numbers.Real) or not 0 < test_fraction < 1:
            raise ValueError(
                f"test_fraction must be a number in (0, 1), got {test_fraction!r}"
            )
        n_test = int(np.ceil(test_fraction * sessions.n_sessions))
        if sessions.times is None:
            by_start = np.arange(sessions.n_sessions)  # (n_sessions,)
        else:
            first_time = np.minimum.reduceat(sessions.times, starts)
            by_start = np.argsort(first_time, kind="stable")  # (n_sessions,)
        is_test = np.zeros(sessions.n_sessions, dtype=np.bool_)  # (n_sessions,)
        is_test[by_start[sessions.n_sessions - n_test :]] = True
        rule = f"test_fraction={test_fraction}"

    n_test = int(is_test.sum())
    if n_test == 0 or n_test == sessions.n_sessions:
        side = "test" if n_test == 0 else "training"
        raise ValueError(
            f"{rule} leaves the {side} set empty ({n_test} of "
            f"{sessions.n_sessions} sessions in test)"
        )
    return sessions.select_sessions(~is_test), sessions.select_sessions(is_test)


def index_test_like_train(train, test, *, min_test_length=2):
    """Index both sets by the items of the training clicks; clean the test set.

    The new item index is the sorted distinct item ids clicked in ``train``.
    Test clicks on other items are dropped (their neighbours become adjacent,
    as in GRU4Rec's evaluation), then test sessions with fewer than
    ``min_test_length`` clicks are dropped; timed test sessions are reordered
    by their first remaining click. ``train`` and ``test`` may come
    with different provisional indices (e.g. each read by
    `read_session_lines`): items are matched by id.

    Parameters
    ----------
    train, test : Sessions
        The two sets, item ids of the same kind.
    min_test_length : int, default 2
        Least number of clicks a test session keeps to stay.

    Returns
    -------
    TrainTest
        The re-indexed sets and the counts of what was dropped.
    """
    _check_sessions(train, "train")
    _check_sessions(test, "test")
    min_test_length = _check_count(min_test_length, "min_test_length", 1)
    train_ids = train.item_ids[train.items]  # (n_train_clicks,)
    test_ids = test.item_ids[test.items]  # (n_test_clicks,)
    kinds = {train.item_ids.dtype.kind, test.item_ids.dtype.kind}
    if not (kinds <= set("iuf") or len(kinds) == 1):
        raise TypeError(
            "train and test item ids must be of one kind (numbers or strings), "
            f"got {train.item_ids.dtype} and {test.item_ids.dtype}"
        )

    item_ids, train_items = np.unique(train_ids, return_inverse=True)
    new_train = Sessions(
        items=train_items.astype(np.int64).reshape(-1),
        offsets=train.offsets,
        item_ids=item_ids,
        times=train.times,
        session_ids=train.session_ids,
    )

    # Look every test id up in the sorted training ids.
    position = np.searchsorted(item_ids, test_ids)  # (n_test_clicks,)
    if len(item_ids):
        position = np.minimum(position, len(item_ids) - 1)
        known = item_ids[position] == test_ids  # (n_test_clicks,)
    else:
        known = np.zeros(len(test_ids), dtype=np.bool_)
    if len(test_ids) and not known.any():
        warnings.warn(
            f"none of the {len(test_ids)} test clicks is on an item of the "
            "training data, so the test set is empty; do train and test come "
            "from the same data, with ids of the same kind?",
            stacklevel=2,
        )
    kept = test.select_clicks(known)
    indexed = Sessions(
        items=position[known].astype(np.int64),
        offsets=kept.offsets,
        item_ids=item_ids,
        times=kept.times,
        session_ids=kept.session_ids,
    )
    long_enough = indexed.lengths >= min_test_length  # (n_test_sessions,)
    return TrainTest(
        train=new_train,
        test=_by_start_time(indexed.select_sessions(long_enough)),
        n_unknown_clicks=int((~known).sum()),
        n_unknown_items=len(np.unique(test_ids[~known])),
        n_dropped_test_sessions=int((~long_enough).sum()),
        n_test_pairs_before=n_pairs(test),
    )


def preprocess(
    sessions,
    *,
    test_days=None,
    test_fraction=None,
    remove_repeats=False,
    min_item_support=5,
    min_session_length=2,
):
    """Clean, filter, split by time and index a set of sessions.

    Runs `remove_consecutive_repeats` (if asked), `filter_sessions`,
    `split_by_time` and `index_test_like_train`, in that order. The training
    set is not filtered again after the split.

    Parameters
    ----------
    sessions : Sessions
        Sessions in time order, e.g. from `rnnrec.data.read_events`.
    test_days, test_fraction : float, optional
        The split rule; give exactly one (see `split_by_time`).
    remove_repeats : bool, default False
        Collapse consecutive repeated clicks first.
    min_item_support : int, default 5
        Least number of clicks an item needs to stay.
    min_session_length : int, default 2
        Least number of clicks a session needs to stay.

    Returns
    -------
    TrainTest
        Train and test sharing the training item index, with counts.
    """
    _check_sessions(sessions)
    if remove_repeats:
        sessions = remove_consecutive_repeats(sessions)
    n_before = sessions.n_sessions
    sessions = filter_sessions(
        sessions,
        min_item_support=min_item_support,
        min_session_length=min_session_length,
    )
    if sessions.n_sessions == 0:
        raise ValueError(
            f"no session is left after filtering: none of the {n_before} "
            f"sessions has {min_session_length} or more clicks on items clicked "
            f"{min_item_support} or more times (min_session_length, "
            "min_item_support)"
        )
    train, test = split_by_time(
        sessions, test_days=test_days, test_fraction=test_fraction
    )
    return index_test_like_train(train, test)


# ---------------------------------------------------------------------------
# Statistics
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SessionStats:
    """Size and session-length distribution of a set of sessions.

    Attributes
    ----------
    n_sessions, n_clicks, n_pairs : int
        Sessions, clicks and (input, target) pairs (a session of length L
        gives L - 1).
    n_items : int
        Distinct items clicked (not the size of the item index).
    length_min, length_max : int
        Shortest and longest session (0 if there are none).
    length_median, length_mean : float
        Median and mean session length (NaN if there are none).
    length_percentiles : dict of int to float
        Session-length percentiles 5, 25, 75, 95 and 99.
    first_time, last_time : float or None
        Earliest and latest click time, if the sessions have times.
    """

    n_sessions: int
    n_clicks: int
    n_pairs: int
    n_items: int
    length_min: int
    length_median: float
    length_mean: float
    length_max: int
    length_percentiles: dict = field(default_factory=dict)
    first_time: float | None = None
    last_time: float | None = None

    def __str__(self):
        rows = [
            f"sessions  {self.n_sessions:,}",
            f"clicks    {self.n_clicks:,}",
            f"pairs     {self.n_pairs:,}",
            f"items     {self.n_items:,}",
        ]
        if self.n_sessions:
            rows.append(
                f"length    min {self.length_min}, median {self.length_median:g}, "
                f"mean {self.length_mean:.2f}, max {self.length_max}"
            )
            rows.append(
                "          "
                + ", ".join(f"p{p} {v:g}" for p, v in self.length_percentiles.items())
            )
        if self.first_time is not None:
            first = np.datetime64(int(self.first_time), "s")
            last = np.datetime64(int(self.last_time), "s")
            days = (self.last_time - self.first_time) / SECONDS_PER_DAY
            rows.append(f"time      {first} to {last} ({days:.1f} days)")
        return "\n".join(rows)


def session_stats(sessions):
    """Count sessions, clicks and items and describe the session lengths.

    Parameters
    ----------
    sessions : Sessions
        The sessions.

    Returns
    -------
    SessionStats
        The statistics; ``str()`` of it is a short readable table.
    """
    _check_sessions(sessions)
    lengths = sessions.lengths  # (n_sessions,)
    empty = len(lengths) == 0
    timed = sessions.times is not None and sessions.n_clicks > 0
    return SessionStats(
        n_sessions=sessions.n_sessions,
        n_clicks=sessions.n_clicks,
        n_pairs=n_pairs(sessions),
        n_items=len(np.unique(sessions.items)),
        length_min=0 if empty else int(lengths.min()),
        length_median=float("nan") if empty else float(np.median(lengths)),
        length_mean=float("nan") if empty else float(lengths.mean()),
        length_max=0 if empty else int(lengths.max()),
        length_percentiles={
            p: float("nan") if empty else float(np.percentile(lengths, p))
            for p in PERCENTILES
        },
        first_time=float(sessions.times.min()) if timed else None,
        last_time=float(sessions.times.max()) if timed else None,
    )


@dataclass(frozen=True)
class TrainTest:
    """A train/test split sharing the item index of the training data.

    Attributes
    ----------
    train, test : Sessions
        The two sets; ``train.item_ids is test.item_ids``.
    n_unknown_clicks : int
        Test clicks dropped because their item never occurs in training.
    n_unknown_items : int
        Distinct items of those clicks.
    n_dropped_test_sessions : int
        Test sessions dropped for being too short after that.
    n_test_pairs_before : int
        (input, target) pairs of the test set before anything was dropped;
        ``n_test_pairs`` counts them after.
    """

    train: Sessions
    test: Sessions
    n_unknown_clicks: int = 0
    n_unknown_items: int = 0
    n_dropped_test_sessions: int = 0
    n_test_pairs_before: int = 0

    @property
    def n_test_pairs(self):
        """int: (input, target) pairs of the test set, the predictions scored."""
        return n_pairs(self.test)

    def __str__(self):
        return "\n".join(
            [
                "train",
                _indent(str(session_stats(self.train))),
                "test",
                _indent(str(session_stats(self.test))),
                f"item index          {self.train.n_items:,} items (training)",
                f"unknown test clicks {self.n_unknown_clicks:,} on "
                f"{self.n_unknown_items:,} items, dropped",
                f"short test sessions {self.n_dropped_test_sessions:,}, dropped",
                f"test pairs          {self.n_test_pairs:,} of "
                f"{self.n_test_pairs_before:,}",
            ]
        )


def _indent(text, prefix="  "):
    return "\n".join(prefix + line for line in text.splitlines())

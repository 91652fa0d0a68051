"""Click sessions in compressed (offsets) form, the representation the package uses.

A data set of ``n_sessions`` sessions and ``n_clicks`` clicks is stored as::

    items    (n_clicks,)       int64   item index of every click, in [0, n_items)
    offsets  (n_sessions + 1,) int64   session s is items[offsets[s]:offsets[s + 1]]
    item_ids (n_items,)                the user's own id of every item index
    times    (n_clicks,)       float64 click times (seconds), or None if unknown
    session_ids (n_sessions,)          the user's own session ids, or None

Sessions are in time order (the order a time-based split and the session-parallel
batches rely on). Train and test of one data set share ``item_ids``: the item
index is built from the training data only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Sessions:
    """Click sessions, stored as one array of clicks and the offsets of sessions.

    Parameters
    ----------
    items : numpy.ndarray
        ``(n_clicks,)`` int64 item indices in ``[0, len(item_ids))``.
    offsets : numpy.ndarray
        ``(n_sessions + 1,)`` int64, starting at 0, non-decreasing, ending at
        ``n_clicks``.
    item_ids : numpy.ndarray
        ``(n_items,)`` the user's own item ids, index ``i`` naming item ``i``.
    times : numpy.ndarray, optional
        ``(n_clicks,)`` float64 click times.
    session_ids : numpy.ndarray, optional
        ``(n_sessions,)`` the user's own session ids.
    """

    items: np.ndarray
    offsets: np.ndarray
    item_ids: np.ndarray
    times: np.ndarray | None = None
    session_ids: np.ndarray | None = None

    def __post_init__(self):
        items, offsets = self.items, self.offsets
        if not (
            isinstance(items, np.ndarray)
            and items.ndim == 1
            and items.dtype == np.int64
        ):
            raise TypeError("items must be a 1-D int64 array")
        if not (
            isinstance(offsets, np.ndarray)
            and offsets.ndim == 1
            and offsets.dtype == np.int64
        ):
            raise TypeError("offsets must be a 1-D int64 array")
        if len(offsets) < 1 or offsets[0] != 0 or offsets[-1] != len(items):
            raise ValueError("offsets must start at 0 and end at the number of clicks")
        if np.any(np.diff(offsets) < 0):
            raise ValueError("offsets must be non-decreasing")
        if len(items) and (items.min() < 0 or items.max() >= len(self.item_ids)):
            bad = int(np.flatnonzero((items < 0) | (items >= len(self.item_ids)))[0])
            raise ValueError(
                f"items must index item_ids, in [0, {len(self.item_ids)}), got "
                f"{items[bad]} at click {bad}"
            )
        if self.times is not None and len(self.times) != len(items):
            raise ValueError("times must have one entry per click")
        if self.session_ids is not None and len(self.session_ids) != len(offsets) - 1:
            raise ValueError("session_ids must have one entry per session")

    @property
    def n_sessions(self):
        """int: number of sessions."""
        return len(self.offsets) - 1

    @property
    def n_clicks(self):
        """int: number of clicks."""
        return len(self.items)

    @property
    def n_items(self):
        """int: size of the item index (items known to training)."""
        return len(self.item_ids)

    @property
    def lengths(self):
        """numpy.ndarray: ``(n_sessions,)`` clicks per session."""
        return np.diff(self.offsets)

    def session(self, s):
        """Return the item indices of session ``s``.

        Parameters
        ----------
        s : int
            Session number, ``0 <= s < n_sessions``.

        Returns
        -------
        numpy.ndarray
            A view of ``items``.
        """
        return self.items[self.offsets[s] : self.offsets[s + 1]]

    def item_counts(self):
        """Count the clicks on every item.

        Returns
        -------
        numpy.ndarray
            ``(n_items,)`` int64.
        """
        return np.bincount(self.items, minlength=self.n_items).astype(np.int64)

    @classmethod
    def from_lists(cls, sessions, item_ids=None):
        """Build from a list of sessions, each a list of item indices.

        Parameters
        ----------
        sessions : list of list of int
            Item indices.
        item_ids : array_like, optional
            The ids of the item indices; default ``arange(max index + 1)``.

        Returns
        -------
        Sessions
            The sessions, without times.
        """
        lengths = np.array([len(s) for s in sessions], dtype=np.int64)
        offsets = np.zeros(len(sessions) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        items = np.fromiter(
            (i for s in sessions for i in s), dtype=np.int64, count=int(offsets[-1])
        )
        if item_ids is None:
            item_ids = np.arange(items.max() + 1 if len(items) else 0, dtype=np.int64)
        return cls(items=items, offsets=offsets, item_ids=np.asarray(item_ids))

    def session_index(self):
        """Return the session number of every click.

        Returns
        -------
        numpy.ndarray
            ``(n_clicks,)`` int64, non-decreasing.
        """
        return np.repeat(np.arange(self.n_sessions, dtype=np.int64), self.lengths)

    def select_sessions(self, which):
        """Return the sessions picked by ``which``, sharing ``item_ids``.

        Parameters
        ----------
        which : array_like
            A boolean mask of shape ``(n_sessions,)`` or an array of session
            numbers; the result follows its order.

        Returns
        -------
        Sessions
            The chosen sessions with their times and session ids.
        """
        which = np.asarray(which)
        if which.dtype == np.bool_:
            if which.shape != (self.n_sessions,):
                raise ValueError(
                    f"which: a boolean mask must have shape ({self.n_sessions},), "
                    f"got {which.shape}"
                )
            which = np.flatnonzero(which)
        which = which.astype(np.int64, copy=False)  # (n_chosen,)
        lengths = self.lengths[which]  # (n_chosen,)
        offsets = np.zeros(len(which) + 1, dtype=np.int64)  # (n_chosen + 1,)
        np.cumsum(lengths, out=offsets[1:])

        # Click c of the result comes from click c - offsets[s] + old start of s.
        shift = np.repeat(self.offsets[which] - offsets[:-1], lengths)  # (n_clicks',)
        clicks = np.arange(offsets[-1], dtype=np.int64) + shift  # (n_clicks',)
        return Sessions(
            items=self.items[clicks],
            offsets=offsets,
            item_ids=self.item_ids,
            times=None if self.times is None else self.times[clicks],
            session_ids=None if self.session_ids is None else self.session_ids[which],
        )

    def select_clicks(self, keep):
        """Return the sessions with only the clicks where ``keep`` is true.

        Sessions that lose every click stay, empty, so that session numbers keep
        their meaning; drop them with `select_sessions` if need be.

        Parameters
        ----------
        keep : numpy.ndarray
            ``(n_clicks,)`` bool.

        Returns
        -------
        Sessions
            The remaining clicks, sharing ``item_ids``.
        """
        keep = np.asarray(keep)
        if keep.dtype != np.bool_ or keep.shape != (self.n_clicks,):
            raise ValueError(
                f"keep must be a boolean mask of shape ({self.n_clicks},), "
                f"got dtype {keep.dtype.name} and shape {keep.shape}"
            )
        lengths = np.bincount(
            self.session_index()[keep], minlength=self.n_sessions
        )  # (n_sessions,)
        offsets = np.zeros(self.n_sessions + 1, dtype=np.int64)  # (n_sessions + 1,)
        np.cumsum(lengths, out=offsets[1:])
        return Sessions(
            items=self.items[keep],
            offsets=offsets,
            item_ids=self.item_ids,
            times=None if self.times is None else self.times[keep],
            session_ids=self.session_ids,
        )

    def to_lists(self, raw=False):
        """Return the sessions as lists of item indices (or of item ids).

        Parameters
        ----------
        raw : bool, default False
            Give the user's item ids instead of the item indices.

        Returns
        -------
        list of list
            One list per session.
        """
        values = self.item_ids[self.items] if raw else self.items
        return [
            values[a:b].tolist()
            for a, b in zip(self.offsets[:-1], self.offsets[1:], strict=True)
        ]

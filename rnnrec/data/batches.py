"""Session-parallel mini-batches, GRU4Rec's iterator in blocks of time steps.

B slots each hold one session. At every step each slot feeds the current click
of its session and targets the next one, so a session of L clicks gives L - 1
(input, target) pairs over L - 1 steps. When a slot's session has given its
last pair, the slot takes the next session (stored order, which is time order,
or a seeded permutation) at the following step, and ``reset`` marks that step:
the model zeroes the row's recurrent state before it. Three slots, sessions
``a``-``e`` of 4, 3, 2, 3 and 2 clicks (``a1`` is the first click of ``a``,
``*`` a reset)::

    step      0     1     2     3     4
    slot 0   *a1   a2    a3   *e1    -
    slot 1   *b1   b2   *d1   d2     -
    slot 2   *c1  *f1   ...

When no session is left, a slot that finishes becomes invalid for the rest
of the block and is dropped from the next one (GRU4Rec shrinks its batch in
the same way); ``carry`` tells, for each slot of a block, which slot of the
previous block it continues, so that the model keeps ``state[carry]``.
Iteration ends when no pair is left; every step of every block has at least
one valid pair.

With ``steps=1`` and the stored order, the pairs and the shrinking are those of
GRU4Rec's ``SessionDataIterator`` on the same sessions of length >= 2. Shorter
sessions give no pair and are skipped here before slots are filled; GRU4Rec
lets them pass through a slot for one round, which changes which slot takes
which later session, so its order matches ours on data without them (its
preprocessing removes them).

The schedule is worked out once per pass: a heap of (time the slot is free,
slot) hands each session to the slot that frees first, lower slots first on
ties, which is the step-by-step rule above. Blocks are then filled from the
pairs sorted by step.
"""

from __future__ import annotations

import heapq
import warnings
from dataclasses import dataclass

import numpy as np

from rnnrec._validation import as_rng, check_positive_int
from rnnrec.data.sessions import Sessions

__all__ = ["Batch", "n_pairs", "session_parallel_batches"]


@dataclass(frozen=True)
class Batch:
    """One block of ``T`` steps of ``B`` session-parallel slots.

    Entries where ``valid`` is false hold ``inputs = targets = 0`` (a real
    item index, so that lookups need no masking) and ``reset = False``; the
    model must ignore what it computes there.

    Attributes
    ----------
    inputs : numpy.ndarray
        ``(T, B)`` int64 item index fed at each step.
    targets : numpy.ndarray
        ``(T, B)`` int64 item index to predict: the click after the input.
    reset : numpy.ndarray
        ``(T, B)`` bool, true where a session starts: zero the row's state
        before step ``t``.
    valid : numpy.ndarray
        ``(T, B)`` bool, true where ``(inputs, targets)`` is a real pair.
    carry : numpy.ndarray
        ``(B,)`` int64: slot ``b`` continues slot ``carry[b]`` of the
        previous block (``arange(B)`` in the first block).
    """

    inputs: np.ndarray
    targets: np.ndarray
    reset: np.ndarray
    valid: np.ndarray
    carry: np.ndarray

    @property
    def n_valid(self):
        """int: number of real (input, target) pairs in the block."""
        return int(np.count_nonzero(self.valid))


def n_pairs(sessions):
    """Count the (input, target) pairs of the sessions, L - 1 per session.

    Parameters
    ----------
    sessions : Sessions
        The sessions.

    Returns
    -------
    int
        ``sum(max(L - 1, 0))`` over session lengths ``L``: the number of
        training pairs of a pass, or of predictions in an evaluation.
    """
    if not isinstance(sessions, Sessions):
        raise TypeError(f"sessions must be a Sessions, got {type(sessions).__name__}")
    return int(np.maximum(sessions.lengths - 1, 0).sum())


def session_parallel_batches(
    sessions, batch_size, *, steps=1, shuffle=False, seed=None
):
    """Iterate over the sessions in session-parallel blocks of ``steps`` steps.

    Parameters
    ----------
    sessions : Sessions
        The sessions, in time order.
    batch_size : int
        Number of slots B. If fewer sessions have at least 2 clicks, that many
        slots are used and a warning is issued.
    steps : int, default 1
        Time steps per block T (the truncated-BPTT window). The last block can
        be shorter: it ends with the last pair.
    shuffle : bool, default False
        Feed the sessions in a random order instead of the stored one.
    seed : None, int or numpy.random.Generator, optional
        Seed of that order; used only with ``shuffle=True``.

    Returns
    -------
    iterator of Batch
        Blocks whose valid entries hold every pair of every session exactly
        once, in order within a session. Arguments are checked at the call,
        not at the first ``next()``.

    Examples
    --------
    >>> from rnnrec.data import Sessions
    >>> s = Sessions.from_lists([[0, 1, 2], [3, 4], [5, 6, 7, 8]])
    >>> for batch in session_parallel_batches(s, 2):
    ...     print(batch.inputs[0], batch.targets[0], batch.reset[0], batch.carry)
    [0 3] [1 4] [ True  True] [0 1]
    [1 5] [2 6] [False  True] [0 1]
    [6] [7] [False] [1]
    [7] [8] [False] [0]
    """
    if not isinstance(sessions, Sessions):
        raise TypeError(f"sessions must be a Sessions, got {type(sessions).__name__}")
    batch_size = check_positive_int(batch_size, "batch_size")
    steps = check_positive_int(steps, "steps")
    rng = as_rng(seed)  # checked even when unused

    lengths = sessions.lengths  # (n_sessions,)
    usable = np.flatnonzero(lengths >= 2)  # (n_usable,)
    if shuffle:
        usable = rng.permutation(usable)
    n_slots = min(batch_size, len(usable))
    if n_slots < batch_size:
        warnings.warn(
            f"batch_size={batch_size} is larger than the number of sessions with "
            f"at least 2 clicks ({len(usable)}); using {n_slots} slots",
            stacklevel=2,
        )
    if n_slots == 0:
        return iter(())
    return _blocks(
        sessions.items, sessions.offsets[usable], lengths[usable] - 1, n_slots, steps
    )


def _schedule(pairs, n_slots):
    """Hand sessions to slots in order; return each one's slot and first step.

    Parameters
    ----------
    pairs : numpy.ndarray
        ``(n,)`` pairs of each session, in feeding order, all >= 1.
    n_slots : int
        Number of slots.

    Returns
    -------
    slot, start : numpy.ndarray
        ``(n,)`` slot and step of each session's first pair.
    free : numpy.ndarray
        ``(n_slots,)`` the step at which each slot runs out of sessions.
    """
    heap = [(0, b) for b in range(n_slots)]  # a sorted list is a heap
    slot, start = [], []
    for p in pairs.tolist():
        t, b = heap[0]  # the slot that frees first; lowest index on ties
        slot.append(b)
        start.append(t)
        heapq.heapreplace(heap, (t + p, b))
    free = np.empty(n_slots, dtype=np.int64)  # (n_slots,)
    for t, b in heap:
        free[b] = t
    return np.array(slot, dtype=np.int64), np.array(start, dtype=np.int64), free


def _blocks(items, first_click, pairs, n_slots, steps):
    """Yield the Batch blocks of the sessions starting at ``first_click``."""
    slot, start, free = _schedule(pairs, n_slots)

    # Every pair: its session (in feeding order), position j, step and slot.
    owner = np.repeat(np.arange(len(pairs)), pairs)  # (P,)
    pair_offsets = np.zeros(len(pairs) + 1, dtype=np.int64)  # (n + 1,)
    np.cumsum(pairs, out=pair_offsets[1:])
    j = np.arange(pair_offsets[-1], dtype=np.int64) - pair_offsets[owner]  # (P,)
    step = start[owner] + j  # (P,)
    by_step = np.argsort(step, kind="stable")  # (P,)
    step = step[by_step]
    column = slot[owner[by_step]]  # (P,)
    click = (first_click[owner] + j)[by_step]  # (P,)
    first = (j == 0)[by_step]  # (P,)
    del owner, j, by_step

    n_steps = int(free.max())
    bounds = np.searchsorted(step, np.arange(0, n_steps + steps, steps))
    previous = None
    for k, t0 in enumerate(range(0, n_steps, steps)):
        T = min(steps, n_steps - t0)
        present = np.flatnonzero(free > t0)  # (B,) slots with a pair at t0
        B = len(present)
        position = np.empty(n_slots, dtype=np.int64)  # (n_slots,)
        position[present] = np.arange(B)

        lo, hi = bounds[k], bounds[k + 1]
        rows = step[lo:hi] - t0  # (n_block,)
        cols = position[column[lo:hi]]  # (n_block,)
        inputs = np.zeros((T, B), dtype=np.int64)  # (T, B)
        targets = np.zeros((T, B), dtype=np.int64)  # (T, B)
        reset = np.zeros((T, B), dtype=np.bool_)  # (T, B)
        valid = np.zeros((T, B), dtype=np.bool_)  # (T, B)
        inputs[rows, cols] = items[click[lo:hi]]
        targets[rows, cols] = items[click[lo:hi] + 1]
        reset[rows, cols] = first[lo:hi]
        valid[rows, cols] = True

        if previous is None:
            carry = np.arange(B, dtype=np.int64)  # (B,)
        else:
            carry = np.searchsorted(previous, present).astype(np.int64)  # (B,)
        yield Batch(
            inputs=inputs, targets=targets, reset=reset, valid=valid, carry=carry
        )
        previous = present

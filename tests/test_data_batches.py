"""Session-parallel batches against two slow references and their invariants.

The references, kept here and sharing nothing with rnnrec.data.batches:

- `step_by_step`: slots as Python lists advanced one click at a time; a slot
  that ends takes the next session, or is dropped after the block.
- `gru4rec_rounds`: GRU4Rec's round-based iterator (advance every slot by the
  shortest remaining session, then refill the finished slots in slot order and
  keep only the slots that still have a session), with its state handling
  (zero the finished rows, then keep the valid rows).
"""

import os
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnrec.data import (
    Batch,
    Sessions,
    n_pairs,
    read_session_lines,
    session_parallel_batches,
)

DATA = os.path.join(os.path.dirname(os.path.dirname(__file__)), "..", "shared", "data")
YOOCHOOSE = os.path.join(DATA, "yoochoose1_64", "train_sessions.txt")


def unique_click_sessions(lengths):
    """Sessions whose clicks are items 0, 1, 2, ...: a pair names its click."""
    items, start = [], 0
    for length in lengths:
        items.append(list(range(start, start + length)))
        start += length
    return Sessions.from_lists(items, item_ids=np.arange(max(start, 1)))


def collect(sessions, batch_size, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return list(session_parallel_batches(sessions, batch_size, **kwargs))


# ---------------------------------------------------------------------------
# Reference 1: step by step
# ---------------------------------------------------------------------------


def step_by_step(session_lists, batch_size, steps, order):
    """Return the blocks as lists of (inputs, targets, reset, valid, carry)."""
    queue = [session_lists[i] for i in order if len(session_lists[i]) >= 2]
    n_slots = min(batch_size, len(queue))
    slots = {}  # slot -> [session, position] or None
    for b in range(n_slots):
        slots[b] = [queue[b], 0]
    taken = n_slots
    alive, previous, blocks = list(range(n_slots)), None, []
    while alive:
        rows = []
        for _ in range(steps):
            if all(slots[b] is None for b in alive):
                break
            row = []
            for b in alive:
                if slots[b] is None:
                    row.append((0, 0, False, False))
                    continue
                session, position = slots[b]
                pair = (session[position], session[position + 1])
                row.append((*pair, position == 0, True))
                if position + 2 < len(session):
                    slots[b] = [session, position + 1]
                elif taken < len(queue):  # its last pair was just fed: refill
                    slots[b] = [queue[taken], 0]
                    taken += 1
                else:
                    slots[b] = None
            rows.append(row)
        carry = (
            list(range(len(alive)))
            if previous is None
            else [previous.index(b) for b in alive]
        )
        blocks.append(
            tuple(
                np.array([[entry[k] for entry in row] for row in rows])
                for k in range(4)
            )
            + (np.array(carry),)
        )
        previous = alive
        alive = [b for b in alive if slots[b] is not None]
    return blocks


def assert_same_blocks(batches, blocks):
    assert len(batches) == len(blocks)
    for batch, (inputs, targets, reset, valid, carry) in zip(
        batches, blocks, strict=True
    ):
        np.testing.assert_array_equal(batch.inputs, inputs)
        np.testing.assert_array_equal(batch.targets, targets)
        np.testing.assert_array_equal(batch.reset, reset.astype(bool))
        np.testing.assert_array_equal(batch.valid, valid.astype(bool))
        np.testing.assert_array_equal(batch.carry, carry)


# ---------------------------------------------------------------------------
# Reference 2: GRU4Rec's rounds
# ---------------------------------------------------------------------------


def gru4rec_rounds(sessions, batch_size):
    """Return per step: inputs, targets, and the (keep, zero) applied before it."""
    offsets, items = sessions.offsets, sessions.items
    n = sessions.n_sessions
    slot_session = np.arange(batch_size)
    last_taken = batch_size - 1
    start = offsets[slot_session].copy()
    end = offsets[slot_session + 1].copy()
    steps, state_ops = [], {}
    while True:
        shortest = int((end - start).min())
        for i in range(shortest - 1):
            steps.append((items[start + i], items[start + i + 1]))
        start = start + shortest - 1
        finished = end - start <= 1
        n_finished = int(finished.sum())
        slot_session[finished] = last_taken + 1 + np.arange(n_finished)
        last_taken += n_finished
        valid = slot_session < n
        if not valid.any():
            break
        refill = finished & valid
        start[refill] = offsets[slot_session[refill]]
        end[refill] = offsets[slot_session[refill] + 1]
        # The model zeroes the finished rows, then keeps the valid ones.
        state_ops[len(steps)] = (np.flatnonzero(valid), finished[valid])
        slot_session, start, end = slot_session[valid], start[valid], end[valid]
    return steps, state_ops


def assert_matches_gru4rec(sessions, batch_size):
    batches = collect(sessions, batch_size)
    steps, state_ops = gru4rec_rounds(sessions, batch_size)
    assert len(batches) == len(steps)
    for s, (batch, (inputs, targets)) in enumerate(zip(batches, steps, strict=True)):
        assert batch.valid.all()  # with steps=1 every slot of a block is busy
        np.testing.assert_array_equal(batch.inputs[0], inputs)
        np.testing.assert_array_equal(batch.targets[0], targets)
        if s == 0:
            assert batch.reset.all()
        elif s in state_ops:
            keep, zero = state_ops[s]
            np.testing.assert_array_equal(batch.carry, keep)
            np.testing.assert_array_equal(batch.reset[0], zero)
        else:
            np.testing.assert_array_equal(batch.carry, np.arange(len(inputs)))
            assert not batch.reset.any()


# ---------------------------------------------------------------------------
# Invariants
# ---------------------------------------------------------------------------


def check_invariants(lengths, batches, steps):
    """Every pair once and in order, resets at starts, state continuity."""
    sessions = unique_click_sessions(lengths)
    session_of = sessions.session_index()
    first_click = sessions.offsets[:-1]
    seen = np.zeros(sessions.n_clicks, dtype=int)
    last_seen = {}  # session -> (block, step, click) of its previous pair
    label = None  # the session whose state each slot carries
    widths = []
    for k, batch in enumerate(batches):
        assert isinstance(batch, Batch)
        T, B = batch.inputs.shape
        widths.append(B)
        assert 1 <= T <= steps
        assert batch.carry.shape == (B,)
        assert np.all(batch.valid.any(axis=1))  # no step without a pair
        assert not batch.inputs[~batch.valid].any()
        assert not batch.reset[~batch.valid].any()
        if k == 0:
            np.testing.assert_array_equal(batch.carry, np.arange(B))
            assert batch.reset[0].all()
            label = np.full(B, -1)
        else:
            assert np.all(np.diff(batch.carry) > 0)  # order kept, no slot twice
            label = label[batch.carry]
        for t in range(T):
            for b in range(B):
                if not batch.valid[t, b]:
                    continue
                click = batch.inputs[t, b]
                s = session_of[click]
                assert batch.targets[t, b] == click + 1
                assert session_of[click + 1] == s
                assert batch.reset[t, b] == (click == first_click[s])
                if batch.reset[t, b]:
                    label[b] = s
                assert label[b] == s  # the state reaching this step is s's
                if s in last_seen:
                    assert last_seen[s] < (k, t, click)
                    assert last_seen[s][2] == click - 1
                last_seen[s] = (k, t, click)
                seen[click] += 1
        if k + 1 < len(batches):
            assert T == steps  # only the last block may be short
    # Every click but the last of each session was fed exactly once.
    expected = np.ones(sessions.n_clicks, dtype=int)
    expected[sessions.offsets[1:][np.asarray(lengths) > 0] - 1] = 0
    np.testing.assert_array_equal(seen, expected)
    assert all(a >= b for a, b in zip(widths, widths[1:], strict=False))
    assert sum(batch.n_valid for batch in batches) == n_pairs(sessions)


# ---------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------


def test_docstring_example_by_hand():
    sessions = Sessions.from_lists([[0, 1, 2], [3, 4], [5, 6, 7, 8]])
    batches = collect(sessions, 2)
    assert [b.inputs.tolist() for b in batches] == [[[0, 3]], [[1, 5]], [[6]], [[7]]]
    assert [b.targets.tolist() for b in batches] == [[[1, 4]], [[2, 6]], [[7]], [[8]]]
    assert [b.reset.tolist() for b in batches] == [
        [[True, True]],
        [[False, True]],
        [[False]],
        [[False]],
    ]
    assert [b.carry.tolist() for b in batches] == [[0, 1], [0, 1], [1], [0]]


def test_blocks_of_three_steps_by_hand():
    # Sessions of 4, 3, 2, 3, 2 clicks: 0-3, 4-6, 7-8, 9-11, 12-13.
    sessions = unique_click_sessions([4, 3, 2, 3, 2])
    (batch,) = collect(sessions, 3, steps=3)
    # Slot 2 ends after step 0 and takes session 3; slot 1 ends after step 1
    # and takes session 4; at step 2 all three end, with nothing left.
    assert batch.inputs.tolist() == [[0, 4, 7], [1, 5, 9], [2, 12, 10]]
    assert batch.targets.tolist() == [[1, 5, 8], [2, 6, 10], [3, 13, 11]]
    assert batch.reset.astype(int).tolist() == [[1, 1, 1], [0, 0, 1], [0, 1, 0]]
    assert batch.valid.all()
    assert batch.n_valid == n_pairs(sessions) == 9


def test_dropped_slots_and_carry_by_hand():
    # Slot 0 holds a long session; slot 1 runs out after two short ones.
    sessions = unique_click_sessions([6, 2, 2])
    batches = collect(sessions, 2, steps=2)
    assert [b.inputs.shape for b in batches] == [(2, 2), (2, 1), (1, 1)]
    assert batches[0].inputs.tolist() == [[0, 6], [1, 8]]
    assert batches[0].reset.tolist() == [[True, True], [False, True]]
    assert batches[1].carry.tolist() == [0]
    assert batches[1].inputs.tolist() == [[2], [3]]
    assert batches[2].inputs.tolist() == [[4]]
    assert batches[2].targets.tolist() == [[5]]


def test_invalid_tail_of_a_block():
    # Slot 1 finishes in the middle of the block with no session left.
    sessions = unique_click_sessions([5, 2])
    (first, second) = collect(sessions, 2, steps=3)
    assert first.valid.tolist() == [[True, True], [True, False], [True, False]]
    assert first.inputs[1:, 1].tolist() == [0, 0]
    assert second.carry.tolist() == [0]
    assert second.inputs.tolist() == [[3]]


@settings(max_examples=300, deadline=None)
@given(
    lengths=st.lists(st.integers(0, 8), max_size=25),
    batch_size=st.integers(1, 8),
    steps=st.integers(1, 6),
    shuffle=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_matches_step_by_step_reference(lengths, batch_size, steps, shuffle, seed):
    sessions = unique_click_sessions(lengths)
    batches = collect(sessions, batch_size, steps=steps, shuffle=shuffle, seed=seed)
    usable = np.flatnonzero(np.asarray(lengths, dtype=int) >= 2)
    order = (
        np.random.default_rng(seed).permutation(usable)
        if shuffle
        else np.arange(len(lengths))
    )
    blocks = step_by_step(sessions.to_lists(), batch_size, steps, order)
    assert_same_blocks(batches, blocks)
    check_invariants(lengths, batches, steps)


@settings(max_examples=200, deadline=None)
@given(
    lengths=st.lists(st.integers(2, 9), min_size=1, max_size=30),
    batch_size=st.integers(1, 8),
)
def test_matches_gru4rec_rounds(lengths, batch_size):
    sessions = unique_click_sessions(lengths)
    assert_matches_gru4rec(sessions, min(batch_size, len(lengths)))


def test_sessions_shorter_than_two_are_skipped():
    with_short = Sessions.from_lists([[0, 1], [2], [], [3, 4, 5], [6], [7, 8]])
    without = Sessions.from_lists([[0, 1], [3, 4, 5], [7, 8]], item_ids=np.arange(9))
    a, b = collect(with_short, 2, steps=2), collect(without, 2, steps=2)
    assert len(a) == len(b) == 1
    for x, y in zip(a, b, strict=True):
        for name in ("inputs", "targets", "reset", "valid", "carry"):
            np.testing.assert_array_equal(getattr(x, name), getattr(y, name))
    assert n_pairs(with_short) == n_pairs(without) == 4


def test_n_pairs():
    assert n_pairs(Sessions.from_lists([[1, 2, 3], [4], [], [5, 6]])) == 3
    assert n_pairs(Sessions.from_lists([])) == 0
    with pytest.raises(TypeError, match="Sessions"):
        n_pairs([[1, 2]])


def test_shuffle_is_seeded():
    sessions = unique_click_sessions([3, 4, 2, 5, 2, 3, 6, 2])

    def firsts(batches):
        return [b.inputs[b.reset].tolist() for b in batches]

    a = collect(sessions, 3, shuffle=True, seed=7)
    b = collect(sessions, 3, shuffle=True, seed=7)
    c = collect(sessions, 3, shuffle=True, seed=8)
    plain = collect(sessions, 3, seed=7)
    assert firsts(a) == firsts(b)
    assert firsts(a) != firsts(c)
    # Without shuffle the seed is ignored: sessions start in stored order.
    starts = [x for block in firsts(plain) for x in block]
    assert starts == [0, 3, 7, 9, 14, 16, 19, 25]


def test_more_slots_than_sessions_warns():
    sessions = Sessions.from_lists([[0, 1], [2, 3, 4], [5]])
    with pytest.warns(UserWarning, match=r"batch_size=10 .*\(2\); using 2 slots"):
        batches = list(session_parallel_batches(sessions, 10))
    assert [b.inputs.shape[1] for b in batches] == [2, 1]
    with pytest.warns(UserWarning, match=r"\(0\); using 0 slots"):
        assert list(session_parallel_batches(Sessions.from_lists([[1]]), 4)) == []


def test_arguments_are_checked_at_the_call():
    sessions = Sessions.from_lists([[0, 1]])
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        session_parallel_batches(sessions, 0)
    with pytest.raises(TypeError, match="batch_size"):
        session_parallel_batches(sessions, True)
    with pytest.raises(ValueError, match="steps must be a positive integer, got -1"):
        session_parallel_batches(sessions, 1, steps=-1)
    with pytest.raises(TypeError, match="sessions must be a Sessions, got list"):
        session_parallel_batches([[0, 1]], 1)
    with pytest.raises(TypeError, match="seed"):
        session_parallel_batches(sessions, 1, shuffle=True, seed="x")


def test_dtypes_and_shapes():
    sessions = unique_click_sessions([3, 4, 5, 2])
    for batch in collect(sessions, 3, steps=2):
        assert batch.inputs.dtype == batch.targets.dtype == np.int64
        assert batch.carry.dtype == np.int64
        assert batch.reset.dtype == batch.valid.dtype == np.bool_
        assert batch.inputs.shape == batch.targets.shape == batch.valid.shape


@pytest.mark.skipif(
    not os.path.exists(YOOCHOOSE), reason=f"real data not found at {DATA}"
)
def test_yoochoose_matches_gru4rec_rounds():
    sessions = read_session_lines(YOOCHOOSE)
    assert_matches_gru4rec(sessions, 32)
    batches = collect(sessions, 50, steps=8, shuffle=True, seed=3)
    assert sum(b.n_valid for b in batches) == n_pairs(sessions) == 369_859

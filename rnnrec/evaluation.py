"""Next-click evaluation of any scorer over test sessions, in session-parallel slots.

The protocol of the session-recommendation literature: every prefix of a test
session predicts the click that follows it, so a session of ``n`` clicks makes
``n - 1`` predictions (sessions of fewer than 2 clicks make none), each target
ranked among all items.

`evaluate_next_click` runs the scorer over ``B`` slots at once, each slot
holding one session. At every step slot ``b`` feeds its current click and is
scored on the next one. When a session has no further target its slot takes
the next session (``reset`` true at its first click); when no sessions are
left the finished slots are dropped and the scorer is told which slots remain
(``carry_state``). Every prediction is made exactly once; for a scorer whose
slots do not interact (all of the package's), the result does not depend on
``batch_size``. The scorer interface is described in `rnnrec.baselines`.

Memory: each step holds the ``(B, V)`` scores of its slots, so a large
catalogue lowers ``B`` until they fit in ``max_score_bytes``.
"""

from __future__ import annotations

import numpy as np

from rnnrec._validation import check_choice, check_positive_int
from rnnrec.data.sessions import Sessions
from rnnrec.metrics import TIES, MetricAccumulator, _check_cutoffs, target_ranks

MAX_SCORE_BYTES = 2**28  # 256 MiB for the (B, V) scores of one step


def evaluate_next_click(
    scorer,
    test,
    *,
    cutoffs=(5, 10, 20),
    ties="standard",
    batch_size=256,
    max_score_bytes=MAX_SCORE_BYTES,
):
    """Rank every next click of the test sessions and average the metrics.

    Parameters
    ----------
    scorer : object
        A fitted scorer with ``n_items``, ``init_state``, ``carry_state`` and
        ``score_next`` (see `rnnrec.baselines`).
    test : Sessions
        Test sessions over the scorer's item index (items the scorer does not
        know must be removed beforehand).
    cutoffs : int or sequence of int, default (5, 10, 20)
        List lengths ``K`` of the metrics.
    ties : {"standard", "conservative", "median"}, default "standard"
        How items scored equal to the target count, see
        `rnnrec.metrics.target_ranks`.
    batch_size : int, default 256
        Number of session-parallel slots ``B``.
    max_score_bytes : int, default 2**28 (256 MiB)
        Memory allowed for the ``(B, V)`` scores of one step: ``B`` is lowered
        (to 1 at the least) so that ``B * V`` scores fit, counted in the
        scorer's ``dtype`` (8 bytes if it has none). A million float32 items
        take 4 MB a slot, so 67 slots by default. The ranks do not depend on
        ``B``.

    Returns
    -------
    dict
        ``"recall@K"``, ``"mrr@K"`` and ``"ndcg@K"`` for every cutoff, and
        ``"n"``, the number of predictions (NaN metrics if ``n`` is 0).

    Examples
    --------
    >>> from rnnrec.baselines import Markov
    >>> from rnnrec.data.sessions import Sessions
    >>> train = Sessions.from_lists([[0, 1, 2, 3], [0, 1, 2]])
    >>> test = Sessions.from_lists([[0, 1, 2, 3], [2, 3]], item_ids=train.item_ids)
    >>> result = evaluate_next_click(Markov().fit(train), test, cutoffs=1)
    >>> result["recall@1"], result["n"]
    (1.0, 4)
    """
    if not isinstance(test, Sessions):
        raise TypeError(
            f"test must be a rnnrec.data.sessions.Sessions, got {type(test).__name__}"
        )
    cutoffs = _check_cutoffs(cutoffs)
    check_choice(ties, "ties", TIES)
    batch_size = check_positive_int(batch_size, "batch_size")
    max_score_bytes = check_positive_int(max_score_bytes, "max_score_bytes")
    V = scorer.n_items
    if test.n_clicks and test.items.max() >= V:
        n_unknown = int(np.count_nonzero(test.items >= V))
        raise ValueError(
            f"test has {n_unknown} click(s) on items >= the scorer's n_items={V}; "
            f"remove items unknown to training before evaluating"
        )

    # Sessions with at least one target, as [start, end) click ranges.
    long_enough = test.lengths >= 2  # (n_sessions,)
    starts = test.offsets[:-1][long_enough]  # (n_eval,)
    ends = test.offsets[1:][long_enough]  # (n_eval,)
    acc = MetricAccumulator(cutoffs)
    n_eval = len(starts)
    if n_eval == 0:
        return acc.result()

    score_bytes = V * np.dtype(getattr(scorer, "dtype", np.float64)).itemsize
    B = min(batch_size, n_eval, max(1, max_score_bytes // score_bytes))
    session = np.arange(B)  # (B,) session of every slot, into starts/ends
    pos = starts[:B].copy()  # (B,) click each slot feeds at this step
    reset = np.ones(B, dtype=bool)  # (B,)
    next_session = B
    state = scorer.init_state(B)
    while len(session):
        B = len(session)
        scores, state = scorer.score_next(state, test.items[pos], reset)
        if not (isinstance(scores, np.ndarray) and scores.shape == (B, V)):
            got = scores.shape if isinstance(scores, np.ndarray) else type(scores)
            raise ValueError(
                f"scorer.score_next must return scores of shape ({B}, {V}), got {got}"
            )
        acc.add(target_ranks(scores, test.items[pos + 1], ties))
        del scores  # free before the next step's are made: one (B, V) at a time

        # Step on; a slot whose session has no further target takes a new one.
        pos += 1
        reset[:] = False
        for b in np.flatnonzero(pos + 1 >= ends[session]):
            if next_session < n_eval:
                session[b] = next_session
                pos[b] = starts[next_session]
                reset[b] = True
                next_session += 1
            else:
                session[b] = -1  # no sessions left: drop the slot

        if session.min() < 0:
            carry = np.flatnonzero(session >= 0)  # (B',)
            session, pos, reset = session[carry], pos[carry], reset[carry]
            if len(carry):
                state = scorer.carry_state(state, carry)
    return acc.result()

"""The compiled losses (`rnnrec.kernels.losses`) against the NumPy ones.

`tests/test_losses.py` checks the NumPy losses against finite differences,
PyTorch and loops. Here the compiled kernels behind ``backend="numba"`` must give
the same numbers: to rounding in float64, on random, hypothesis-drawn and
extreme scores (where BPR-max falls back to log space), and closer to the float64
truth than NumPy's float32 passes when the scores are float32. On top: their own
finite-difference check, the threads, and the errors.
"""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnrec.gradcheck import check_gradients, normwise_relative_error
from rnnrec.kernels import _jit
from rnnrec.kernels import losses as compiled
from rnnrec.losses import COMPILED, get_loss
from tests.test_losses import (
    ACTIVATIONS,
    BIG,
    NAMES,
    extreme_scores,
    random_log_q,
    random_scores,
)

# (name, loss parameters) of the losses with kernels, BPR-max with and without
# its penalty.
KERNEL_LOSSES = [
    ("cross-entropy", {}),
    ("bpr-max", {"bpreg": 0.0}),
    ("bpr-max", {"bpreg": 0.9}),
]
IDS = ["cross-entropy", "bpr-max-0", "bpr-max-0.9"]


def both(name, params, activation="linear"):
    """The NumPy and the compiled loss."""
    kw = dict(final_activation=activation, **params)
    return get_loss(name, **kw), get_loss(name, backend="numba", **kw)


def value_and_grad(loss, scores, log_q=None, d_loss=0.7):
    value, cache = loss.forward(scores, log_q)
    return value, loss.backward(cache, d_loss)


def assert_same_numbers(name, params, activation, scores, log_q=None, tol=1e-12):
    reference, fast = both(name, params, activation)
    d_loss = 0.7
    want_value, want_grad = value_and_grad(reference, scores, log_q, d_loss)
    got_value, got_grad = value_and_grad(fast, scores, log_q, d_loss)
    assert got_grad.dtype == scores.dtype and got_grad.shape == scores.shape
    assert got_value == pytest.approx(want_value, rel=tol, abs=tol)
    # Each entry of a row's gradient is a difference of probability-like terms of
    # size up to d_loss / N (softmax minus one-hot; BPR-max's s_ij - w_ij sigma_ij),
    # times a slope of at most 1. Where the terms nearly cancel (a saturated row, or
    # a saturated tanh whose slope 1 - y^2 is recomputed from y), every correct
    # implementation, NumPy's included, carries an absolute error of a few eps times
    # that size; a relative error of the tiny result would measure nothing else.
    size = max(np.abs(want_grad).max(), d_loss / scores.shape[0])
    err = np.abs(got_grad - want_grad).max() / size
    assert err < tol, f"gradient: error {err:.2e} of the terms' size"


def test_the_registry_names_kernels_that_exist():
    assert set(COMPILED) <= set(NAMES)
    for forward, backward in COMPILED.values():
        assert callable(getattr(compiled, forward))
        assert callable(getattr(compiled, backward))


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("shape", [(3, 3), (4, 9), (1, 4), (48, 300)], ids=str)
@pytest.mark.parametrize("name, params", KERNEL_LOSSES, ids=IDS)
def test_float64_matches_numpy(name, params, shape, activation):
    scores = random_scores(*shape, seed=sum(shape))
    log_q = random_log_q(shape[1]) if name == "cross-entropy" else None
    assert_same_numbers(name, params, activation, scores, log_q)


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("name", ["top1-max", "bpr", "top1"])
def test_losses_without_kernels_run_numpy_behind_a_compiled_activation(
    name, activation
):
    scores = random_scores(5, 11, seed=3)
    assert_same_numbers(name, {}, activation, scores)


@pytest.mark.parametrize("name, params", KERNEL_LOSSES, ids=IDS)
def test_gradient_matches_finite_differences(name, params):
    scores = random_scores(4, 9, seed=11)
    log_q = random_log_q(9) if name == "cross-entropy" else None
    loss = get_loss(name, backend="numba", final_activation="elu-1", **params)
    _, analytic = value_and_grad(loss, scores, log_q)

    def f(inputs):
        return 0.7 * loss.forward(inputs["scores"], log_q)[0]

    report = check_gradients(f, {"scores": scores}, {"scores": analytic})
    assert report.passed, str(report)


@st.composite
def problems(draw):
    N = draw(st.integers(1, 6))
    C = draw(st.integers(max(N, 2), N + 12))
    scale = draw(st.sampled_from([0.1, 3.0, 40.0]))
    seed = draw(st.integers(0, 2**31 - 1))
    scores = random_scores(N, C, seed=seed, scale=scale)
    # Ties and repeated columns, as when a sample draws a batch's own target.
    if draw(st.booleans()) and C > 2:
        scores[:, -1] = scores[:, 0]
    name, params = draw(st.sampled_from(KERNEL_LOSSES))
    activation = draw(st.sampled_from(ACTIVATIONS))
    use_q = name == "cross-entropy" and draw(st.booleans())
    log_q = random_log_q(C, seed=seed) if use_q else None
    return name, params, activation, scores, log_q


@settings(max_examples=120, deadline=None)
@given(problem=problems())
def test_hypothesis_problems_match_numpy(problem):
    name, params, activation, scores, log_q = problem
    assert_same_numbers(name, params, activation, scores, log_q, tol=1e-11)


@pytest.mark.parametrize("activation", ["linear", "elu-1", "tanh"])
@pytest.mark.parametrize("pattern", ["positive-low", "positive-high", "random"])
@pytest.mark.parametrize("name, params", KERNEL_LOSSES, ids=IDS)
def test_extreme_scores_match_numpy(name, params, pattern, activation):
    # "positive-low" puts every positive 2e4 below its negatives: BPR-max's
    # direct sum underflows and the row is summed in log space.
    scores = extreme_scores(pattern, 5, 12, np.float64)
    scores += random_scores(5, 12, seed=2)  # break ties
    log_q = random_log_q(12) if name == "cross-entropy" else None
    assert_same_numbers(name, params, activation, scores, log_q)


@pytest.mark.parametrize("gap", [500.0, 650.0, 750.0, 2e4])
def test_bpr_max_is_continuous_across_the_log_space_fallback(gap):
    # A positive `gap` below the best negative: the direct sum of BPR-max is
    # about exp(-gap); below DIRECT_MIN (gap ~ 575) the row goes to log space.
    scores = random_scores(3, 7, seed=5)
    scores[np.arange(3), np.arange(3)] = scores.max() - gap
    assert_same_numbers("bpr-max", {"bpreg": 0.0}, "linear", scores)
    value = get_loss("bpr-max", bpreg=0.0, backend="numba").forward(scores)[0]
    assert value == pytest.approx(gap, rel=0.02)


@pytest.mark.parametrize("activation", ["linear", "elu-1"])
@pytest.mark.parametrize("name, params", KERNEL_LOSSES, ids=IDS)
def test_float32_is_as_close_to_the_truth_as_numpy_float32(name, params, activation):
    # Float32 scores; the truth is the float64 loss of those same scores.
    scores = random_scores(48, 400, seed=9, scale=3.0).astype(np.float32)
    log_q = random_log_q(400, dtype=np.float32) if name == "cross-entropy" else None
    reference, fast = both(name, params, activation)
    q64 = None if log_q is None else log_q.astype(np.float64)
    true_value, true_grad = value_and_grad(reference, scores.astype(np.float64), q64)
    np_value, np_grad = value_and_grad(reference, scores, log_q)
    value, grad = value_and_grad(fast, scores, log_q)
    assert grad.dtype == np.float32
    eps32 = np.finfo(np.float32).eps
    assert abs(value - true_value) <= max(abs(np_value - true_value), 4 * eps32)
    err = normwise_relative_error(grad, true_grad)
    assert err <= max(normwise_relative_error(np_grad, true_grad), 4 * eps32)


@pytest.mark.parametrize("name, params", KERNEL_LOSSES, ids=IDS)
def test_float32_at_extremes_stays_finite_and_agrees_with_float64(name, params):
    scores32 = (extreme_scores("random", 6, 15, np.float64, seed=7)).astype(np.float32)
    loss = get_loss(name, backend="numba", final_activation="elu-1", **params)
    v32, g32 = value_and_grad(loss, scores32)
    v64, g64 = value_and_grad(loss, scores32.astype(np.float64))
    assert math.isfinite(v32) and np.isfinite(g32).all()
    assert v32 == pytest.approx(v64, rel=1e-6)
    # The ELU's output is rounded to float32 before the loss sees it.
    atol = 1e-6 * max(np.abs(g64).max(), 1.0)
    if params.get("bpreg"):
        # r_k^2 - sum_j s_j r_j^2 from scores rounded near 1e4 (as in test_losses).
        atol += np.finfo(np.float32).eps * BIG**2 / len(scores32)
    np.testing.assert_allclose(g32, g64, atol=atol)


@pytest.mark.skipif(
    _jit.numba.config.NUMBA_NUM_THREADS < 2, reason="Numba has one thread here"
)
@pytest.mark.parametrize("activation", ["linear", "elu-1"])
@pytest.mark.parametrize("name, params", KERNEL_LOSSES, ids=IDS)
def test_two_threads_give_the_numbers_of_one(name, params, activation):
    scores = random_scores(64, 600, seed=1).astype(np.float32)
    loss = get_loss(name, backend="numba", final_activation=activation, **params)
    assert scores.size >= _jit.ROW_WORK  # large enough to go to threads
    try:
        _jit.set_threads(1)
        one = value_and_grad(loss, scores)
        _jit.set_threads(2)
        two = value_and_grad(loss, scores)
    finally:
        _jit.set_threads(1)
    assert one[0] == two[0]
    np.testing.assert_array_equal(one[1], two[1])


def test_backend_is_checked_and_reported():
    with pytest.raises(ValueError, match="backend"):
        get_loss("bpr-max", backend="torch")
    assert get_loss("cross-entropy", backend="numba").backend == "numba"
    assert get_loss("cross-entropy").backend == "numpy"


@pytest.mark.parametrize("name, params", KERNEL_LOSSES, ids=IDS)
def test_bad_scores_raise_the_numpy_errors(name, params):
    loss = get_loss(name, backend="numba", **params)
    bad = random_scores(3, 5)
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match="1 NaN or infinite"):
        loss.forward(bad)
    with pytest.raises(TypeError, match="float32 or float64"):
        loss.forward(np.ones((3, 5), np.int64))
    with pytest.raises(ValueError, match="C >= N"):
        loss.forward(random_scores(4, 3))


def test_scores_are_not_modified_and_backward_is_repeatable():
    scores = random_scores(5, 12, seed=4)
    kept = scores.copy()
    loss = get_loss("bpr-max", backend="numba", final_activation="elu-1")
    _, cache = loss.forward(scores)
    first = loss.backward(cache, 0.5)
    np.testing.assert_array_equal(loss.backward(cache, 0.5), first)
    np.testing.assert_array_equal(loss.backward(cache, 1.0), 2 * first)
    np.testing.assert_array_equal(scores, kept)


def test_non_contiguous_scores():
    wide = random_scores(6, 20, seed=6)
    scores = wide[:, 3:17]  # a column slice: rows not contiguous
    assert not scores.flags.c_contiguous
    assert_same_numbers("bpr-max", {"bpreg": 0.5}, "elu-1", scores)
    assert_same_numbers("cross-entropy", {}, "tanh", scores)

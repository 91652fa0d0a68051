"""The output losses against finite differences, PyTorch, loops and hand sums.

Three oracles: central differences (`check_gradients`, float64); PyTorch
formulations of the same formulas, written independently with masked tensors
and differentiated by autograd; slow per-row loops with the ``math`` module. On
top: values worked out by hand, and stability at scores of +-1e4 with every
floating-point error raised.
"""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnrec.gradcheck import check_gradients
from rnnrec.losses import (
    LOSSES,
    Activation,
    Loss,
    bpr_backward,
    bpr_forward,
    bpr_max_backward,
    bpr_max_forward,
    cross_entropy_backward,
    cross_entropy_forward,
    final_activation_backward,
    final_activation_forward,
    get_loss,
    parse_activation,
    top1_backward,
    top1_forward,
    top1_max_backward,
    top1_max_forward,
)

NAMES = list(LOSSES)
PAIRWISE = [n for n in NAMES if n != "cross-entropy"]
ACTIVATIONS = ["linear", "relu", "tanh", "elu-1", "elu-0.5", "leaky-0.1"]
# (N, C): square, one extra column, many extra columns, a single row.
SHAPES = [(3, 3), (4, 5), (3, 9), (1, 4)]


def random_scores(N, C, seed=0, scale=1.5, dtype=np.float64):
    return (scale * np.random.default_rng(seed).standard_normal((N, C))).astype(dtype)


def random_log_q(C, seed=1, dtype=np.float64):
    # A model passes logq * log Q, Q a probability: non-positive values.
    return np.log(np.random.default_rng(seed).uniform(1e-4, 1.0, C)).astype(dtype)


# -- independent references ---------------------------------------------------------


def torch_loss(name, r, bpreg=1.0, log_q=None):
    """The loss of a float64 tensor ``r`` (N, C), written with masks."""
    N, C = r.shape
    rows = torch.arange(N)
    if name == "cross-entropy":
        z = r if log_q is None else r - log_q
        return F.cross_entropy(z, rows)
    positive = r[rows, rows][:, None]  # (N, 1)
    is_positive = torch.zeros(N, C, dtype=torch.bool)
    is_positive[rows, rows] = True
    s = torch.softmax(r.masked_fill(is_positive, -math.inf), dim=1)
    if name == "bpr-max":
        mix = (s * torch.sigmoid(positive - r)).sum(dim=1)
        return (-torch.log(mix) + bpreg * (s * r**2).sum(dim=1)).mean()
    if name == "top1-max":
        return (s * (torch.sigmoid(r - positive) + torch.sigmoid(r**2))).sum(1).mean()
    if name == "bpr":
        terms = -F.logsigmoid(positive - r)
    else:
        terms = torch.sigmoid(r - positive) + torch.sigmoid(r**2)
    return (terms.masked_fill(is_positive, 0.0).sum(dim=1) / (C - 1)).mean()


def torch_activation(name, x):
    act = parse_activation(name)
    if act.kind == "linear":
        return x
    if act.kind == "relu":
        return F.relu(x)
    if act.kind == "tanh":
        return torch.tanh(x)
    if act.kind == "elu":
        return F.elu(x, alpha=act.alpha)
    return F.leaky_relu(x, negative_slope=act.alpha)


def torch_value_and_grad(name, scores, activation="linear", bpreg=1.0, log_q=None):
    r = torch.tensor(scores, dtype=torch.float64, requires_grad=True)
    q = None if log_q is None else torch.tensor(log_q, dtype=torch.float64)
    value = torch_loss(name, torch_activation(activation, r), bpreg, q)
    value.backward()
    return value.item(), r.grad.numpy()


def _sig(a):
    return 1.0 / (1.0 + math.exp(-a)) if a >= 0 else math.exp(a) / (1.0 + math.exp(a))


def loop_loss(name, scores, bpreg=1.0, log_q=None):
    """One row at a time, one column at a time, straight from the formulas."""
    r = scores.tolist()
    N, C = scores.shape
    total = 0.0
    for i in range(N):
        row = r[i]
        neg = [j for j in range(C) if j != i]
        if name == "cross-entropy":
            z = [row[c] - (0.0 if log_q is None else float(log_q[c])) for c in range(C)]
            top = max(z)
            total += math.log(sum(math.exp(v - top) for v in z)) + top - z[i]
            continue
        top = max(row[j] for j in neg)
        norm = sum(math.exp(row[j] - top) for j in neg)
        s = {j: math.exp(row[j] - top) / norm for j in neg}
        if name == "bpr-max":
            mix = sum(s[j] * _sig(row[i] - row[j]) for j in neg)
            reg = sum(s[j] * row[j] ** 2 for j in neg)
            total += -math.log(mix) + bpreg * reg
        elif name == "top1-max":
            total += sum(
                s[j] * (_sig(row[j] - row[i]) + _sig(row[j] ** 2)) for j in neg
            )
        elif name == "bpr":
            total += sum(-math.log(_sig(row[i] - row[j])) for j in neg) / (C - 1)
        else:
            terms = (_sig(row[j] - row[i]) + _sig(row[j] ** 2) for j in neg)
            total += sum(terms) / (C - 1)
    return total / N


# -- finite differences -------------------------------------------------------------


def assert_gradient_check(loss, scores, log_q=None, label=""):
    d_loss = 0.7  # a random-ish upstream gradient, not 1
    _, cache = loss.forward(scores, log_q)
    analytic = loss.backward(cache, d_loss)

    def f(inputs):
        return d_loss * loss.forward(inputs["scores"], log_q)[0]

    report = check_gradients(f, {"scores": scores}, {"scores": analytic}, label=label)
    assert report.passed, str(report)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("name", NAMES)
def test_gradient_matches_finite_differences(name, shape):
    loss = get_loss(name)
    assert_gradient_check(loss, random_scores(*shape), label=f"{name} {shape}")


@pytest.mark.parametrize("shape", SHAPES + [(1, 1), (2, 2)], ids=str)
def test_cross_entropy_with_log_q_matches_finite_differences(shape):
    loss = get_loss("cross-entropy")
    scores, log_q = random_scores(*shape, seed=3), random_log_q(shape[1])
    assert_gradient_check(loss, scores, log_q, label=f"xe log_q {shape}")


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("name", NAMES)
def test_gradient_through_final_activation(name, activation):
    loss = get_loss(name, final_activation=activation)
    assert_gradient_check(loss, random_scores(4, 7, seed=5), label=activation)


@pytest.mark.parametrize("bpreg", [0.0, 0.3, 2.0])
def test_bpr_max_gradient_for_several_bpreg(bpreg):
    loss = get_loss("bpr-max", bpreg=bpreg, final_activation="elu-1")
    assert_gradient_check(loss, random_scores(3, 6, seed=7))


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_activation_pair_matches_finite_differences(activation):
    x = random_scores(3, 4, seed=11)
    g = np.random.default_rng(12).standard_normal(x.shape)
    _, cache = final_activation_forward(x, activation)
    dx = final_activation_backward(g, cache)

    def f(inputs):
        return float(np.sum(g * final_activation_forward(inputs["x"], activation)[0]))

    report = check_gradients(f, {"x": x}, {"x": dx}, label=activation)
    assert report.passed, str(report)


# -- PyTorch ------------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES + [(2, 2), (5, 30)], ids=str)
@pytest.mark.parametrize("name", NAMES)
def test_matches_torch(name, shape):
    scores = random_scores(*shape, seed=21)
    value, cache = get_loss(name).forward(scores)
    grad = get_loss(name).backward(cache)
    ref_value, ref_grad = torch_value_and_grad(name, scores)
    assert value == pytest.approx(ref_value, rel=1e-10, abs=1e-12)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("name", NAMES)
def test_matches_torch_with_final_activation(name, activation):
    scores = random_scores(4, 9, seed=22)
    loss = get_loss(name, final_activation=activation)
    value, cache = loss.forward(scores)
    ref_value, ref_grad = torch_value_and_grad(name, scores, activation)
    assert value == pytest.approx(ref_value, rel=1e-10, abs=1e-12)
    np.testing.assert_allclose(loss.backward(cache), ref_grad, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("shape", [(1, 1), (3, 3), (4, 11)], ids=str)
def test_cross_entropy_log_q_matches_torch(shape):
    scores, log_q = random_scores(*shape, seed=23), 0.8 * random_log_q(shape[1])
    value, cache = cross_entropy_forward(scores, log_q)
    ref_value, ref_grad = torch_value_and_grad("cross-entropy", scores, log_q=log_q)
    assert value == pytest.approx(ref_value, rel=1e-10, abs=1e-12)
    np.testing.assert_allclose(
        cross_entropy_backward(cache), ref_grad, rtol=1e-10, atol=1e-13
    )


@pytest.mark.parametrize("bpreg", [0.0, 0.5, 3.0])
def test_bpr_max_matches_torch_for_several_bpreg(bpreg):
    scores = random_scores(5, 8, seed=24)
    value, cache = bpr_max_forward(scores, bpreg=bpreg)
    ref_value, ref_grad = torch_value_and_grad("bpr-max", scores, bpreg=bpreg)
    assert value == pytest.approx(ref_value, rel=1e-10, abs=1e-12)
    np.testing.assert_allclose(
        bpr_max_backward(cache), ref_grad, rtol=1e-10, atol=1e-13
    )


@st.composite
def loss_problems(draw):
    name = draw(st.sampled_from(NAMES))
    N = draw(st.integers(1, 6))
    C = N + draw(st.integers(0 if N > 1 or name == "cross-entropy" else 1, 6))
    scale = draw(st.sampled_from([0.1, 1.0, 4.0]))
    seed = draw(st.integers(0, 2**31))
    activation = draw(st.sampled_from(["linear", "elu-1", "tanh"]))
    with_log_q = name == "cross-entropy" and draw(st.booleans())
    bpreg = draw(st.sampled_from([0.0, 1.0]))
    return name, N, C, scale, seed, activation, with_log_q, bpreg


@settings(max_examples=150, deadline=None)
@given(problem=loss_problems())
def test_hypothesis_shapes_against_torch_and_loops(problem):
    name, N, C, scale, seed, activation, with_log_q, bpreg = problem
    scores = random_scores(N, C, seed=seed, scale=scale)
    log_q = random_log_q(C, seed=seed + 1) if with_log_q else None
    params = {"bpreg": bpreg} if name == "bpr-max" else {}
    loss = get_loss(name, final_activation=activation, **params)

    value, cache = loss.forward(scores, log_q)
    grad = loss.backward(cache)

    assert isinstance(value, float) and math.isfinite(value)
    assert grad.shape == (N, C) and grad.dtype == np.float64
    y = final_activation_forward(scores, activation)[0]
    assert value == pytest.approx(
        loop_loss(name, y, bpreg, log_q), rel=1e-11, abs=1e-13
    )
    ref_value, ref_grad = torch_value_and_grad(name, scores, activation, bpreg, log_q)
    assert value == pytest.approx(ref_value, rel=1e-10, abs=1e-12)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-10, atol=1e-13)

    # Losses unchanged by adding a constant to a row have rows of gradient summing
    # to zero (through a linear activation).
    if activation == "linear" and (
        name in ("cross-entropy", "bpr") or (name == "bpr-max" and bpreg == 0)
    ):
        np.testing.assert_allclose(grad.sum(axis=1), 0, atol=1e-14)


# -- values by hand -----------------------------------------------------------------


def test_all_equal_scores():
    # N = 2, C = 3, every score 0: every softmax is uniform, every sigma is 1/2.
    scores = np.zeros((2, 3))
    expected = {
        "cross-entropy": math.log(3),
        "bpr-max": math.log(2),  # -log(1/2 * 1/2 + 1/2 * 1/2), no penalty at 0
        "top1-max": 1.0,  # sum_j 1/2 (1/2 + 1/2)
        "bpr": math.log(2),
        "top1": 1.0,
    }
    for name, value in expected.items():
        assert get_loss(name).forward(scores)[0] == pytest.approx(value, rel=1e-15)

    # Cross-entropy's gradient (p - onehot) / N with p = 1/3.
    _, cache = cross_entropy_forward(scores)
    expected_grad = (np.full((2, 3), 1 / 3) - np.eye(2, 3)) / 2
    np.testing.assert_allclose(cross_entropy_backward(cache), expected_grad, rtol=1e-15)

    # BPR: each negative gets sigma(0) / (C - 1) / N = 1/8, the positive -2/8.
    _, cache = bpr_forward(scores)
    expected_grad = np.array([[-2, 1, 1], [1, -2, 1]]) / 8
    np.testing.assert_allclose(bpr_backward(cache), expected_grad, rtol=1e-15)


def test_one_row_one_negative_by_hand():
    # r = [a, b]: positive a, single negative b, so the softmax over negatives is 1.
    a, b, bpreg = 1.0, -0.5, 0.4
    scores = np.array([[a, b]])
    sig = _sig(b - a)  # sigma(r_j - r_i)
    slope = sig * (1 - sig)
    slope_sq = _sig(b * b) * (1 - _sig(b * b))
    softplus = math.log1p(math.exp(b - a))
    cases = {
        "cross-entropy": (softplus, [-sig, sig]),
        "bpr": (softplus, [-sig, sig]),
        "bpr-max": (softplus + bpreg * b * b, [-sig, sig + 2 * bpreg * b]),
        "top1": (sig + _sig(b * b), [-slope, slope + 2 * b * slope_sq]),
        "top1-max": (sig + _sig(b * b), [-slope, slope + 2 * b * slope_sq]),
    }
    for name, (value, grad) in cases.items():
        loss = get_loss(name, bpreg=bpreg) if name == "bpr-max" else get_loss(name)
        got, cache = loss.forward(scores)
        assert got == pytest.approx(value, rel=1e-14), name
        np.testing.assert_allclose(
            loss.backward(cache), [grad], rtol=1e-13, err_msg=name
        )


def test_duplicates_of_the_positive_still_count_as_negatives():
    # Column 1 is a sample that drew row 0's own target (same score 2.0): it is
    # a negative like any other, as in GRU4Rec.
    scores = np.array([[2.0, 2.0, -1.0]])
    e = [math.exp(2.0), math.exp(-1.0)]
    s = [e[0] / sum(e), e[1] / sum(e)]
    mix = s[0] * 0.5 + s[1] * _sig(3.0)
    expected = -math.log(mix) + 1.0 * (s[0] * 4.0 + s[1] * 1.0)
    assert bpr_max_forward(scores)[0] == pytest.approx(expected, rel=1e-14)
    expected_xe = math.log(2 * math.exp(2.0) + math.exp(-1.0)) - 2.0
    assert cross_entropy_forward(scores)[0] == pytest.approx(expected_xe, rel=1e-14)

    # Two rows with the same target item: each row's positive is also the other
    # row's negative, so equal scores give log 2 rather than 0.
    same = np.array([[5.0, 5.0], [-1.0, -1.0]])
    assert cross_entropy_forward(same)[0] == pytest.approx(math.log(2), rel=1e-15)


def test_elu_by_hand():
    x = np.array([[2.0, 0.0, -1.0, -30.0]])
    y, cache = final_activation_forward(x, "elu-0.5")
    np.testing.assert_allclose(
        y, [[2.0, 0.0, 0.5 * math.expm1(-1.0), 0.5 * math.expm1(-30.0)]], rtol=1e-15
    )
    slopes = final_activation_backward(np.ones_like(x), cache)
    # Left slope alpha e^0 at the kink, as PyTorch.
    np.testing.assert_allclose(
        slopes, [[1.0, 0.5, 0.5 * math.exp(-1.0), 0.5 * math.exp(-30.0)]], rtol=1e-15
    )


# -- properties ---------------------------------------------------------------------


def test_cross_entropy_ignores_a_constant_added_to_a_row():
    scores = random_scores(3, 7, seed=31)
    shifted = scores + np.array([[100.0], [-50.0], [3.0]])
    v1, c1 = cross_entropy_forward(scores)
    v2, c2 = cross_entropy_forward(shifted)
    assert v1 == pytest.approx(v2, rel=1e-12)
    np.testing.assert_allclose(
        cross_entropy_backward(c1), cross_entropy_backward(c2), atol=1e-14
    )


def test_log_q_is_subtracted_from_every_row():
    scores, log_q = random_scores(3, 6, seed=32), random_log_q(6)
    v1, c1 = cross_entropy_forward(scores, log_q)
    v2, c2 = cross_entropy_forward(scores - log_q)
    assert v1 == v2
    np.testing.assert_array_equal(
        cross_entropy_backward(c1), cross_entropy_backward(c2)
    )


@pytest.mark.parametrize("name", NAMES)
def test_d_loss_scales_the_gradient_and_backward_is_repeatable(name):
    loss = get_loss(name, final_activation="elu-1")
    _, cache = loss.forward(random_scores(3, 5, seed=33))
    once = loss.backward(cache)
    np.testing.assert_array_equal(loss.backward(cache), once)  # cache not modified
    np.testing.assert_allclose(loss.backward(cache, 2.5), 2.5 * once, rtol=1e-15)
    np.testing.assert_array_equal(loss.backward(cache, 0.0), 0.0 * once)


@pytest.mark.parametrize("name", NAMES)
def test_scores_are_not_modified(name):
    scores = random_scores(4, 6, seed=34)
    before = scores.copy()
    loss = get_loss(name, final_activation="elu-1")
    _, cache = loss.forward(scores)
    loss.backward(cache)
    np.testing.assert_array_equal(scores, before)


@pytest.mark.parametrize("activation", ["linear", "elu-1", "tanh"])
@pytest.mark.parametrize("name", NAMES)
def test_float32_stays_float32_and_agrees_with_float64(name, activation):
    scores = random_scores(6, 20, seed=35, scale=3.0)
    loss = get_loss(name, final_activation=activation)
    v64, c64 = loss.forward(scores)
    v32, c32 = loss.forward(scores.astype(np.float32))
    g64, g32 = loss.backward(c64), loss.backward(c32)
    assert g32.dtype == np.float32
    assert v32 == pytest.approx(v64, rel=2e-6, abs=1e-6)
    np.testing.assert_allclose(g32, g64, rtol=1e-4, atol=2e-6 * np.abs(g64).max())


def test_the_functions_and_the_dispatcher_agree():
    pairs = {
        "cross-entropy": (cross_entropy_forward, cross_entropy_backward),
        "bpr-max": (bpr_max_forward, bpr_max_backward),
        "top1-max": (top1_max_forward, top1_max_backward),
        "bpr": (bpr_forward, bpr_backward),
        "top1": (top1_forward, top1_backward),
    }
    scores = random_scores(3, 5, seed=36)
    for name, (forward, backward) in pairs.items():
        assert LOSSES[name].forward is forward and LOSSES[name].backward is backward
        value, cache = forward(scores)
        v, c = get_loss(name).forward(scores)
        assert v == value
        np.testing.assert_array_equal(get_loss(name).backward(c), backward(cache))


# -- stability ----------------------------------------------------------------------

BIG = 1e4


def extreme_scores(pattern, N, C, dtype, seed=0):
    rows = np.arange(N)
    if pattern == "positive-low":  # every positive far below every negative
        s = np.full((N, C), BIG)
        s[rows, rows] = -BIG
    elif pattern == "positive-high":
        s = np.full((N, C), -BIG)
        s[rows, rows] = BIG
    else:  # random signs
        s = np.random.default_rng(seed).choice([-BIG, BIG], size=(N, C))
    return s.astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation", ["linear", "elu-1", "tanh", "relu"])
@pytest.mark.parametrize("pattern", ["positive-low", "positive-high", "random"])
@pytest.mark.parametrize("name", NAMES)
def test_finite_at_plus_minus_1e4_with_every_error_raised(
    name, pattern, activation, dtype
):
    N, C = 5, 12
    scores = extreme_scores(pattern, N, C, dtype)
    loss = get_loss(name, final_activation=activation)
    log_q = random_log_q(C, dtype=dtype) if name == "cross-entropy" else None
    with np.errstate(all="raise"):
        value, cache = loss.forward(scores, log_q)
        grad = loss.backward(cache)
    assert math.isfinite(value)
    assert grad.dtype == dtype and np.isfinite(grad).all()


# The limits when every positive sits at -1e4 and every negative at +1e4 (C - 1
# of them): r_j - r_i = 2e4 and r_j^2 = 1e8.
LOW_LIMITS = {
    "cross-entropy": lambda C: 2 * BIG + math.log(C - 1),
    "bpr-max": lambda C: 2 * BIG + BIG**2,
    "top1-max": lambda C: 2.0,
    "bpr": lambda C: 2 * BIG,
    "top1": lambda C: 2.0,
}
HIGH_LIMITS = {
    "cross-entropy": lambda C: 0.0,
    "bpr-max": lambda C: BIG**2,
    "top1-max": lambda C: 1.0,
    "bpr": lambda C: 0.0,
    "top1": lambda C: 1.0,
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", NAMES)
def test_extreme_values_reach_their_limits(name, dtype):
    N, C = 4, 9
    with np.errstate(all="raise"):
        low = get_loss(name).forward(extreme_scores("positive-low", N, C, dtype))[0]
        high = get_loss(name).forward(extreme_scores("positive-high", N, C, dtype))[0]
    rel = 1e-6 if dtype == np.float32 else 1e-12
    assert low == pytest.approx(LOW_LIMITS[name](C), rel=rel)
    assert high == pytest.approx(HIGH_LIMITS[name](C), rel=rel, abs=1e-30)


@pytest.mark.parametrize("name", ["cross-entropy", "bpr"])
def test_extreme_values_match_torch_where_torch_is_stable(name):
    # cross_entropy and logsigmoid are stable in PyTorch; the masked-softmax
    # formulations of the -max losses are not (log of an underflowed sum).
    scores = extreme_scores("random", 6, 10, np.float64, seed=4)
    scores += random_scores(6, 10, seed=5)
    value, cache = get_loss(name).forward(scores)
    ref_value, ref_grad = torch_value_and_grad(name, scores)
    assert value == pytest.approx(ref_value, rel=1e-12)
    np.testing.assert_allclose(get_loss(name).backward(cache), ref_grad, atol=1e-15)


@pytest.mark.parametrize(
    "name, params",
    [(n, {}) for n in NAMES if n != "bpr-max"]
    + [("bpr-max", {"bpreg": 0.0}), ("bpr-max", {"bpreg": 1.0})],
    ids=lambda v: str(v) if isinstance(v, dict) else v,
)
def test_float32_at_extremes_agrees_with_float64(name, params):
    N, C = 6, 15
    scores = extreme_scores("random", N, C, np.float64, seed=7)
    scores += random_scores(N, C, seed=8)  # break ties
    # Rounding 1e4 + x to float32 moves x by up to 5e-4; compare on equal inputs.
    scores32 = scores.astype(np.float32)
    loss = get_loss(name, final_activation="elu-1", **params)
    v64, c64 = loss.forward(scores32.astype(np.float64))
    with np.errstate(all="raise"):
        v32, c32 = loss.forward(scores32)
        g32 = loss.backward(c32)
    g64 = loss.backward(c64)
    assert v32 == pytest.approx(v64, rel=1e-6)
    atol = 1e-6 * max(np.abs(g64).max(), 1.0)
    if params.get("bpreg"):
        # The penalty's gradient holds r_k^2 - sum_j s_j r_j^2, a difference of
        # numbers near 1e8 that float32 knows to eps * 1e8 (see bpr_max_backward).
        atol += np.finfo(np.float32).eps * BIG**2 / N
    np.testing.assert_allclose(g32, g64, atol=atol)


# -- the dispatcher and the activations ---------------------------------------------


def test_get_loss_defaults_and_repr():
    loss = get_loss("bpr-max")
    assert isinstance(loss, Loss)
    assert loss.params == {"bpreg": 1.0}
    assert loss.activation == Activation("linear")
    assert repr(loss) == "Loss('bpr-max', bpreg=1.0, final_activation='linear')"
    loss = get_loss("cross-entropy", final_activation="elu-0.5")
    assert repr(loss) == "Loss('cross-entropy', final_activation='elu-0.5')"


def test_unknown_loss_lists_the_allowed_names():
    with pytest.raises(ValueError, match="loss must be one of") as info:
        get_loss("hinge")
    for name in NAMES:
        assert repr(name) in str(info.value)
    assert "'hinge'" in str(info.value)


def test_unknown_parameter_lists_the_allowed_ones():
    with pytest.raises(
        TypeError, match=r"takes the parameters final_activation, bpreg"
    ):
        get_loss("bpr-max", bpreg=1.0, elu=0.5)
    with pytest.raises(TypeError, match=r"unexpected bpreg"):
        get_loss("top1-max", bpreg=1.0)


@pytest.mark.parametrize("bad", [-0.1, math.nan, math.inf])
def test_bpreg_must_be_non_negative_and_finite(bad):
    with pytest.raises(ValueError, match="bpreg must be a finite number >= 0"):
        get_loss("bpr-max", bpreg=bad)
    with pytest.raises(ValueError, match="bpreg"):
        bpr_max_forward(np.zeros((2, 3)), bpreg=bad)


def test_log_q_only_for_cross_entropy():
    with pytest.raises(ValueError, match="'cross-entropy' only, not to 'bpr-max'"):
        get_loss("bpr-max").forward(np.zeros((2, 3)), log_q=np.zeros(3))


@pytest.mark.parametrize(
    "name, expected",
    [
        ("linear", Activation("linear")),
        ("relu", Activation("relu")),
        ("tanh", Activation("tanh")),
        ("elu-1", Activation("elu", 1.0)),
        ("elu-0.25", Activation("elu", 0.25)),
        ("elu-1e-3", Activation("elu", 1e-3)),
        ("leaky-0", Activation("leaky", 0.0)),
        ("leaky-0.01", Activation("leaky", 0.01)),
    ],
)
def test_parse_activation(name, expected):
    assert parse_activation(name) == expected
    assert parse_activation(expected) is expected


@pytest.mark.parametrize(
    "name, message",
    [
        ("swish", "activation must be one of 'linear', 'relu', 'tanh', 'elu-<alpha>'"),
        ("elu", "activation must be one of"),
        ("elu-", "must be a number, got ''"),
        ("elu-abc", "must be a number, got 'abc'"),
        ("elu-0", "elu's alpha must be finite and > 0, got 0.0"),
        ("elu--1", "elu's alpha must be finite and > 0, got -1.0"),
        ("elu-inf", "elu's alpha must be finite"),
        ("leaky--0.1", "leaky's alpha must be finite and >= 0"),
        ("ELU-1", "activation must be one of"),
    ],
)
def test_bad_activation_names(name, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        parse_activation(name)
    with pytest.raises(ValueError):
        get_loss("bpr-max", final_activation=name)


def test_activation_must_be_a_string():
    with pytest.raises(TypeError, match="activation must be a string"):
        parse_activation(1.0)


# -- bad scores ---------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_scores_must_be_a_float_matrix_with_c_at_least_n(name):
    loss = get_loss(name)
    with pytest.raises(
        TypeError, match=r"scores must be a numpy array of shape \(N, C\)"
    ):
        loss.forward([[1.0, 2.0]])
    with pytest.raises(TypeError, match="float32 or float64, got int64"):
        loss.forward(np.zeros((2, 3), dtype=np.int64))
    with pytest.raises(ValueError, match=r"2 dimensions \(N, C\), got shape \(3,\)"):
        loss.forward(np.zeros(3))
    with pytest.raises(ValueError, match=r"C >= N columns .* got \(3, 2\)"):
        loss.forward(np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"got \(0, 4\)"):
        loss.forward(np.zeros((0, 4)))
    bad = np.zeros((2, 3))
    bad[1, 2] = np.nan
    bad[0, 0] = np.inf
    with pytest.raises(ValueError, match="scores contains 2 NaN or infinite"):
        loss.forward(bad)


@pytest.mark.parametrize("name", PAIRWISE)
def test_pairwise_losses_need_a_negative(name):
    with pytest.raises(ValueError, match=r"at least one negative per row, so C >= 2"):
        get_loss(name).forward(np.zeros((1, 1)))


def test_cross_entropy_of_a_single_column_is_zero():
    value, cache = cross_entropy_forward(np.array([[3.0]]))
    assert value == 0.0
    np.testing.assert_array_equal(cross_entropy_backward(cache), [[0.0]])


def test_bad_log_q():
    scores = np.zeros((2, 4))
    with pytest.raises(TypeError, match=r"log_q must be a numpy array of shape \(4,\)"):
        cross_entropy_forward(scores, [0.0] * 4)
    with pytest.raises(ValueError, match=r"shape \(4,\), one entry per column.*\(2,\)"):
        cross_entropy_forward(scores, np.zeros(2))
    with pytest.raises(TypeError, match=r"dtype of scores \(float64\), got float32"):
        cross_entropy_forward(scores, np.zeros(4, np.float32))
    with pytest.raises(ValueError, match="log_q contains NaN"):
        cross_entropy_forward(scores, np.array([0.0, np.nan, 0.0, 0.0]))


@pytest.mark.parametrize("bad", ["1", None, math.nan])
def test_bad_d_loss(bad):
    _, cache = bpr_forward(np.zeros((2, 3)))
    with pytest.raises((TypeError, ValueError), match="d_loss must be"):
        bpr_backward(cache, bad)

"""The gradient checker itself: it must fail when a gradient is wrong."""

import numpy as np
import pytest

from rnnrec import RNN
from rnnrec.gradcheck import (
    check_gradients,
    check_layer,
    normwise_relative_error,
    numeric_gradient,
)


def quadratic(inputs):
    w, x = inputs["w"], inputs["x"]
    return float(np.sum(np.tanh(w @ x) ** 2))


def quadratic_grads(inputs):
    w, x = inputs["w"], inputs["x"]
    a = np.tanh(w @ x)
    da = 2 * a * (1 - a * a)
    return {"w": np.outer(da, x), "x": w.T @ da}


@pytest.fixture
def point():
    rng = np.random.default_rng(0)
    return {"w": rng.standard_normal((4, 3)), "x": rng.standard_normal(3)}


def test_correct_gradients_pass(point):
    report = check_gradients(quadratic, point, quadratic_grads(point))
    assert report.passed
    assert max(c.max_rel_error for c in report.checks) < 1e-8


def test_a_wrong_sign_fails_and_is_located(point):
    grads = quadratic_grads(point)
    grads["w"][2, 1] *= -1
    report = check_gradients(quadratic, point, grads)
    bad = {c.name: c for c in report.checks}["w"]
    assert not report.passed and not bad.passed
    assert bad.index == (2, 1)
    assert bad.analytic == pytest.approx(-bad.numeric, rel=1e-6)
    assert "NOT OK" in str(report)


def test_a_small_error_beyond_tolerance_fails(point):
    grads = quadratic_grads(point)
    grads["x"][0] *= 1 + 1e-4
    assert not check_gradients(quadratic, point, grads).passed


def test_a_function_that_ignores_its_argument_fails(point):
    frozen = {k: v.copy() for k, v in point.items()}

    def closes_over(inputs):
        return quadratic(frozen)  # never sees the perturbation

    report = check_gradients(closes_over, point, quadratic_grads(point))
    assert not report.passed


def test_inputs_are_never_modified(point):
    before = {k: v.copy() for k, v in point.items()}

    def vandal(inputs):
        value = quadratic(inputs)
        inputs["w"][...] = 99.0  # a function that mutates its argument
        return value

    report = check_gradients(vandal, point, quadratic_grads(point))
    assert report.passed
    for k in point:
        np.testing.assert_array_equal(point[k], before[k])


def test_float32_inputs_are_refused(point):
    with pytest.raises(TypeError, match="float64"):
        check_gradients(quadratic, {"w": point["w"].astype(np.float32)}, {})


def test_directional_checks_catch_an_error_in_a_large_tensor():
    rng = np.random.default_rng(1)
    point = {"w": rng.standard_normal((40, 30)), "x": rng.standard_normal(30)}
    grads = quadratic_grads(point)
    assert check_gradients(quadratic, point, grads, max_entries=100).passed
    grads["w"][17, 3] += 0.05
    report = check_gradients(quadratic, point, grads, max_entries=100)
    w = {c.name: c for c in report.checks}["w"]
    assert w.mode == "directions" and not w.passed


def test_kinks_are_judged_by_one_sided_differences():
    point = {"x": np.array([0.0, 1.0, -2.0])}

    def relu_sum(inputs):
        return float(np.maximum(inputs["x"], 0).sum())

    # At x = 0 the one-sided derivatives are 0 and 1 (and their mean the central
    # difference); 0.3 is none of them.
    for left_or_right in (0.0, 1.0):
        grads = {"x": np.array([left_or_right, 1.0, 0.0])}
        report = check_gradients(relu_sum, point, grads)
        assert report.passed and report.checks[0].kinks == 1
    report = check_gradients(relu_sum, point, {"x": np.array([0.3, 1.0, 0.0])})
    assert not report.passed


def test_numeric_gradient_matches_analytic(point):
    numeric = numeric_gradient(quadratic, point, "x")
    assert normwise_relative_error(numeric, quadratic_grads(point)["x"]) < 1e-9


class DroppedTermRNN(RNN):
    """An RNN whose BPTT forgets the gradient flowing from step t+1."""

    def _functions(self):
        forward, backward = super()._functions()

        def truncated(d_out, dh_T, cache, params, projected=False):
            # Backpropagate each step on its own: the recurrent term is missing.
            T = d_out.shape[0]
            dx = np.empty_like(cache.x)
            grads = {k: np.zeros_like(v) for k, v in params.items()}
            dh0 = None
            for t in range(T):
                one = cache._replace(
                    x=cache.x[t : t + 1],
                    keep=cache.keep[t : t + 1],
                    h=cache.h[t : t + 1],
                    h0=cache.h[t - 1] if t else cache.h0,
                )
                d_last = dh_T if t == T - 1 else np.zeros_like(dh_T)
                dx[t : t + 1], dh, g = backward(d_out[t : t + 1], d_last, one, params)
                dh0 = dh if t == 0 else dh0
                for k in grads:
                    grads[k] += g[k]
            return dx, dh0, grads

        return forward, truncated


def test_a_missing_recurrent_term_fails():
    layer = DroppedTermRNN(3, 4, backend="numpy", seed=0)
    report = check_layer(layer, T=4, B=2, seed=1)
    failed = {c.name for c in report.checks if not c.passed}
    assert {"weight_hh", "x"} <= failed

"""Softmax, sigmoid, log-sum-exp, every loss and every cell at logits of +-1e4.

In float32 (and float64), with NumPy's default floating-point settings and
every warning turned into an error: nothing may overflow, divide by zero or
produce an invalid value, and every result must be finite. The tests never
call ``np.errstate``, so nothing is hidden from them; test_losses.py adds the
stricter ``np.errstate(all="raise")`` for the losses.
"""

import math
import warnings

import numpy as np
import pytest

from rnnrec import losses
from rnnrec.cells.activations import sigmoid as cell_sigmoid
from rnnrec.losses import LOSSES, get_loss
from rnnrec.sampling import PopularitySampler
from tests.strategies import CELL_IDS, make_layer

BIG = 1e4
DTYPES = [np.float32, np.float64]


@pytest.fixture(autouse=True)
def warnings_are_errors():
    assert np.geterr() == {
        "divide": "warn",
        "over": "warn",
        "under": "ignore",
        "invalid": "warn",
    }
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def extreme(shape, dtype, seed=0):
    """+-1e4, some entries nudged, and a few moderate values."""
    rng = np.random.default_rng(seed)
    values = rng.choice([-BIG, BIG], size=shape) + rng.uniform(-3, 3, size=shape)
    values.flat[:: max(1, values.size // 4)] = rng.standard_normal()
    return values.astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoids_and_softplus(dtype):
    a = np.array([-BIG, -100.0, -1.0, 0.0, 1.0, 100.0, BIG], dtype=dtype)
    for sigmoid in (cell_sigmoid, losses._sigmoid):
        s = sigmoid(a)
        assert s.dtype == dtype and np.isfinite(s).all()
        assert s[0] == 0 and s[-1] == 1 and s[3] == 0.5
        np.testing.assert_allclose(s[1:-1] + sigmoid(-a)[1:-1], 1, rtol=1e-6)
    slope = losses._sigmoid_slope(a)
    assert np.isfinite(slope).all() and slope[0] == slope[-1] == 0
    softplus = losses._softplus(a)  # log(1 + e^a)
    assert np.isfinite(softplus).all()
    assert softplus[-1] == BIG and softplus[0] == 0
    assert softplus[3] == pytest.approx(math.log(2))


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_and_log_sum_exp(dtype):
    scores = extreme((6, 11), dtype)
    # The softmax over all columns, and the log-sum-exp, in cross-entropy.
    loss, cache = losses.cross_entropy_forward(scores)
    assert np.isfinite(cache.p).all() and cache.p.dtype == dtype
    np.testing.assert_allclose(cache.p.sum(axis=1), 1, rtol=1e-6)
    r = scores.astype(np.float64)
    m = r.max(axis=1, keepdims=True)
    log_sum_exp = m[:, 0] + np.log(np.exp(r - m).sum(axis=1))
    assert loss == pytest.approx(np.mean(log_sum_exp - np.diag(r)), rel=1e-6)
    # The softmax over the negatives only, with its logarithm.
    log_s, s = losses._negative_softmax(scores)
    diag = np.arange(6)
    assert (s[diag, diag] == 0).all() and np.isneginf(log_s[diag, diag]).all()
    off = ~np.eye(6, 11, dtype=bool)
    assert np.isfinite(log_s[off]).all() and np.isfinite(s).all()
    np.testing.assert_allclose(s.sum(axis=1), 1, rtol=1e-6)


def test_log_sum_exp_of_popularity():
    # Counts whose powers overflow: log p from a log-sum-exp stays finite.
    counts = np.array([1e300, 1e200, 1.0, 0.0])
    sampler = PopularitySampler(counts, alpha=3.0, seed=0)
    assert sampler.log_probabilities[0] == pytest.approx(0.0)
    assert np.isfinite(sampler.log_probabilities[:3]).all()
    assert sampler.probabilities.sum() == pytest.approx(1.0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ["linear", "elu-1", "tanh", "leaky-0.1"])
@pytest.mark.parametrize("name", list(LOSSES))
def test_every_loss_at_plus_minus_1e4(name, activation, dtype):
    scores = extreme((5, 13), dtype, seed=3)
    loss = get_loss(name, final_activation=activation)
    log_q = None
    if name == "cross-entropy":
        log_q = np.log(np.linspace(1e-4, 1, 13)).astype(dtype)
    value, cache = loss.forward(scores, log_q)
    grad = loss.backward(cache)
    assert math.isfinite(value)
    assert grad.dtype == dtype and np.isfinite(grad).all()


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("variant", CELL_IDS)
def test_every_cell_at_pre_activations_of_plus_minus_1e4(variant, backend):
    # Unit input weights and inputs of +-1e4 drive every gate to +-1e4.
    layer = make_layer(variant, 3, 4, backend=backend, dtype=np.float32, seed=1)
    for name, p in layer.params.items():
        p[...] = 1.0 if name.startswith("weight") else 0.0
    x = extreme((5, 2, 3), np.float32, seed=4)
    out, final, cache = layer.forward(x)
    d_x, d_state, grads = layer.backward(np.ones_like(out), cache)
    assert np.isfinite(out).all() and np.isfinite(d_x).all()
    finals = final if isinstance(final, tuple) else (final,)
    assert all(np.isfinite(f).all() for f in finals)
    assert all(np.isfinite(g).all() for g in grads.values())

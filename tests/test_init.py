"""Initialisation schemes and the LSTM forget-gate bias."""

import numpy as np
import pytest

from rnnrec import GRU, LSTM, RNN


@pytest.mark.parametrize("cls, G", [(RNN, 1), (LSTM, 4), (GRU, 3)])
def test_pytorch_default_is_uniform_in_one_over_sqrt_h(cls, G):
    H = 50
    layer = cls(7, H, seed=0)
    bound = 1 / np.sqrt(H)
    for name, value in layer.params.items():
        assert np.abs(value).max() <= bound
        # Filled, not left near zero: the extremes come close to the bound.
        assert np.abs(value).max() > 0.9 * bound, name
    assert layer.params["weight_ih"].shape == (G * H, 7)


def test_same_seed_same_weights_and_different_seed_different_weights():
    a, b, c = LSTM(3, 4, seed=5), LSTM(3, 4, seed=5), LSTM(3, 4, seed=6)
    for name in a.params:
        np.testing.assert_array_equal(a.params[name], b.params[name])
        assert not np.array_equal(a.params[name], c.params[name])


@pytest.mark.parametrize("cls, G", [(RNN, 1), (LSTM, 4), (GRU, 3)])
def test_glorot_blocks_and_zero_biases(cls, G):
    D, H = 20, 30
    layer = cls(D, H, seed=1, init="glorot")
    bound_ih = np.sqrt(6 / (D + H))
    bound_hh = np.sqrt(6 / (2 * H))
    for k in range(G):
        block_ih = layer.params["weight_ih"][k * H : (k + 1) * H]
        block_hh = layer.params["weight_hh"][k * H : (k + 1) * H]
        assert 0.9 * bound_ih < np.abs(block_ih).max() <= bound_ih
        assert 0.9 * bound_hh < np.abs(block_hh).max() <= bound_hh
    assert not layer.params["bias_ih"].any() and not layer.params["bias_hh"].any()


@pytest.mark.parametrize("cls, G", [(RNN, 1), (LSTM, 4), (GRU, 3)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_orthogonal_recurrent_blocks(cls, G, dtype):
    H = 16
    layer = cls(5, H, seed=2, init="orthogonal", dtype=dtype)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    for k in range(G):
        q = layer.params["weight_hh"][k * H : (k + 1) * H].astype(np.float64)
        np.testing.assert_allclose(q.T @ q, np.eye(H), atol=tol)
        assert layer.params["weight_hh"].dtype == dtype


def test_forget_bias_sets_the_forget_block_only():
    H = 6
    plain = LSTM(3, H, seed=3)
    layer = LSTM(3, H, seed=3, forget_bias=1.0)
    b_ih, b_hh = layer.params["bias_ih"], layer.params["bias_hh"]
    np.testing.assert_array_equal(b_ih[H : 2 * H] + b_hh[H : 2 * H], 1.0)
    for block in (slice(0, H), slice(2 * H, 4 * H)):
        np.testing.assert_array_equal(b_ih[block], plain.params["bias_ih"][block])
        np.testing.assert_array_equal(b_hh[block], plain.params["bias_hh"][block])


def test_unknown_init_lists_the_choices():
    with pytest.raises(ValueError, match="'pytorch', 'glorot', 'orthogonal'"):
        GRU(3, 4, init="xavier")

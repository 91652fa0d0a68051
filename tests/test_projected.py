"""Projected mode: the caller supplies x W_ih^T (e.g. gathered embedding rows)."""

import numpy as np
import pytest

from rnnrec.gradcheck import normwise_relative_error
from tests.strategies import BACKENDS, CELL_IDS, make_layer, random_state


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("variant", CELL_IDS)
def test_projected_mode_equals_the_full_layer(variant, backend):
    T, B, D, H = 6, 3, 5, 4
    layer = make_layer(variant, D, H, backend=backend, seed=0)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((T, B, D))
    state = random_state(layer, B, rng)
    reset = rng.random((T, B)) < 0.3
    g_out = rng.standard_normal((T, B, H))
    W_ih = layer.params["weight_ih"]

    out, final, cache = layer.forward(x, state, reset)
    dx, d_state0, grads = layer.backward(g_out, cache)
    x_proj = x @ W_ih.T  # (T, B, G*H)
    out_p, final_p, cache_p = layer.forward(x_proj, state, reset, projected=True)
    d_proj, d_state0_p, grads_p = layer.backward(g_out, cache_p)

    assert cache_p.projected and not cache.projected
    assert normwise_relative_error(out_p, out) < 1e-13
    assert d_proj.shape == x_proj.shape
    assert normwise_relative_error(d_proj @ W_ih, dx) < 1e-12
    dW_ih = np.einsum("tbg,tbd->gd", d_proj, x)
    assert normwise_relative_error(dW_ih, grads["weight_ih"]) < 1e-12
    assert "weight_ih" not in grads_p
    for name in grads_p:
        assert normwise_relative_error(grads_p[name], grads[name]) < 1e-12
    for a, b in zip(np.atleast_1d(d_state0_p), np.atleast_1d(d_state0), strict=True):
        assert normwise_relative_error(a, b) < 1e-12


def test_projected_input_must_have_the_projection_width():
    layer = make_layer("gru-torch", 5, 4)
    with pytest.raises(ValueError, match=r"x must have shape \(T, B, 12\)"):
        layer.forward(np.zeros((2, 3, 5)), projected=True)

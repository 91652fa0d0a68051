"""rnnrec against torch.nn.RNN/LSTM/GRU, and the Cho GRU against a loop reference."""

import numpy as np
import pytest
from hypothesis import given, settings

from rnnrec.gradcheck import normwise_relative_error
from rnnrec.torch_bridge import to_torch
from tests.reference.loops import loop_forward
from tests.strategies import BACKENDS, make_layer, random_state, seeds, shapes

torch = pytest.importorskip("torch")

TORCH_VARIANTS = ["rnn-tanh", "rnn-relu", "lstm", "gru-torch"]
TOLERANCE = {np.float64: 1e-10, np.float32: 1e-5}


def run_both(layer, T, B, seed, with_reset=False):
    """Forward and backward through rnnrec and PyTorch on the same inputs."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((T, B, layer.input_size)).astype(layer.dtype)
    state = random_state(layer, B, rng)
    g_out = rng.standard_normal((T, B, layer.hidden_size)).astype(layer.dtype)
    g_h = rng.standard_normal((B, layer.hidden_size)).astype(layer.dtype)

    out, final, cache = layer.forward(x, state)
    d_state = (g_h, np.zeros_like(g_h)) if layer.has_cell_state else g_h
    dx, d_state0, grads = layer.backward(g_out, cache, d_state)

    module = to_torch(layer)
    xt = torch.tensor(x, requires_grad=True)
    if layer.has_cell_state:
        st = tuple(torch.tensor(s[None], requires_grad=True) for s in state)
    else:
        st = torch.tensor(state[None], requires_grad=True)
    out_t, final_t = module(xt, st)
    h_T_t = final_t[0] if layer.has_cell_state else final_t
    loss = (out_t * torch.from_numpy(g_out)).sum() + (
        h_T_t[0] * torch.from_numpy(g_h)
    ).sum()
    loss.backward()

    ours = {"out": out, "x": dx, **grads}
    theirs = {"out": out_t.detach().numpy(), "x": xt.grad.numpy()}
    for name in grads:
        theirs[name] = getattr(module, f"{name}_l0").grad.numpy()
    if layer.has_cell_state:
        ours.update(h0=d_state0[0], c0=d_state0[1], c_T=final[1])
        theirs.update(
            h0=st[0].grad[0].numpy(),
            c0=st[1].grad[0].numpy(),
            c_T=final_t[1][0].detach().numpy(),
        )
    else:
        ours["h0"] = d_state0
        theirs["h0"] = st.grad[0].numpy()
    return ours, theirs


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("variant", TORCH_VARIANTS)
@settings(max_examples=15, deadline=None)
@given(shape=shapes(max_d=16, max_h=16), seed=seeds)
def test_outputs_and_gradients_match_pytorch(variant, backend, dtype, shape, seed):
    T, B, D, H = shape
    layer = make_layer(variant, D, H, backend=backend, dtype=dtype, seed=seed)
    ours, theirs = run_both(layer, T, B, seed)
    assert set(ours) == set(theirs)
    for name in ours:
        assert ours[name].dtype == dtype
        err = normwise_relative_error(ours[name], theirs[name])
        assert err < TOLERANCE[dtype], f"{name}: relative error {err:.2e}"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("variant", ["rnn-tanh", "lstm", "gru-torch"])
def test_reset_mask_equals_fresh_pytorch_sequences(variant, backend):
    # Row 0 restarts at step 3: its steps 3.. equal a fresh PyTorch run from zero.
    T, B, D, H = 7, 2, 3, 5
    layer = make_layer(variant, D, H, backend=backend, seed=2)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((T, B, D))
    reset = np.zeros((T, B), dtype=bool)
    reset[3, 0] = True
    out, _, _ = layer.forward(x, random_state(layer, B, rng), reset=reset)
    fresh, _ = to_torch(layer)(torch.tensor(x[3:, :1]))
    err = normwise_relative_error(out[3:, :1], fresh.detach().numpy())
    assert err < 1e-12


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "variant", ["rnn-tanh", "rnn-relu", "lstm", "gru-torch", "gru-cho"]
)
@settings(max_examples=10, deadline=None)
@given(shape=shapes(max_t=6, max_b=3, max_d=5, max_h=5), seed=seeds)
def test_forward_matches_scalar_loop_reference(variant, backend, shape, seed):
    T, B, D, H = shape
    layer = make_layer(variant, D, H, backend=backend, seed=seed)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((T, B, D))
    state = random_state(layer, B, rng)
    reset = rng.random((T, B)) < 0.3
    out, final, _ = layer.forward(x, state, reset)
    cell = "rnn" if variant.startswith("rnn") else variant
    options = {"nonlinearity": variant[4:]} if cell == "rnn" else {}
    if layer.has_cell_state:
        h_ref, c_ref = loop_forward(
            cell,
            x.tolist(),
            state[0].tolist(),
            layer.params,
            c0=state[1].tolist(),
            reset=reset.tolist(),
        )
        assert normwise_relative_error(final[1], np.array(c_ref[-1])) < 1e-12
    else:
        h_ref = loop_forward(
            cell,
            x.tolist(),
            state.tolist(),
            layer.params,
            reset=reset.tolist(),
            **options,
        )
    assert normwise_relative_error(out, np.array(h_ref)) < 1e-12


def test_cho_and_torch_gru_differ_on_the_same_weights():
    torch_gru = make_layer("gru-torch", 3, 4, backend="numpy", seed=0)
    cho_gru = make_layer("gru-cho", 3, 4, backend="numpy", seed=0)
    x = np.random.default_rng(0).standard_normal((3, 2, 3))
    h0 = np.random.default_rng(1).standard_normal((2, 4))
    a, _, _ = torch_gru.forward(x, h0)
    b, _, _ = cho_gru.forward(x, h0)
    assert normwise_relative_error(a, b) > 1e-3

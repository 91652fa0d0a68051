"""Copying weights between rnnrec layers and one-layer PyTorch modules."""

import re

import numpy as np
import pytest
import torch

from rnnrec import GRU, LSTM, RNN
from rnnrec.cells.base import PARAM_NAMES
from rnnrec.torch_bridge import from_torch, to_torch

D, H = 3, 5
TORCH_DTYPES = {np.float32: torch.float32, np.float64: torch.float64}

# (name, torch factory, rnnrec class, rnnrec keyword arguments)
KINDS = [
    (
        "rnn-tanh",
        lambda **kw: torch.nn.RNN(nonlinearity="tanh", **kw),
        RNN,
        {"nonlinearity": "tanh"},
    ),
    (
        "rnn-relu",
        lambda **kw: torch.nn.RNN(nonlinearity="relu", **kw),
        RNN,
        {"nonlinearity": "relu"},
    ),
    ("lstm", lambda **kw: torch.nn.LSTM(**kw), LSTM, {}),
    ("gru", lambda **kw: torch.nn.GRU(**kw), GRU, {"variant": "torch"}),
]
KIND_IDS = [k[0] for k in KINDS]


def torch_module(make, dtype, seed=0):
    torch.manual_seed(seed)
    return make(input_size=D, hidden_size=H, dtype=TORCH_DTYPES[dtype])


def rnnrec_layer(cls, kwargs, dtype, seed=0):
    return cls(D, H, dtype=dtype, seed=seed, backend="numpy", **kwargs)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name, make, cls, kwargs", KINDS, ids=KIND_IDS)
def test_from_torch_copies_every_weight(name, make, cls, kwargs, dtype):
    module = torch_module(make, dtype)
    layer = from_torch(module, backend="numpy")

    assert type(layer) is cls
    assert (layer.input_size, layer.hidden_size) == (D, H)
    assert layer.dtype == dtype and layer.backend == "numpy"
    if cls is RNN:
        assert layer.nonlinearity == module.nonlinearity
    if cls is GRU:
        assert layer.variant == "torch"
    for p in PARAM_NAMES:
        theirs = getattr(module, f"{p}_l0").detach().numpy()
        assert layer.params[p].dtype == dtype
        np.testing.assert_array_equal(layer.params[p], theirs)

    # A copy: changing the module afterwards leaves the layer alone.
    before = layer.params["weight_hh"].copy()
    with torch.no_grad():
        module.weight_hh_l0.add_(1.0)
    np.testing.assert_array_equal(layer.params["weight_hh"], before)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name, make, cls, kwargs", KINDS, ids=KIND_IDS)
def test_to_torch_copies_every_weight(name, make, cls, kwargs, dtype):
    layer = rnnrec_layer(cls, kwargs, dtype, seed=4)
    module = to_torch(layer)

    assert type(module) is type(make(input_size=1, hidden_size=1))
    assert (module.input_size, module.hidden_size) == (D, H)
    assert module.num_layers == 1 and module.bias and not module.bidirectional
    assert not module.batch_first
    if cls is RNN:
        assert module.nonlinearity == layer.nonlinearity
    for p in PARAM_NAMES:
        theirs = getattr(module, f"{p}_l0")
        assert theirs.dtype == TORCH_DTYPES[dtype]
        np.testing.assert_array_equal(theirs.detach().numpy(), layer.params[p])

    # A copy: changing the layer afterwards leaves the module alone.
    before = module.weight_ih_l0.detach().clone()
    layer.params["weight_ih"] += 1
    assert torch.equal(module.weight_ih_l0.detach(), before)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name, make, cls, kwargs", KINDS, ids=KIND_IDS)
def test_round_trips_are_exact(name, make, cls, kwargs, dtype):
    # torch -> rnnrec -> torch
    module = torch_module(make, dtype, seed=1)
    back = to_torch(from_torch(module, backend="numpy"))
    assert type(back) is type(module)
    for key, value in module.state_dict().items():
        assert torch.equal(back.state_dict()[key], value), key

    # rnnrec -> torch -> rnnrec
    layer = rnnrec_layer(cls, kwargs, dtype, seed=2)
    again = from_torch(to_torch(layer), backend="numpy")
    assert type(again) is cls and again.dtype == layer.dtype
    assert getattr(again, "nonlinearity", None) == getattr(layer, "nonlinearity", None)
    for p in PARAM_NAMES:
        np.testing.assert_array_equal(again.params[p], layer.params[p])


@pytest.mark.parametrize("name, make, cls, kwargs", KINDS, ids=KIND_IDS)
def test_copied_layer_computes_what_the_module_computes(name, make, cls, kwargs):
    # Equal weights are only useful if both read them in the same gate order.
    module = torch_module(make, np.float64, seed=3)
    layer = from_torch(module, backend="numpy")
    rng = np.random.default_rng(3)
    T, B = 4, 2
    x = rng.standard_normal((T, B, D))  # (T, B, D)
    h0 = rng.standard_normal((1, B, H))  # (1, B, H), PyTorch's layout
    if cls is LSTM:
        c0 = rng.standard_normal((1, B, H))
        state = (h0[0], c0[0])
        torch_state = (torch.from_numpy(h0), torch.from_numpy(c0))
    else:
        state, torch_state = h0[0], torch.from_numpy(h0)

    out, final, _ = layer.forward(x, state)
    with torch.no_grad():
        expected, expected_final = module(torch.from_numpy(x), torch_state)

    np.testing.assert_allclose(out, expected.numpy(), rtol=1e-12, atol=1e-14)
    if cls is LSTM:
        np.testing.assert_allclose(final[0], expected_final[0][0].numpy(), atol=1e-14)
        np.testing.assert_allclose(final[1], expected_final[1][0].numpy(), atol=1e-14)
    else:
        np.testing.assert_allclose(final, expected_final[0].numpy(), atol=1e-14)


@pytest.mark.parametrize(
    "make, problem",
    [
        (lambda: torch.nn.RNN(D, H, num_layers=2), "num_layers=2 (need 1)"),
        (
            lambda: torch.nn.GRU(D, H, bidirectional=True),
            "bidirectional=True (need False)",
        ),
        (lambda: torch.nn.LSTM(D, H, bias=False), "bias=False (need True)"),
        (lambda: torch.nn.RNN(D, H, bias=False), "bias=False (need True)"),
        (lambda: torch.nn.LSTM(D, H, proj_size=2), "proj_size=2 (need 0)"),
    ],
    ids=["two-layers", "bidirectional", "lstm-no-bias", "rnn-no-bias", "projection"],
)
def test_modules_that_do_not_fit_are_rejected(make, problem):
    with pytest.raises(
        ValueError, match=rf"^cannot copy this module: {re.escape(problem)}$"
    ):
        from_torch(make(), backend="numpy")


def test_every_problem_is_listed_at_once():
    module = torch.nn.LSTM(D, H, num_layers=2, bias=False, proj_size=2)
    message = (
        "cannot copy this module: num_layers=2 (need 1), bias=False (need True), "
        "proj_size=2 (need 0)"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        from_torch(module)


@pytest.mark.parametrize(
    "module, got",
    [
        (torch.nn.Linear(D, H), "Linear"),
        (torch.nn.LSTMCell(D, H), "LSTMCell"),
        (torch.nn.Sequential(torch.nn.GRU(D, H)), "Sequential"),
    ],
    ids=["linear", "lstm-cell", "sequential"],
)
def test_other_modules_are_rejected(module, got):
    message = "module must be a torch.nn.RNN, torch.nn.LSTM or torch.nn.GRU, got " + got
    with pytest.raises(TypeError, match=rf"^{re.escape(message)}$"):
        from_torch(module)


@pytest.mark.parametrize(
    "dtype, shown",
    [(torch.float16, "float16"), (torch.bfloat16, "bfloat16")],
    ids=["half", "bfloat16"],
)
def test_weights_of_other_dtypes_are_rejected(dtype, shown):
    module = torch.nn.GRU(D, H).to(dtype)
    with pytest.raises(
        TypeError, match=rf"^module weights must be float32 or float64, got .*{shown}"
    ):
        from_torch(module)


def test_to_torch_refuses_a_cho_gru():
    layer = GRU(D, H, variant="cho", backend="numpy")
    message = "PyTorch's GRU uses variant 'torch'; this layer is 'cho'"
    with pytest.raises(ValueError, match=re.escape(message)):
        to_torch(layer)


@pytest.mark.parametrize("layer", ["rnn", None, torch.nn.GRU(D, H)], ids=repr)
def test_to_torch_refuses_what_is_not_a_layer(layer):
    with pytest.raises(TypeError, match=r"^layer must be an RNN, LSTM or GRU, got "):
        to_torch(layer)

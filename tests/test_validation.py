"""Bad input to the layers: every mistake names the argument, the rule and the value.

Each test asserts the exception type and, with ``match``, the three parts of the
message: which argument, what was expected, what arrived. Forward and backward are
checked on both backends, since each backend must reject bad input before any
arithmetic runs.
"""

import re

import numpy as np
import pytest

from rnnrec import GRU, LSTM, RNN
from tests.strategies import BACKENDS, CELL_IDS, make_layer, random_state

T, B, D, H = 5, 2, 3, 4
CLASSES = [RNN, LSTM, GRU]
CACHE_NAMES = {RNN: "RNNCache", LSTM: "LSTMCache", GRU: "GRUCache"}


def build(variant, backend, dtype=np.float64):
    return make_layer(variant, D, H, backend=backend, dtype=dtype, seed=0)


def good_x(layer):
    rng = np.random.default_rng(0)
    return rng.standard_normal((T, B, D)).astype(layer.dtype)  # (T, B, D)


def with_bad_h(layer, bad):
    """Return a state whose h is ``bad`` (an LSTM keeps a good c) and its name."""
    if layer.has_cell_state:
        c = random_state(layer, B, np.random.default_rng(1))[1]
        return (bad, c), r"state\[0\]"
    return bad, "state"


# -- constructor -----------------------------------------------------------------------


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("arg", ["input_size", "hidden_size"])
@pytest.mark.parametrize(
    "value, error",
    [(0, ValueError), (-3, ValueError), (2.0, TypeError), (True, TypeError)],
    ids=["zero", "negative", "float", "bool"],
)
def test_sizes_must_be_positive_integers(cls, arg, value, error):
    sizes = {"input_size": 3, "hidden_size": 4, arg: value}
    message = f"{arg} must be a positive integer, got {value!r}"
    with pytest.raises(error, match=re.escape(message)):
        cls(sizes["input_size"], sizes["hidden_size"], backend="numpy")


def test_numpy_integer_sizes_are_accepted():
    layer = RNN(np.int64(3), np.int32(4), backend="numpy")
    assert (layer.input_size, layer.hidden_size) == (3, 4)
    assert type(layer.input_size) is int


@pytest.mark.parametrize("cls", CLASSES)
def test_unknown_backend_lists_the_backends(cls):
    message = "backend must be one of 'numba', 'numpy', got 'cuda'"
    with pytest.raises(ValueError, match=re.escape(message)):
        cls(3, 4, backend="cuda")


@pytest.mark.parametrize("cls", CLASSES)
def test_unknown_init_lists_the_schemes(cls):
    message = "init must be one of 'pytorch', 'glorot', 'orthogonal', got 'he'"
    with pytest.raises(ValueError, match=re.escape(message)):
        cls(3, 4, backend="numpy", init="he")


def test_unknown_nonlinearity_lists_the_choices():
    message = "nonlinearity must be one of 'tanh', 'relu', got 'sigmoid'"
    with pytest.raises(ValueError, match=re.escape(message)):
        RNN(3, 4, backend="numpy", nonlinearity="sigmoid")


def test_unknown_gru_variant_lists_the_choices():
    message = "variant must be one of 'torch', 'cho', got 'pytorch'"
    with pytest.raises(ValueError, match=re.escape(message)):
        GRU(3, 4, backend="numpy", variant="pytorch")


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize(
    "dtype, shown",
    [
        (np.int32, "<class 'numpy.int32'>"),
        ("float16", "'float16'"),
        (np.complex128, "<class 'numpy.complex128'>"),
        ("not a dtype", "'not a dtype'"),
    ],
    ids=["int32", "float16-string", "complex128", "garbage"],
)
def test_dtype_must_be_float32_or_float64(cls, dtype, shown):
    message = f"dtype must be np.float32 or np.float64, got {shown}"
    with pytest.raises(TypeError, match=re.escape(message)):
        cls(3, 4, backend="numpy", dtype=dtype)


@pytest.mark.parametrize("dtype", ["float32", np.dtype("f4"), np.float32])
def test_float32_spellings_are_accepted(dtype):
    layer = GRU(3, 4, backend="numpy", dtype=dtype)
    assert layer.dtype == np.float32
    assert all(p.dtype == np.float32 for p in layer.params.values())


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize(
    "seed, error, message",
    [
        (-1, ValueError, "seed must be a non-negative integer, got -1"),
        (1.5, TypeError, "got 1.5"),
        ("0", TypeError, "got '0'"),
        (True, TypeError, "got True"),
        (np.random.RandomState(0), TypeError, "got RandomState"),
    ],
    ids=["negative", "float", "string", "bool", "legacy-randomstate"],
)
def test_bad_seed(cls, seed, error, message):
    with pytest.raises(error, match=re.escape(message)):
        cls(3, 4, backend="numpy", seed=seed)
    if error is TypeError:
        expected = "seed must be None, a non-negative int or a numpy Generator"
        with pytest.raises(TypeError, match=re.escape(expected)):
            cls(3, 4, backend="numpy", seed=seed)


@pytest.mark.parametrize(
    "forget_bias, error, message",
    [
        (float("nan"), ValueError, "forget_bias must be finite, got nan"),
        (float("inf"), ValueError, "forget_bias must be finite, got inf"),
        ("one", TypeError, "forget_bias must be a number"),
    ],
    ids=["nan", "inf", "string"],
)
def test_bad_forget_bias(forget_bias, error, message):
    with pytest.raises(error, match=re.escape(message)):
        LSTM(3, 4, backend="numpy", forget_bias=forget_bias)


# -- forward: x ------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("variant", CELL_IDS)
def test_x_must_be_an_array(variant, backend):
    layer = build(variant, backend)
    message = "x must be a numpy array of shape (T, B, 3), got list"
    with pytest.raises(TypeError, match=re.escape(message)):
        layer.forward(good_x(layer).tolist())


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("variant", CELL_IDS)
@pytest.mark.parametrize(
    "shape, message",
    [
        ((B, D), "x must have 3 dimensions (T, B, 3), got 2 with shape (2, 3)"),
        ((T, B, D, 1), "x must have 3 dimensions (T, B, 3), got 4 with shape"),
        ((T, B, D + 1), "x must have shape (T, B, 3), got (5, 2, 4)"),
        ((T, D, B), "x must have shape (T, B, 3), got (5, 3, 2)"),
    ],
    ids=["2d", "4d", "wrong-D", "transposed"],
)
def test_x_shape(variant, backend, shape, message):
    layer = build(variant, backend)
    with pytest.raises(ValueError, match=re.escape(message)):
        layer.forward(np.zeros(shape))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("variant", CELL_IDS)
@pytest.mark.parametrize(
    "shape, letter", [((0, B, D), "T"), ((T, 0, D), "B")], ids=["T0", "B0"]
)
def test_empty_x_says_which_length_must_be_positive(variant, backend, shape, letter):
    layer = build(variant, backend)
    got = re.escape(str(shape))
    with pytest.raises(ValueError, match=rf"^x must have shape .*{letter} >= 1.*{got}"):
        layer.forward(np.zeros(shape))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("variant", CELL_IDS)
@pytest.mark.parametrize(
    "layer_dtype, x_dtype",
    [(np.float64, np.float32), (np.float32, np.float64), (np.float64, np.int64)],
    ids=["f32-into-f64", "f64-into-f32", "int-into-f64"],
)
def test_x_dtype_is_never_cast(variant, backend, layer_dtype, x_dtype):
    layer = build(variant, backend, dtype=layer_dtype)
    want, got = np.dtype(layer_dtype).name, np.dtype(x_dtype).name
    message = (
        f"x must have dtype {want} (the layer's dtype), got {got}; "
        f"convert it with .astype(np.{want})"
    )
    with pytest.raises(TypeError, match=re.escape(message)):
        layer.forward(np.zeros((T, B, D), dtype=x_dtype))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("variant", CELL_IDS)
@pytest.mark.parametrize(
    "bad, count", [([np.nan], 1), ([np.inf, -np.inf], 2)], ids=["nan", "inf"]
)
def test_x_must_be_finite(variant, backend, bad, count):
    layer = build(variant, backend)
    x = good_x(layer)
    x.reshape(-1)[: len(bad)] = bad
    message = f"x contains {count} NaN or infinite value(s)"
    with pytest.raises(ValueError, match=re.escape(message)):
        layer.forward(x)


# -- forward: state --------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("variant", CELL_IDS)
def test_state_shape(variant, backend):
    layer = build(variant, backend)
    state, name = with_bad_h(layer, np.zeros((B + 1, H)))
    with pytest.raises(
        ValueError, match=rf"{name} must have shape \(2, 4\), got \(3, 4\)"
    ):
        layer.forward(good_x(layer), state)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("variant", CELL_IDS)
def test_state_dtype(variant, backend):
    layer = build(variant, backend)
    state, name = with_bad_h(layer, np.zeros((B, H), np.float32))
    pattern = rf"{name} must have dtype float64 \(the layer's dtype\), got float32"
    with pytest.raises(TypeError, match=pattern):
        layer.forward(good_x(layer), state)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("variant", CELL_IDS)
def test_state_must_be_finite(variant, backend):
    layer = build(variant, backend)
    h = np.zeros((B, H))
    h[1, 2] = np.nan
    state, name = with_bad_h(layer, h)
    with pytest.raises(ValueError, match=rf"{name} contains 1 NaN or infinite"):
        layer.forward(good_x(layer), state)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("variant", ["rnn-tanh", "gru-torch"])
def test_state_of_a_one_state_cell_must_be_an_array(variant, backend):
    layer = build(variant, backend)
    h = np.zeros((B, H))
    message = "state must be a numpy array of shape (2, 4), got tuple"
    with pytest.raises(TypeError, match=re.escape(message)):
        layer.forward(good_x(layer), (h, h))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("slot", [0, 1])
def test_lstm_checks_both_h_and_c(backend, slot):
    layer = build("lstm", backend)
    state = [np.zeros((B, H)), np.zeros((B, H))]
    state[slot] = np.zeros((B, H + 1))
    pattern = rf"state\[{slot}\] must have shape \(2, 4\), got \(2, 5\)"
    with pytest.raises(ValueError, match=pattern):
        layer.forward(good_x(layer), tuple(state))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "make_state, got",
    [
        (lambda h: h, "got ndarray"),
        (lambda h: [h, h], "got list"),
        (lambda h: (h, h, h), "got tuple of length 3"),
        (lambda h: (h,), "got tuple of length 1"),
    ],
    ids=["array", "list", "3-tuple", "1-tuple"],
)
def test_lstm_state_must_be_a_pair(backend, make_state, got):
    layer = build("lstm", backend)
    expected = "state of an LSTM must be a tuple (h, c) of two arrays of shape (2, 4)"
    with pytest.raises(TypeError, match=re.escape(expected) + ".*" + re.escape(got)):
        layer.forward(good_x(layer), make_state(np.zeros((B, H))))


# -- forward: reset --------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("variant", CELL_IDS)
@pytest.mark.parametrize(
    "shape, got",
    [((T, B + 1), "(5, 3)"), ((B, T), "(2, 5)"), ((T,), "(5,)")],
    ids=["wrong-B", "transposed", "1d"],
)
def test_reset_shape(variant, backend, shape, got):
    layer = build(variant, backend)
    message = f"reset must have shape (5, 2), got {got}"
    with pytest.raises(ValueError, match=re.escape(message)):
        layer.forward(good_x(layer), reset=np.zeros(shape, bool))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("variant", CELL_IDS)
@pytest.mark.parametrize("dtype", [np.int64, np.float64, np.uint8])
def test_reset_must_be_boolean(variant, backend, dtype):
    layer = build(variant, backend)
    message = f"reset must have dtype bool, got {np.dtype(dtype).name}"
    with pytest.raises(TypeError, match=re.escape(message)):
        layer.forward(good_x(layer), reset=np.zeros((T, B), dtype))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("variant", CELL_IDS)
def test_reset_must_be_an_array(variant, backend):
    layer = build(variant, backend)
    message = "reset must be a boolean numpy array of shape (5, 2), got list"
    with pytest.raises(TypeError, match=re.escape(message)):
        layer.forward(good_x(layer), reset=[[False] * B] * T)


# -- backward --------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("variant", CELL_IDS)
@pytest.mark.parametrize(
    "shape, got",
    [((T, B, H + 1), "(5, 2, 5)"), ((T - 1, B, H), "(4, 2, 4)")],
    ids=["wrong-H", "wrong-T"],
)
def test_d_out_shape(variant, backend, shape, got):
    layer = build(variant, backend)
    _, _, cache = layer.forward(good_x(layer))
    message = f"d_out must have shape (5, 2, 4), got {got}"
    with pytest.raises(ValueError, match=re.escape(message)):
        layer.backward(np.ones(shape), cache)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("variant", CELL_IDS)
def test_d_out_dtype(variant, backend):
    layer = build(variant, backend, dtype=np.float32)
    out, _, cache = layer.forward(good_x(layer))
    message = "d_out must have dtype float32 (the layer's dtype), got float64"
    with pytest.raises(TypeError, match=re.escape(message)):
        layer.backward(np.ones(out.shape), cache)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("variant", CELL_IDS)
def test_d_out_must_be_finite(variant, backend):
    layer = build(variant, backend)
    out, _, cache = layer.forward(good_x(layer))
    d_out = np.ones_like(out)
    d_out[2, 1, 0] = np.nan
    with pytest.raises(ValueError, match=re.escape("d_out contains 1 NaN")):
        layer.backward(d_out, cache)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("variant", CELL_IDS)
def test_cache_from_another_layer_of_the_same_kind(variant, backend):
    layer = build(variant, backend)
    twin = build(variant, backend)  # same class, shapes and even weights
    x = good_x(layer)
    out, _, twin_cache = twin.forward(x)
    layer.forward(x)
    name = type(layer).__name__
    with pytest.raises(ValueError, match=rf"^cache\b.*another {name}"):
        layer.backward(np.ones_like(out), twin_cache)
    # The twin's own cache still works: only the pairing is wrong.
    twin.backward(np.ones_like(out), twin_cache)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("variant", CELL_IDS)
def test_cache_from_another_cell_class(variant, backend):
    layer = build(variant, backend)
    other = build("gru-torch" if layer.cell == "lstm" else "lstm", backend)
    out, _, other_cache = other.forward(good_x(other))
    want, got = CACHE_NAMES[type(layer)], CACHE_NAMES[type(other)]
    with pytest.raises(TypeError, match=rf"^cache must be .*{want}.*got {got}"):
        layer.backward(np.ones((T, B, H)), other_cache)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("variant", CELL_IDS)
@pytest.mark.parametrize(
    "garbage, got",
    [(None, "NoneType"), ((1, 2, 3), "tuple"), ({"x": 0}, "dict")],
    ids=["none", "tuple", "dict"],
)
def test_garbage_cache(variant, backend, garbage, got):
    layer = build(variant, backend)
    layer.forward(good_x(layer))
    want = CACHE_NAMES[type(layer)]
    with pytest.raises(TypeError, match=rf"^cache must be .*{want}.*got {got}\b"):
        layer.backward(np.ones((T, B, H)), garbage)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("variant", CELL_IDS)
def test_d_state_shape(variant, backend):
    layer = build(variant, backend)
    out, _, cache = layer.forward(good_x(layer))
    bad = np.ones((B + 1, H))
    if layer.has_cell_state:
        d_state, name = (bad, np.ones((B, H))), r"d_state\[0\]"
    else:
        d_state, name = bad, "d_state"
    with pytest.raises(
        ValueError, match=rf"{name} must have shape \(2, 4\), got \(3, 4\)"
    ):
        layer.backward(np.ones_like(out), cache, d_state)


@pytest.mark.parametrize("backend", BACKENDS)
def test_lstm_d_state_must_be_a_pair(backend):
    layer = build("lstm", backend)
    out, _, cache = layer.forward(good_x(layer))
    message = "d_state of an LSTM must be a tuple (h, c) of two arrays of shape (2, 4)"
    with pytest.raises(TypeError, match=re.escape(message) + ", got ndarray"):
        layer.backward(np.ones_like(out), cache, np.ones((B, H)))


# -- parameters ------------------------------------------------------------------------


def shapes_of(layer):
    GH = layer.n_gates * H
    return {
        "weight_ih": (GH, D),
        "weight_hh": (GH, H),
        "bias_ih": (GH,),
        "bias_hh": (GH,),
    }


@pytest.mark.parametrize("variant", CELL_IDS)
def test_load_params_with_a_missing_key(variant):
    layer = build(variant, "numpy")
    before = {k: v.copy() for k, v in layer.params.items()}
    params = {k: v for k, v in layer.params.items() if k != "bias_hh"}
    message = (
        "params must have exactly the keys "
        "['weight_ih', 'weight_hh', 'bias_ih', 'bias_hh'], "
        "got ['bias_ih', 'weight_hh', 'weight_ih']"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        layer.load_params(params)
    for k, v in before.items():
        np.testing.assert_array_equal(layer.params[k], v)


@pytest.mark.parametrize("variant", CELL_IDS)
def test_load_params_with_an_extra_key(variant):
    layer = build(variant, "numpy")
    params = {**layer.params, "weight_hr": np.zeros((H, H))}
    message = "got ['bias_hh', 'bias_ih', 'weight_hh', 'weight_hr', 'weight_ih']"
    with pytest.raises(ValueError, match=re.escape(message)):
        layer.load_params(params)


@pytest.mark.parametrize("variant", CELL_IDS)
@pytest.mark.parametrize("name", ["weight_ih", "weight_hh", "bias_ih", "bias_hh"])
def test_load_params_with_a_wrong_shape(variant, name):
    layer = build(variant, "numpy")
    before = {k: v.copy() for k, v in layer.params.items()}
    shape = shapes_of(layer)[name]
    wrong = (shape[0] + 1, *shape[1:])
    expected = str(tuple(shape))
    message = f"params[{name!r}] must have shape {expected}, got {wrong}"
    with pytest.raises(ValueError, match=re.escape(message)):
        layer.load_params({**layer.params, name: np.zeros(wrong)})
    # A failed load leaves every parameter as it was.
    for k, v in before.items():
        np.testing.assert_array_equal(layer.params[k], v)


@pytest.mark.parametrize("variant", CELL_IDS)
def test_load_params_with_a_wrong_number_of_dimensions(variant):
    layer = build(variant, "numpy")
    GH = layer.n_gates * H
    message = f"params['bias_ih'] must have 1 dimensions ({GH},), got 2"
    with pytest.raises(ValueError, match=re.escape(message)):
        layer.load_params({**layer.params, "bias_ih": np.zeros((GH, 1))})


def test_load_params_rejects_nan():
    layer = build("gru-cho", "numpy")
    bias = np.zeros(3 * H)
    bias[0] = np.nan
    with pytest.raises(ValueError, match=re.escape("params['bias_hh'] contains 1 NaN")):
        layer.load_params({**layer.params, "bias_hh": bias})


def test_load_params_with_a_value_that_is_not_numbers():
    layer = build("rnn-tanh", "numpy")
    with pytest.raises(TypeError, match=r"^params\['weight_hh'\] .*got str"):
        layer.load_params({**layer.params, "weight_hh": "zeros"})


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("variant", CELL_IDS)
def test_replaced_weight_of_a_wrong_shape_is_caught_by_forward(variant, backend):
    layer = build(variant, backend)
    GH = layer.n_gates * H
    layer.params["weight_hh"] = np.zeros((GH, H + 1))
    message = f"params['weight_hh'] must have shape ({GH}, {H}), got ({GH}, {H + 1})"
    with pytest.raises(ValueError, match=re.escape(message)):
        layer.forward(good_x(layer))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("variant", CELL_IDS)
def test_replaced_weight_of_a_wrong_dtype_is_caught_by_forward(variant, backend):
    layer = build(variant, backend)
    layer.params["weight_hh"] = layer.params["weight_hh"].astype(np.float32)
    message = "params['weight_hh'] must have dtype float64 (the layer's dtype), got"
    with pytest.raises(TypeError, match=re.escape(message)):
        layer.forward(good_x(layer))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("variant", CELL_IDS)
def test_replaced_weight_of_a_wrong_shape_is_caught_by_backward(variant, backend):
    layer = build(variant, backend)
    out, _, cache = layer.forward(good_x(layer))
    GH = layer.n_gates * H
    layer.params["weight_ih"] = np.zeros((GH, D + 2))
    message = f"params['weight_ih'] must have shape ({GH}, {D}), got ({GH}, {D + 2})"
    with pytest.raises(ValueError, match=re.escape(message)):
        layer.backward(np.ones_like(out), cache)

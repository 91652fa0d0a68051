"""Clipping against torch.nn.utils.clip_grad_norm_ and clip_grad_value_.

PyTorch clips the ``.grad`` of parameters, so the reference wraps each NumPy
gradient as the gradient of a throwaway ``torch.nn.Parameter``.
"""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from rnnrec.clipping import clip_grad_norm, clip_grad_value

DTYPES = [np.float64, np.float32]
# Scaled gradients differ from PyTorch's by the rounding of the scale factor,
# which PyTorch computes in the gradients' dtype and rnnrec in float64.
RTOL = {np.dtype(np.float64): 1e-12, np.dtype(np.float32): 2e-6}
ATOL = {np.dtype(np.float64): 1e-300, np.dtype(np.float32): 1e-37}


def grad_lists(dtype, max_size=4):
    """Draw a list of 1 to ``max_size`` small arrays with bounded finite entries."""
    width = 32 if np.dtype(dtype) == np.float32 else 64
    values = st.floats(-100, 100, allow_nan=False, allow_infinity=False, width=width)
    # Tiny entries are flushed to zero: their squares underflow (in PyTorch too).
    values = values.map(lambda v: 0.0 if abs(v) < 1e-15 else v)
    shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5)
    return st.lists(
        hnp.arrays(dtype, shapes, elements=values), min_size=1, max_size=max_size
    )


def as_parameters(arrays):
    params = []
    for a in arrays:
        p = torch.nn.Parameter(torch.zeros(a.shape, dtype=torch.from_numpy(a).dtype))
        p.grad = torch.from_numpy(a.copy())
        params.append(p)
    return params


def torch_clip_norm(arrays, max_norm, **kwargs):
    params = as_parameters(arrays)
    total = torch.nn.utils.clip_grad_norm_(params, max_norm, **kwargs)
    return float(total), [p.grad.numpy() for p in params]


def torch_clip_value(arrays, clip_value):
    params = as_parameters(arrays)
    torch.nn.utils.clip_grad_value_(params, clip_value)
    return [p.grad.numpy() for p in params]


def global_norm(arrays):
    return float(np.sqrt(sum(np.sum(a.astype(np.float64) ** 2) for a in arrays)))


def assert_same_arrays(ours, theirs):
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs, strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=RTOL[a.dtype], atol=ATOL[a.dtype])


def to_container(arrays, kind):
    if kind == "dict":
        return {f"g{i}": a for i, a in enumerate(arrays)}
    return list(arrays)


def values_of(grads):
    return list(grads.values()) if isinstance(grads, dict) else list(grads)


# -- clip_grad_norm -----------------------------------------------------------------


@pytest.mark.parametrize("kind", ["list", "dict"])
@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=40, deadline=None)
@given(data=st.data(), ratio=st.floats(0.05, 3.0))
def test_clip_grad_norm_matches_torch(kind, dtype, data, ratio):
    arrays = data.draw(grad_lists(dtype))
    norm = global_norm(arrays)
    max_norm = ratio * norm
    reference_norm, reference = torch_clip_norm(arrays, max_norm)
    grads = to_container([a.copy() for a in arrays], kind)
    objects = [id(g) for g in values_of(grads)]

    total = clip_grad_norm(grads, max_norm)

    # The same array objects, changed in place.
    assert [id(g) for g in values_of(grads)] == objects
    assert isinstance(total, float)
    assert total == pytest.approx(norm, rel=1e-12, abs=0)
    assert total == pytest.approx(reference_norm, rel=RTOL[np.dtype(dtype)], abs=0)
    assert_same_arrays(values_of(grads), reference)
    # PyTorch's rule: scale by max_norm / (norm + eps) when that is below 1.
    scale = max_norm / (norm + 1e-6)
    if scale >= 1.0:  # untouched, bit for bit
        for g, a in zip(values_of(grads), arrays, strict=True):
            np.testing.assert_array_equal(g, a)
    elif scale < 0.999:  # scaled down to about max_norm
        clipped = global_norm(values_of(grads))
        assert clipped == pytest.approx(scale * norm, rel=1e-5, abs=0)
        assert clipped <= max_norm * (1 + RTOL[np.dtype(dtype)])


@pytest.mark.parametrize("dtype", DTYPES)
def test_clip_grad_norm_scales_to_max_norm(dtype):
    grads = {"w": np.array([3.0, 0.0], dtype), "b": np.array([[4.0]], dtype)}
    total = clip_grad_norm(grads, 1.0)
    assert total == 5.0
    scale = 1.0 / (5.0 + 1e-6)  # PyTorch's eps in the denominator
    np.testing.assert_allclose(grads["w"], [3 * scale, 0.0], rtol=1e-7)
    np.testing.assert_allclose(grads["b"], [[4 * scale]], rtol=1e-7)
    assert grads["w"].dtype == dtype and grads["b"].dtype == dtype


@pytest.mark.parametrize("dtype", DTYPES)
def test_clip_grad_norm_below_max_norm_changes_nothing(dtype):
    grads = [np.array([0.3, -0.4], dtype)]
    assert clip_grad_norm(grads, 0.5 + 1e-3) == pytest.approx(0.5)
    np.testing.assert_array_equal(grads[0], np.array([0.3, -0.4], dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["list", "dict"])
def test_max_norm_zero_zeroes_the_gradients_as_torch_does(dtype, kind):
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(s).astype(dtype) for s in [(3, 2), (4,)]]
    reference_norm, reference = torch_clip_norm(arrays, 0.0)
    grads = to_container([a.copy() for a in arrays], kind)
    total = clip_grad_norm(grads, 0)
    assert total == pytest.approx(reference_norm, rel=RTOL[np.dtype(dtype)], abs=0)
    assert total == pytest.approx(global_norm(arrays), rel=1e-12, abs=0)
    for g in values_of(grads):
        np.testing.assert_array_equal(g, 0)
    assert_same_arrays(values_of(grads), reference)


def test_all_zero_gradients_and_no_gradients():
    grads = [np.zeros((2, 2)), np.zeros(0)]
    assert clip_grad_norm(grads, 0.0) == 0.0
    np.testing.assert_array_equal(grads[0], 0)
    assert clip_grad_norm([], 1.0) == 0.0
    assert clip_grad_norm({}, 1.0) == 0.0


def test_float32_norm_is_summed_without_overflow():
    # Squares of 1e30 overflow float32; the norm is summed in float64.
    grads = [np.full(3, 1e30, np.float32)]
    total = clip_grad_norm(grads, 1.0)
    assert total == pytest.approx(np.sqrt(3) * 1e30, rel=1e-6, abs=0)
    np.testing.assert_allclose(grads[0], np.full(3, 1 / np.sqrt(3)), rtol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "bad", [np.inf, -np.inf, np.nan], ids=["inf", "minus-inf", "nan"]
)
def test_nonfinite_gradients_behave_as_in_torch(dtype, bad):
    arrays = [np.array([1.0, bad, -2.0], dtype), np.array([[3.0], [0.5]], dtype)]
    reference_norm, reference = torch_clip_norm(arrays, 1.0)
    grads = [a.copy() for a in arrays]
    total = clip_grad_norm(grads, 1.0)
    if np.isnan(bad):
        assert np.isnan(total) and np.isnan(reference_norm)
        assert all(np.isnan(g).all() for g in grads)
    else:
        # An infinite norm scales by 0: finite entries become 0, inf * 0 is NaN.
        assert total == reference_norm == np.inf
        np.testing.assert_array_equal(grads[0], [0.0, np.nan, 0.0])
        np.testing.assert_array_equal(grads[1], 0)
    for ours, theirs in zip(grads, reference, strict=True):
        np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bad", [np.inf, np.nan], ids=["inf", "nan"])
def test_error_if_nonfinite(dtype, bad):
    arrays = [np.array([1.0, bad], dtype), np.ones(3, dtype)]
    with pytest.raises(RuntimeError, match="non-finite"):
        torch_clip_norm(arrays, 1.0, error_if_nonfinite=True)
    grads = {"w": arrays[0].copy(), "b": arrays[1].copy()}
    with pytest.raises(FloatingPointError, match=rf"norm is {np.float64(bad)}"):
        clip_grad_norm(grads, 1.0, error_if_nonfinite=True)
    # Refused before touching anything.
    np.testing.assert_array_equal(grads["w"], arrays[0])
    np.testing.assert_array_equal(grads["b"], arrays[1])


@pytest.mark.parametrize("dtype", DTYPES)
def test_error_if_nonfinite_with_finite_gradients_clips_as_usual(dtype):
    arrays = [np.array([3.0, 4.0], dtype)]
    reference_norm, reference = torch_clip_norm(arrays, 2.0, error_if_nonfinite=True)
    grads = [arrays[0].copy()]
    assert clip_grad_norm(grads, 2.0, error_if_nonfinite=True) == reference_norm
    assert_same_arrays(grads, reference)


# -- clip_grad_value ----------------------------------------------------------------


@pytest.mark.parametrize("kind", ["list", "dict"])
@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=40, deadline=None)
@given(data=st.data(), clip_value=st.floats(0.0, 150.0))
def test_clip_grad_value_matches_torch(kind, dtype, data, clip_value):
    arrays = data.draw(grad_lists(dtype))
    reference = torch_clip_value(arrays, clip_value)
    grads = to_container([a.copy() for a in arrays], kind)
    objects = [id(g) for g in values_of(grads)]

    assert clip_grad_value(grads, clip_value) is None

    assert [id(g) for g in values_of(grads)] == objects
    bound = np.dtype(dtype).type(clip_value)
    for g, a, r in zip(values_of(grads), arrays, reference, strict=True):
        assert g.dtype == a.dtype
        np.testing.assert_array_equal(g, r)
        assert np.all(np.abs(g) <= bound)
        inside = np.abs(a) <= bound
        np.testing.assert_array_equal(g[inside], a[inside])


@pytest.mark.parametrize("dtype", DTYPES)
def test_clip_grad_value_with_nonfinite_entries_as_torch(dtype):
    arrays = [np.array([np.nan, np.inf, -np.inf, 0.25, -7.0], dtype)]
    reference = torch_clip_value(arrays, 1.0)
    grads = [arrays[0].copy()]
    clip_grad_value(grads, 1.0)
    np.testing.assert_array_equal(grads[0], [np.nan, 1.0, -1.0, 0.25, -1.0])
    np.testing.assert_array_equal(grads[0], reference[0])


def test_clip_value_zero_zeroes_everything():
    grads = {"w": np.array([[-3.0, 2.0], [0.0, 1e-300]])}
    clip_grad_value(grads, 0.0)
    np.testing.assert_array_equal(grads["w"], 0)


# -- bad arguments ------------------------------------------------------------------

CLIPPERS = [clip_grad_norm, clip_grad_value]
LIMIT_NAMES = {clip_grad_norm: "max_norm", clip_grad_value: "clip_value"}


@pytest.mark.parametrize("clip", CLIPPERS)
@pytest.mark.parametrize("value", [-1, -1e-9, np.nan, -np.inf], ids=str)
def test_limit_must_be_non_negative(clip, value):
    name = LIMIT_NAMES[clip]
    grads = [np.array([1.0, -2.0])]
    with pytest.raises(ValueError, match=rf"^{name} must be a non-negative number"):
        clip(grads, value)
    np.testing.assert_array_equal(grads[0], [1.0, -2.0])


def test_an_infinite_max_norm_only_measures():
    grads = {"w": np.array([30.0, -40.0]), "b": np.array([1e100])}
    assert clip_grad_norm({"w": grads["w"]}, np.inf) == 50.0
    assert clip_grad_norm(grads, np.inf) == 1e100
    np.testing.assert_array_equal(grads["w"], [30.0, -40.0])
    np.testing.assert_array_equal(grads["b"], [1e100])


@pytest.mark.parametrize("clip", CLIPPERS)
@pytest.mark.parametrize("value", [None, "1.0", [1.0], np.ones(2), True], ids=repr)
def test_limit_must_be_a_number(clip, value):
    name = LIMIT_NAMES[clip]
    grads = [np.array([1.0, -2.0])]
    with pytest.raises(TypeError, match=rf"^{name} must be a number, got "):
        clip(grads, value)
    np.testing.assert_array_equal(grads[0], [1.0, -2.0])


@pytest.mark.parametrize("clip", CLIPPERS)
@pytest.mark.parametrize("value", [np.float32(0.5), np.int64(1), 2], ids=repr)
def test_numpy_and_integer_limits_are_accepted(clip, value):
    grads = [np.array([3.0, 4.0])]
    clip(grads, value)
    assert np.abs(grads[0]).max() <= float(value) + 1e-6


@pytest.mark.parametrize("clip", CLIPPERS)
@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.bool_, np.complex128])
def test_non_float_arrays_in_a_list(clip, dtype):
    grads = [np.ones(2), np.ones(3, dtype)]
    got = np.dtype(dtype).name
    with pytest.raises(TypeError, match=rf"floating-point numpy array.*\b{got}\b"):
        clip(grads, 1.0)
    np.testing.assert_array_equal(grads[0], 1.0)


@pytest.mark.parametrize("clip", CLIPPERS)
def test_non_float_array_in_a_dict_is_named_by_its_key(clip):
    grads = {"weight_ih": np.ones(2), "weight_hh": np.ones((2, 2), np.int64)}
    with pytest.raises(TypeError, match=r"grads\['weight_hh'\].*\bint64\b"):
        clip(grads, 1.0)


@pytest.mark.parametrize("clip", CLIPPERS)
@pytest.mark.parametrize(
    "entry, got",
    [([1.0, 2.0], "list"), (torch.ones(2), "Tensor"), (3.0, "float")],
    ids=["list", "tensor", "float"],
)
def test_entries_that_are_not_numpy_arrays(clip, entry, got):
    with pytest.raises(TypeError, match=rf"floating-point numpy array.*\b{got}\b"):
        clip([np.ones(2), entry], 1.0)


@pytest.mark.parametrize("clip", CLIPPERS)
def test_grads_that_is_not_a_collection(clip):
    with pytest.raises(TypeError, match=r"^grads must be .*got float"):
        clip(3.0, 1.0)


@pytest.mark.parametrize("shape", [(2,), (2, 2)])
def test_a_single_array_is_clipped_as_torch_clips_a_single_tensor(shape):
    g = np.full(shape, 2.0)
    p = torch.nn.Parameter(torch.zeros(shape, dtype=torch.float64))
    p.grad = torch.from_numpy(g.copy())
    reference_norm = float(torch.nn.utils.clip_grad_norm_(p, 1.0))
    assert clip_grad_norm(g, 1.0) == pytest.approx(reference_norm, rel=1e-12, abs=0)
    np.testing.assert_allclose(g, p.grad.numpy(), rtol=1e-12)
    clip_grad_value(g, 0.1)
    np.testing.assert_array_equal(g, 0.1)


def test_a_norm_beyond_float64_is_infinite_not_an_overflow_error():
    grads = {"a": np.array([1.2e154]), "b": np.array([1.2e154])}
    assert clip_grad_norm(grads, 1.0) == math.inf

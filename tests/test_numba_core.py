"""The Numba core computes the same numbers as the NumPy reference."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnrec.gradcheck import normwise_relative_error
from rnnrec.kernels import gatemath
from rnnrec.kernels._jit import jit
from tests.strategies import CELL_IDS, make_layer, random_state, seeds, shapes

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_layer(layer, x, state, reset, g_out, g_state, cache=None):
    out, final, cache = layer.forward(x, state, reset)
    dx, d_state0, grads = layer.backward(g_out, cache, g_state)
    flat = {"out": out, "dx": dx, **grads}
    for name, value in (("final", final), ("d_state0", d_state0)):
        for i, v in enumerate(value if isinstance(value, tuple) else (value,)):
            flat[f"{name}{i}"] = v
    return flat


def random_problem(layer, T, B, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((T, B, layer.input_size)).astype(layer.dtype)
    reset = rng.random((T, B)) < 0.3
    g_out = rng.standard_normal((T, B, layer.hidden_size)).astype(layer.dtype)
    return x, random_state(layer, B, rng), reset, g_out, random_state(layer, B, rng)


@pytest.mark.parametrize("variant", CELL_IDS)
@settings(max_examples=25, deadline=None)
@given(shape=shapes(max_t=12, max_b=6, max_d=20, max_h=20), seed=seeds)
def test_numba_matches_numpy_in_float64(variant, shape, seed):
    T, B, D, H = shape
    reference = make_layer(variant, D, H, backend="numpy", seed=seed)
    fast = make_layer(variant, D, H, backend="numba", seed=seed)
    problem = random_problem(reference, T, B, seed)
    want = run_layer(reference, *problem)
    got = run_layer(fast, *problem)
    for name in want:
        assert got[name].dtype == np.float64, name
        err = normwise_relative_error(got[name], want[name])
        assert err < 1e-12, f"{name}: {err:.2e}"


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("variant", CELL_IDS)
@settings(max_examples=15, deadline=None)
@given(shape=shapes(max_t=12, max_b=6, max_d=20, max_h=20), seed=seeds)
def test_float32_backends_match_the_float64_reference(variant, backend, shape, seed):
    # Two float32 computations differ by their own rounding; each is judged
    # against float64 on the same weights and inputs.
    T, B, D, H = shape
    reference = make_layer(variant, D, H, backend="numpy", seed=seed)
    low = make_layer(variant, D, H, backend=backend, dtype=np.float32, seed=seed)
    low.load_params({k: v.astype(np.float32) for k, v in reference.params.items()})
    reference.load_params(low.params)  # the float32 weights, exactly
    problem = random_problem(low, T, B, seed)
    got = run_layer(low, *problem)
    want = run_layer(reference, *_to_float64(problem))
    for name in want:
        assert got[name].dtype == np.float32, name
        err = normwise_relative_error(got[name], want[name])
        assert err < 1e-4, f"{name}: {err:.2e}"


def _to_float64(problem):
    def up(a):
        if a is None or a.dtype == bool:
            return a
        return a.astype(np.float64)

    return tuple(
        tuple(up(s) for s in item) if isinstance(item, tuple) else up(item)
        for item in problem
    )


@pytest.mark.parametrize("variant", CELL_IDS)
def test_caches_are_interchangeable_between_backends(variant):
    layer = make_layer(variant, 4, 6, backend="numpy", seed=1)
    x, state, reset, g_out, g_state = random_problem(layer, 5, 3, 2)
    _, _, cache = layer.forward(x, state, reset)
    want = layer.backward(g_out, cache, g_state)[2]
    layer.backend = "numba"
    got = layer.backward(g_out, cache, g_state)[2]
    for name in want:
        assert normwise_relative_error(got[name], want[name]) < 1e-12


@pytest.mark.parametrize("variant", CELL_IDS)
def test_large_shapes_agree(variant):
    # Shapes where the BLAS takes its blocked paths.
    reference = make_layer(variant, 70, 96, backend="numpy", seed=3)
    fast = make_layer(variant, 70, 96, backend="numba", seed=3)
    problem = random_problem(reference, 9, 33, 4)
    want, got = run_layer(reference, *problem), run_layer(fast, *problem)
    for name in want:
        assert normwise_relative_error(got[name], want[name]) < 1e-12, name


@jit
def _apply(kind, x, out):
    for i in range(x.size):
        if kind == 0:
            out[i] = gatemath.tanh(x[i])
        elif kind == 1:
            out[i] = gatemath.sigmoid(x[i])
        else:
            out[i] = gatemath.exp_nonpositive(x[i])


def _sigmoid_reference(a):
    e = np.exp(-np.abs(a))
    return np.where(a >= 0, 1 / (1 + e), e / (1 + e))


EDGES = [0.0, -0.0, 1e-300, -1e-300, 5e-324, 1e-8, -1e-8, 0.3465, -0.3466]
EDGES += [19.0, -19.0, 22.0, -22.0, 23.0, 708.0, -708.0, 1e4, -1e4, 1e300, -1e300]


@pytest.mark.parametrize(
    "kind, reference",
    [(0, np.tanh), (1, _sigmoid_reference), (2, np.exp)],
    ids=["tanh", "sigmoid", "exp"],
)
def test_gate_math_is_accurate_to_a_few_ulps(kind, reference):
    rng = np.random.default_rng(0)
    x = np.concatenate(
        [rng.standard_normal(50_000), 30 * rng.standard_normal(50_000), EDGES]
    )
    if kind == 2:
        x = -np.abs(x[np.abs(x) <= 700])
    out = np.empty_like(x)
    with np.errstate(all="raise"):
        _apply(kind, x, out)
    want = reference(x)
    normal = np.abs(want) > np.finfo(np.float64).tiny
    rel = np.abs(out - want)[normal] / np.abs(want)[normal]
    assert np.isfinite(out).all()
    assert rel.max() < 4 * np.finfo(np.float64).eps
    # Values that underflow stay tiny, never garbage.
    assert np.abs(out[~normal] - want[~normal]).max(initial=0) < 1e-300


@settings(max_examples=200, deadline=None)
@given(st.floats(-1e4, 1e4, allow_nan=False))
def test_tanh_and_sigmoid_stay_in_range(value):
    x = np.array([value])
    out = np.empty(1)
    _apply(0, x, out)
    assert -1.0 <= out[0] <= 1.0
    _apply(1, x, out)
    assert 0.0 <= out[0] <= 1.0


SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    sys.path.insert(0, {root!r})
    from tests.test_numba_core import random_problem, run_layer
    from tests.strategies import CELL_IDS, make_layer
    from rnnrec.gradcheck import normwise_relative_error
    import rnnrec.kernels
    worst = 0.0
    for variant in CELL_IDS:
        ref = make_layer(variant, 3, 5, backend="numpy", seed=0)
        fast = make_layer(variant, 3, 5, backend="numba", seed=0)
        problem = random_problem(ref, 4, 2, 0)
        want, got = run_layer(ref, *problem), run_layer(fast, *problem)
        for k in want:
            worst = max(worst, normwise_relative_error(got[k], want[k]))
    from rnnrec.kernels.lstm import lstm_forward_loop
    hits = getattr(getattr(lstm_forward_loop, "stats", None), "cache_hits", {{}})
    print(json.dumps({{"worst": worst, "blas": rnnrec.kernels.BLAS,
                       "cache_hits": sum(hits.values())}}))
    """
)


def run_child(**env):
    full = dict(os.environ, **env)
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(root=ROOT)],
        env=full,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_kernels_run_as_plain_python_with_the_jit_disabled():
    report = run_child(NUMBA_DISABLE_JIT="1")
    assert report["blas"].startswith("ctypes")
    assert report["worst"] < 1e-12


def test_fallback_without_blas_computes_the_same_numbers(tmp_path):
    report = run_child(RNNREC_NO_BLAS="1", NUMBA_CACHE_DIR=str(tmp_path))
    assert report["blas"].startswith("loops")
    assert report["worst"] < 1e-12
    assert report["cache_hits"] == 0
    assert not any(tmp_path.rglob("*.nbi")), "the fallback must not be cached"


def test_a_second_process_loads_compiled_kernels_from_the_cache(tmp_path):
    first = run_child(NUMBA_CACHE_DIR=str(tmp_path))
    second = run_child(NUMBA_CACHE_DIR=str(tmp_path))
    assert first["cache_hits"] == 0
    assert second["cache_hits"] >= 1
    assert second["worst"] < 1e-12


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("variant", CELL_IDS)
@pytest.mark.parametrize("T", [1, 4])
def test_backward_without_the_state_gradient_changes_nothing_else(variant, backend, T):
    # The recommender treats the carried-in state as a constant and asks for no
    # gradient on it; the GRU's Numba kernel then skips a product. Everything
    # else must come out bit for bit as with the state's gradient.
    layer = make_layer(variant, 7, 9, backend=backend, seed=3)
    x, state, reset, g_out, g_state = random_problem(layer, T, 5, seed=4)
    _, _, cache = layer.forward(x, state, reset)
    dx, d_state0, grads = layer.backward(g_out, cache, g_state)
    dx_s, none, grads_s = layer.backward(g_out, cache, g_state, state_grad=False)
    assert none is None and d_state0 is not None
    np.testing.assert_array_equal(dx_s, dx)
    assert grads_s.keys() == grads.keys()
    for name in grads:
        np.testing.assert_array_equal(grads_s[name], grads[name], err_msg=name)

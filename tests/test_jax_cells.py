"""The JAX twin computes rnnrec's functions; the accuracy benchmark measures sense.

`benchmarks/jax_cells.py` is checked in float64 against rnnrec's NumPy
reference (forward and every gradient, to 1e-10), so that its float32 errors in
`benchmarks/bench_accuracy.py` are errors of rounding and not of a different
formula. The benchmark itself runs on the tiny shape.
"""

import importlib.util
import json
import math
import os

import numpy as np
import pytest

jax = pytest.importorskip("jax", reason="JAX is not installed (pip install .[jax])")

HERE = os.path.dirname(os.path.abspath(__file__))
BENCHMARKS = os.path.join(os.path.dirname(HERE), "benchmarks")
CELLS = ("rnn-tanh", "rnn-relu", "lstm", "gru-torch", "gru-cho")
PARAM_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def _script(name):
    spec = importlib.util.spec_from_file_location(
        name, os.path.join(BENCHMARKS, f"{name}.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def jax_cells():
    return _script("jax_cells")


@pytest.fixture(scope="module")
def accuracy():
    return _script("bench_accuracy")


def _layer(cell, D=5, H=4, seed=3):
    import rnnrec

    kw = {"dtype": np.float64, "backend": "numpy", "seed": seed}
    if cell.startswith("rnn"):
        return rnnrec.RNN(D, H, nonlinearity=cell[4:], **kw)
    if cell == "lstm":
        return rnnrec.LSTM(D, H, **kw)
    return rnnrec.GRU(D, H, variant=cell[4:], **kw)


def _problem(cell, T=7, B=3, D=5, H=4, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((T, B, D))
    h0 = 0.5 * rng.standard_normal((B, H))
    state0 = (h0, 0.5 * rng.standard_normal((B, H))) if cell == "lstm" else h0
    return x, state0, rng.standard_normal((T, B, H))


def _rel(a, b):
    return np.abs(a - b).max() / np.abs(b).max()


@pytest.mark.parametrize("cell", CELLS)
def test_float64_twin_equals_rnnrec_forward_and_gradients(jax_cells, cell):
    layer = _layer(cell)
    x, state0, G = _problem(cell)
    out, final, cache = layer.forward(x, state0)
    dx, d_state0, d_params = layer.backward(G, cache)

    with jax.enable_x64(True):
        j_out, j_final, j_grads = jax_cells.forward_and_grads(
            layer, x, state0, G, dtype=np.float64
        )

    assert j_out.dtype == np.float64
    assert _rel(j_out, out) < 1e-10
    if cell == "lstm":
        assert _rel(j_final[0], final[0]) < 1e-10
        assert _rel(j_final[1], final[1]) < 1e-10
        expected = {"x": dx, "h0": d_state0[0], "c0": d_state0[1]}
    else:
        assert _rel(j_final, final) < 1e-10
        expected = {"x": dx, "h0": d_state0}
    expected.update(d_params)
    assert set(j_grads) == set(expected)
    for name, want in expected.items():
        assert j_grads[name].dtype == np.float64, name
        assert _rel(j_grads[name], want) < 1e-10, name


@pytest.mark.parametrize(
    ("twin_of", "rnnrec_cell"),
    [("gru-torch", "gru-cho"), ("gru-cho", "gru-torch"), ("rnn-tanh", "rnn-relu")],
)
def test_the_twin_tells_the_variants_apart(jax_cells, twin_of, rnnrec_cell):
    # The equality above is not vacuous: on equal weights the variants differ.
    layer = _layer(rnnrec_cell)
    x, h0, G = _problem(rnnrec_cell)
    out, _, _ = layer.forward(x, h0)
    other = _layer(twin_of)
    other.load_params(layer.params)
    with jax.enable_x64(True):
        j_out, _, _ = jax_cells.forward_and_grads(other, x, h0, G, np.float64)
    assert _rel(j_out, out) > 1e-3


def test_float32_stays_float32_with_64_bit_types_on(jax_cells):
    layer = _layer("lstm")
    x, state0, G = _problem("lstm")
    with jax.enable_x64(True):
        out, final, grads = jax_cells.forward_and_grads(layer, x, state0, G)
    assert out.dtype == np.float32
    assert {a.dtype for a in (*final, *grads.values())} == {np.dtype(np.float32)}
    reference, _, _ = layer.forward(x, state0)
    assert 0 < _rel(out, reference) < 1e-5  # rounded, but the same function


def test_float64_without_64_bit_types_is_refused(jax_cells):
    layer = _layer("rnn-tanh")
    x, h0, G = _problem("rnn-tanh")
    with jax.enable_x64(False), pytest.raises(ValueError, match="jax_enable_x64"):
        jax_cells.forward_and_grads(layer, x, h0, G, dtype=np.float64)
    with pytest.raises(ValueError, match="float32 or float64"):
        jax_cells.forward_and_grads(layer, x, h0, G, dtype=np.float16)
    with pytest.raises(ValueError, match="cell must be one of"):
        jax_cells.scan_forward("gru-bogus", jax_cells.params_of(layer, "f4"), x, h0)


def test_relative_error_is_normwise_and_flags_non_finite_values(accuracy):
    b = np.array([[0.0, 2.0], [-4.0, 1e-30]])
    a = b + np.array([[1e-3, 0.0], [0.0, 1e-3]])
    # Normwise: the 1e-3 next to a reference of 1e-30 counts against max|b| = 4.
    assert accuracy.relative_error(a, b) == pytest.approx(1e-3 / 4)
    assert accuracy.relative_error(b, b) == 0.0
    assert accuracy.relative_error(np.full(3, 1e-9), np.zeros(3)) == 1e-9
    assert accuracy.relative_error(np.array([np.nan, 1.0]), np.ones(2)) == math.inf
    with pytest.raises(ValueError, match="shapes differ"):
        accuracy.relative_error(np.ones(2), np.ones(3))


def test_problems_are_float32_values_and_do_not_depend_on_the_subset(accuracy):
    layer, x, (h0, c0), G = accuracy.make_problem("lstm", "tiny", seed=0)
    again = accuracy.make_problem("lstm", "tiny", seed=0)
    other_cell = accuracy.make_problem("gru-cho", "tiny", seed=0)
    for a in (x, h0, c0, G, *layer.params.values()):
        assert a.dtype == np.float64
        np.testing.assert_array_equal(a, a.astype(np.float32))
    np.testing.assert_array_equal(again[1], x)
    assert not np.array_equal(other_cell[1], x)  # each cell draws its own inputs


def test_a_wrong_implementation_shows_a_large_error(accuracy):
    # The comparison is against the reference, not against the tensor itself.
    layer, x, h0, G = accuracy.make_problem("gru-torch", "tiny", seed=0)
    ref_forward, ref_grads = accuracy.run_rnnrec(
        "gru-torch", layer, "float64", "numpy", x, h0, G
    )
    forward, grads = accuracy.run_jax(layer, x, 1.01 * h0, G)
    assert accuracy.compare(forward, ref_forward)[0] > 1e-4
    error, worst, errors = accuracy.compare(grads, ref_grads)
    assert error > 1e-4
    assert errors[worst] == error and set(errors) == set(ref_grads)


def test_quick_run_reports_every_cell_and_implementation(accuracy, tmp_path):
    pytest.importorskip("torch", reason="PyTorch is not installed")
    out = tmp_path / "framework_error.json"
    assert accuracy.main(["--quick", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["kind"] == "framework_error"
    assert result["machine"]["jax"] == jax.__version__
    assert {"torch", "numpy", "numba", "threads"} <= set(result["machine"])
    rows = {(r["cell"], r["implementation"], r["dtype"]): r for r in result["rows"]}
    wanted = {
        (cell, name, dtype)
        for cell in CELLS
        for name, dtype in accuracy.IMPLEMENTATIONS
        if not (name == "torch" and cell == "gru-cho")
    }
    assert set(rows) == wanted
    for (cell, name, dtype), row in rows.items():
        assert row["shape"] == "tiny"
        tensors = {"out", "x", "h0", *PARAM_NAMES}
        if cell == "lstm":
            tensors |= {"c_T", "c0"}
        assert set(row["errors"]) == tensors
        assert row["gradient_worst"] in tensors and row["forward_worst"] in tensors
        assert max(row["errors"].values()) == max(
            row["forward_error"], row["gradient_error"]
        )
        if cell == "rnn-relu":
            assert isinstance(row["relu_flips"], int) and row["relu_flips"] >= 0
        else:
            assert row["relu_flips"] is None
        for error in (row["forward_error"], row["gradient_error"]):
            assert math.isfinite(error)
            if dtype == "float32":
                # Rounded (not compared with itself), yet the same function.
                assert 1e-9 < error < 1e-3, (cell, name, error)
            else:
                assert error < 1e-12, (cell, name, error)

    report = _script("report")
    table = report.error_table(result).splitlines()
    assert [line.split(" | ")[0] for line in table[4:]] == [f"| {c}" for c in CELLS]
    assert report.speed_ratios(result) == []


def test_an_error_above_the_limit_fails_the_run(accuracy, tmp_path, capsys):
    out = tmp_path / "strict.json"
    argv = ["--quick", "--cells", "rnn-tanh", "--max-error", "1e-12"]
    assert accuracy.main([*argv, "--out", str(out)]) == 1
    assert "error above 1e-12" in capsys.readouterr().out
    assert out.exists()  # the measurements are kept for inspection


def test_a_relu_flip_exempts_only_the_gradient_from_the_limit(accuracy):
    row = {"forward_error": 1e-7, "gradient_error": 5e-2, "relu_flips": None}
    assert not accuracy.within(row, 1e-3)
    assert accuracy.within({**row, "relu_flips": 1}, 1e-3)
    assert not accuracy.within({**row, "relu_flips": 1, "forward_error": 1e-2}, 1e-3)
    assert not accuracy.within({**row, "forward_error": math.nan}, 1e-3)
    assert not accuracy.within({**row, "gradient_error": math.inf}, 1e-1)
    assert not accuracy.within(
        {**row, "relu_flips": 2, "gradient_error": math.nan}, 1e-3
    )


def test_the_report_names_rows_with_relu_flips(accuracy):
    report = _script("report")
    row = {
        "cell": "rnn-relu",
        "shape": "large",
        "B": 256,
        "T": 100,
        "D": 256,
        "H": 512,
        "implementation": "torch",
        "dtype": "float32",
        "forward_error": 3.8e-7,
        "gradient_error": 8.4e-4,
        "gradient_worst": "x",
        "relu_flips": 1,
    }
    machine = {"processor": "cpu", "threads": 1, "numpy": "2", "numba": "0.6"}
    result = {"kind": "framework_error", "error": "e", "machine": machine}
    table = report.error_table({**result, "rows": [row]})
    assert "| rnn-relu | large (256, 100, 256, 512) | 3.8e-07 | 8.4e-04 (x) |" in table
    assert "rnn-relu large, PyTorch f32: 1 relu unit(s) switched" in table

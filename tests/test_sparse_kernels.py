"""The compiled row-sparse kernels against the NumPy expressions they replace."""

import math

import numpy as np
import pytest

from rnnrec.kernels.sparse import adagrad_rows, segment_sum
from rnnrec.optim import AdagradM, RowSparse, coalesce_rows


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("row_shape", [(), (1,), (7,), (3, 4)])
def test_coalesce_rows_adds_repeats_in_order(dtype, row_shape):
    rng = np.random.default_rng(0)
    rows = rng.integers(0, 30, 200)  # many repeats
    values = rng.standard_normal((200, *row_shape)).astype(dtype)
    g = coalesce_rows(rows, values)
    np.testing.assert_array_equal(g.rows, np.unique(rows))
    assert g.values.dtype == dtype and g.values.shape == (len(g.rows), *row_shape)
    # bit for bit the left-to-right sum of each row's lookups, in their order
    for r, summed in zip(g.rows, g.values, strict=True):
        expected = np.zeros(row_shape, dtype)
        for k in np.flatnonzero(rows == r):
            expected = expected + values[k]
        np.testing.assert_array_equal(summed, expected)
    # and within rounding of NumPy's (pairwise) reduceat
    order = np.argsort(rows, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(rows[order]) != 0])
    reference = np.add.reduceat(values[order], starts, axis=0)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(g.values, reference, rtol=tol, atol=tol)


def test_segment_sum_of_single_rows_copies_them():
    values = np.arange(12.0).reshape(4, 3)
    out = np.full((4, 3), np.nan)
    segment_sum(values, np.array([2, 0, 3, 1]), np.arange(4), out, work=12)
    np.testing.assert_array_equal(out, values[[2, 0, 3, 1]])


def _numpy_adagrad(p, G, v, where, g, lr, mu, eps):
    """The NumPy expressions of AdagradM, written out as the reference."""
    G[where] += g * g
    u = lr * g / np.sqrt(G[where] + eps)
    if mu:
        v[where] = mu * v[where] + u
        u = v[where]
    p[where] -= u


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("momentum", [0.0, 0.3])
@pytest.mark.parametrize("sparse", [False, True])
def test_adagradm_compiled_step_equals_the_numpy_rule_bit_for_bit(
    dtype, momentum, sparse
):
    rng = np.random.default_rng(1)
    p0 = rng.standard_normal((20, 5)).astype(dtype)
    params = {"w": p0.copy()}
    opt = AdagradM(params, lr=0.1, momentum=momentum, eps=1e-6)
    p, G, v = p0.copy(), np.zeros_like(p0), np.zeros_like(p0)
    for _ in range(4):
        if sparse:
            rows = np.sort(rng.choice(20, 6, replace=False))
            g = rng.standard_normal((6, 5)).astype(dtype)
            opt.step({"w": RowSparse(rows, g)})
            where = rows
        else:
            g = rng.standard_normal((20, 5)).astype(dtype)
            opt.step({"w": g})
            where = ...
        _numpy_adagrad(p, G, v, where, g, 0.1, momentum, 1e-6)
    np.testing.assert_array_equal(params["w"], p)
    np.testing.assert_array_equal(opt.state["w"]["sum_sq"], G)
    if momentum:
        np.testing.assert_array_equal(opt.state["w"]["velocity"], v)


def test_adagrad_rows_touches_only_the_listed_rows():
    p = np.ones((5, 2))
    G = np.zeros((5, 2))
    adagrad_rows(p, G, G, np.array([1, 3]), np.ones((2, 2)), 0.5, 0.0, 0.0, work=4)
    np.testing.assert_array_equal(p[[0, 2, 4]], 1.0)
    np.testing.assert_allclose(p[[1, 3]], 0.5)
    np.testing.assert_array_equal(G[[1, 3]], 1.0)


def test_a_non_contiguous_parameter_takes_the_numpy_path(monkeypatch):
    import rnnrec.optim

    def compiled(*args, **kwargs):
        raise AssertionError("the compiled path ran on a strided parameter")

    monkeypatch.setattr(rnnrec.optim, "adagrad_rows", compiled)
    base = np.ones((6, 4))
    params = {"w": base[:, ::2]}  # a strided view, updated in place
    opt = AdagradM(params, lr=0.5, momentum=0.2)
    opt.step({"w": np.ones((6, 2))})
    np.testing.assert_allclose(base[:, ::2], 0.5, rtol=1e-6)
    np.testing.assert_array_equal(base[:, 1::2], 1.0)


def test_row_squares_sums_each_row_in_float64():
    from rnnrec.kernels.sparse import row_squares

    rng = np.random.default_rng(4)
    x = rng.standard_normal((7, 301)).astype(np.float32) * 1e3
    out = np.full(7, np.nan)
    row_squares(x, out, work=x.size)
    exact = [math.fsum(float(v) ** 2 for v in row) for row in x]
    np.testing.assert_allclose(out, exact, rtol=1e-13)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_global_norm_matches_an_exact_sum_and_keeps_nan_and_inf(dtype):
    from rnnrec.model.training import global_norm

    rng = np.random.default_rng(5)
    arrays = [
        rng.standard_normal((40, 33)).astype(dtype),
        rng.standard_normal(17).astype(dtype),  # a bias
        np.asarray(2.5, dtype),  # 0-d
        np.zeros((0, 4), dtype),  # empty
        rng.standard_normal((9, 12)).astype(dtype)[:, ::3],  # strided
    ]
    exact = math.sqrt(math.fsum(float(v) ** 2 for a in arrays for v in a.ravel()))
    assert global_norm(arrays) == pytest.approx(exact, rel=1e-13)
    big = np.full(4, np.finfo(np.float32).max, np.float32)  # squares overflow f32
    assert global_norm([big]) == pytest.approx(2 * float(big[0]), rel=1e-7)
    assert math.isnan(global_norm([arrays[0], np.array([np.nan], dtype)]))
    assert global_norm([arrays[1], np.array([-np.inf], dtype)]) == math.inf

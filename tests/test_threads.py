"""Row kernels on threads compute the same numbers as on one thread."""

import numba
import numpy as np
import pytest

import rnnrec
from rnnrec.kernels import _jit, set_threads
from rnnrec.kernels.sparse import adagrad_rows, segment_sum

two_threads = pytest.mark.skipif(
    numba.config.NUMBA_NUM_THREADS < 2,
    reason="Numba has one thread here (NUMBA_NUM_THREADS or a one-core machine)",
)


@pytest.fixture
def threads(monkeypatch):
    """`set_threads` for the test; the old thread counts are restored after."""
    monkeypatch.setattr(_jit, "_row_threads", _jit._row_threads)
    before = numba.get_num_threads()
    yield set_threads
    numba.set_num_threads(before)
    _jit.set_blas_threads(before)


@pytest.fixture
def every_loop_on_threads(monkeypatch):
    """Send even the smallest row loop to the threaded kernels."""
    monkeypatch.setattr(_jit, "ROW_WORK", 0)


@two_threads
def test_segment_sum_and_adagrad_rows_agree_bit_for_bit(threads):
    threads(2)
    rng = np.random.default_rng(0)
    values = rng.standard_normal((500, 33))
    rows = rng.integers(0, 60, 500)
    order = np.argsort(rows, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(rows[order]) != 0])
    sums = [np.empty((len(starts), 33)) for _ in range(2)]
    segment_sum.serial(values, order, starts, sums[0])
    segment_sum.threaded(values, order, starts, sums[1])
    np.testing.assert_array_equal(sums[0], sums[1])

    unique = np.unique(rows)
    g = rng.standard_normal((len(unique), 33))
    p0, G0, v0 = rng.standard_normal((3, 60, 33))
    G0 = np.abs(G0)
    results = []
    for kernel in (adagrad_rows.serial, adagrad_rows.threaded):
        p, G, v = p0.copy(), G0.copy(), v0.copy()
        for _ in range(3):
            kernel(p, G, v, unique, g, 0.1, 0.4, 1e-6)
        results.append((p, G, v))
    for serial, threaded in zip(*results, strict=True):
        np.testing.assert_array_equal(serial, threaded)


@two_threads
@pytest.mark.parametrize("variant", ["torch", "cho"])
def test_gru_on_two_threads_equals_one_thread(threads, every_loop_on_threads, variant):
    rng = np.random.default_rng(1)
    T, B, D, H = 6, 9, 5, 7
    layer = rnnrec.GRU(D, H, variant=variant, backend="numba", seed=0)
    x = rng.standard_normal((T, B, D))
    h0 = rng.standard_normal((B, H))
    reset = rng.random((T, B)) < 0.2
    d_out = rng.standard_normal((T, B, H))
    runs = []
    for n in (1, 2):
        threads(n)
        out, final, cache = layer.forward(x, h0, reset)
        dx, dh0, grads = layer.backward(d_out, cache)
        runs.append((out, final, dx, dh0, grads))
    for one, two in zip(*runs, strict=True):
        if isinstance(one, dict):
            assert one.keys() == two.keys()
            for name in one:
                np.testing.assert_array_equal(one[name], two[name], err_msg=name)
        else:
            np.testing.assert_array_equal(one, two)


@two_threads
def test_training_on_two_threads_gives_the_same_model(threads, every_loop_on_threads):
    from rnnrec.data import make_synthetic
    from rnnrec.model import SessionRecommender

    sessions, _ = make_synthetic(40, 60, 10, seed=3)
    config = dict(
        layers=(12,), n_sample=16, batch_size=8, n_epochs=2, dtype=np.float64,
        momentum=0.3, seed=0,
    )  # fmt: skip
    models = []
    for n in (1, 2):
        threads(n)
        models.append(SessionRecommender(**config).fit(sessions))
    one, two = (m._param_dict() for m in models)
    assert one.keys() == two.keys()
    for name in one:
        np.testing.assert_array_equal(one[name], two[name], err_msg=name)


def _refuse(*args, **kwargs):
    raise AssertionError("the threaded kernel ran")


def test_loops_run_on_threads_only_when_asked_and_large(threads, monkeypatch):
    monkeypatch.setattr(segment_sum, "threaded", _refuse)
    values = np.ones((4, 2))
    out = np.empty((1, 2))
    large = _jit.ROW_WORK
    threads(1)
    segment_sum(values, np.arange(4), np.array([0]), out, work=large)
    if numba.config.NUMBA_NUM_THREADS >= 2:
        threads(2)
        segment_sum(values, np.arange(4), np.array([0]), out, work=large - 1)
        with pytest.raises(AssertionError, match="threaded kernel ran"):
            segment_sum(values, np.arange(4), np.array([0]), out, work=large)
    np.testing.assert_array_equal(out, [[4.0, 4.0]])


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2", None])
def test_set_threads_refuses_what_is_not_a_positive_integer(bad):
    with pytest.raises(ValueError, match="threads must be an integer >= 1"):
        set_threads(bad)


def _layouts(x):
    """``x`` as a C array, as the transpose of an F array, and as a column slice."""
    wide = np.zeros((x.shape[0], x.shape[1] + 5), x.dtype)
    wide[:, 2:-3] = x
    return {"C": x.copy(), "F": np.asfortranarray(x), "slice": wide[:, 2:-3]}


@two_threads
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("a_layout", ["C", "F", "slice"])
@pytest.mark.parametrize("b_layout", ["C", "F", "slice"])
@pytest.mark.parametrize("m, n, by_rows", [(37, 301, False), (301, 37, True)])
def test_matmul_blocks_on_threads_equal_the_blocks_in_turn(
    threads, dtype, a_layout, b_layout, m, n, by_rows
):
    rng = np.random.default_rng(2)
    k = 130  # m and n split unevenly; m * k * n > PARALLEL_PRODUCT
    assert m * k * n >= _jit.PARALLEL_PRODUCT
    a = _layouts(rng.standard_normal((m, k)).astype(dtype))[a_layout]
    b = _layouts(rng.standard_normal((k, n)).astype(dtype))[b_layout]
    threads(2)
    two = _jit.matmul(a, b)  # one block per thread

    # The same blocks one after another, on one thread.
    size, rows = _jit.split_plan(m, n, 2)
    assert rows == by_rows and size == -(-(m if by_rows else n) // 2)
    a_stored, trans_a = _jit._blas_operand(a)
    b_stored, trans_b = _jit._blas_operand(b)
    one = np.full((m, n), np.nan, dtype)
    _jit._product_blocks.serial(a_stored, trans_a, b_stored, trans_b, one, size, rows)
    np.testing.assert_array_equal(two, one)
    exact = a.astype(np.float64) @ b.astype(np.float64)
    rtol = 1e-5 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(two, exact, rtol=rtol, atol=rtol * np.abs(exact).max())


@two_threads
def test_matmul_falls_back_to_numpy_when_it_cannot_split(threads, monkeypatch):
    monkeypatch.setattr(_jit, "_product_blocks", _refuse)
    rng = np.random.default_rng(3)
    big = rng.standard_normal((240, 240))
    threads(1)
    np.testing.assert_array_equal(_jit.matmul(big, big), big @ big)  # one thread
    threads(2)
    small = rng.standard_normal((3, 4))
    np.testing.assert_array_equal(_jit.matmul(small, small.T), small @ small.T)
    ints = np.arange(240 * 240).reshape(240, 240)
    np.testing.assert_array_equal(_jit.matmul(ints, ints), ints @ ints)
    strided = big[::2, ::2]  # (120, 120), neither axis of unit stride
    assert strided.size * 120 >= _jit.PARALLEL_PRODUCT
    np.testing.assert_array_equal(_jit.matmul(strided, big[:120]), strided @ big[:120])
    with pytest.raises(AssertionError, match="threaded kernel ran"):
        _jit.matmul(big, big)


@two_threads
def test_row_squares_on_two_threads_equals_one_thread(threads):
    from rnnrec.kernels.sparse import row_squares

    x = np.random.default_rng(6).standard_normal((300, 480)).astype(np.float32)
    sums = [np.empty(300) for _ in range(2)]
    row_squares.serial(x, sums[0])
    threads(2)
    row_squares.threaded(x, sums[1])
    np.testing.assert_array_equal(sums[0], sums[1])


@two_threads
def test_matmul_sends_a_long_product_with_a_small_result_to_threads(
    threads, monkeypatch
):
    # 100 x 100 results from k = 200: 2 million multiply-adds, 10,000 entries.
    monkeypatch.setattr(_jit._product_blocks, "threaded", _refuse)
    a = np.ones((100, 200))
    threads(2)
    with pytest.raises(AssertionError, match="threaded kernel ran"):
        _jit.matmul(a, a.T)


@two_threads
def test_output_layer_loops_on_two_threads_equal_one_thread(threads):
    from rnnrec.kernels.output import expand_columns, sum_columns, take_rows

    threads(2)
    rng = np.random.default_rng(4)
    table = rng.standard_normal((900, 40)).astype(np.float32)
    rows = np.unique(rng.integers(0, 900, 700))
    column = rng.integers(0, len(rows), 1500)
    scores_u = rng.standard_normal((48, len(rows))).astype(np.float32)
    b_u = rng.standard_normal(len(rows)).astype(np.float32)
    d = rng.standard_normal((48, 1500)).astype(np.float32)
    results = []
    for kernel in ("serial", "threaded"):
        got = (
            np.empty((len(rows), 40), np.float32),
            np.empty((48, 1500), np.float32),
            np.empty((48, len(rows)), np.float32),
        )
        getattr(take_rows, kernel)(table, rows, got[0])
        getattr(expand_columns, kernel)(scores_u, b_u, column, got[1])
        getattr(sum_columns, kernel)(d, column, got[2])
        results.append(got)
    for serial, threaded in zip(*results, strict=True):
        np.testing.assert_array_equal(serial, threaded)
    np.testing.assert_array_equal(results[0][0], table[rows])
    np.testing.assert_array_equal(results[0][1], (scores_u + b_u)[:, column])

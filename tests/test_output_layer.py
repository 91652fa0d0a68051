"""The sampled output layer against the plain formulas it reorganises."""

import numpy as np
import pytest

from rnnrec.model.output import (
    add_rows,
    sampled_scores_backward,
    sampled_scores_forward,
)
from rnnrec.optim import RowSparse


@pytest.fixture
def layer():
    rng = np.random.default_rng(8)
    V, H, N = 12, 5, 4
    W_y = rng.standard_normal((V, H))
    b_y = rng.standard_normal(V)
    h = rng.standard_normal((N, H))
    candidates = np.array([3, 7, 3, 0, 7, 7, 11])  # repeats, unsorted
    d_scores = rng.standard_normal((N, len(candidates)))
    return W_y, b_y, h, candidates, d_scores


def test_scores_and_gradients_equal_the_formulas_with_repeats(layer):
    W_y, b_y, h, candidates, d_scores = layer
    scores, cache = sampled_scores_forward(h, W_y, b_y, candidates)
    np.testing.assert_allclose(scores, h @ W_y[candidates].T + b_y[candidates])

    dh, dW, db = sampled_scores_backward(d_scores, cache)
    np.testing.assert_allclose(dh, d_scores @ W_y[candidates])
    dW_dense = np.zeros_like(W_y)
    np.add.at(dW_dense, candidates, d_scores.T @ h)
    db_dense = np.zeros_like(b_y)
    np.add.at(db_dense, candidates, d_scores.sum(axis=0))
    np.testing.assert_array_equal(dW.rows, [0, 3, 7, 11])
    np.testing.assert_allclose(dW.to_dense(W_y.shape), dW_dense)
    np.testing.assert_array_equal(db.rows, [0, 3, 7, 11])
    np.testing.assert_allclose(db.to_dense(b_y.shape), db_dense)


def test_extra_items_get_w_rows_but_no_bias_row(layer):
    W_y, b_y, h, candidates, d_scores = layer
    scores, cache = sampled_scores_forward(
        h, W_y, b_y, candidates, extra_items=np.array([5, 3, 5])
    )
    np.testing.assert_allclose(scores, h @ W_y[candidates].T + b_y[candidates])
    _, dW, db = sampled_scores_backward(d_scores, cache)
    np.testing.assert_array_equal(dW.rows, [0, 3, 5, 7, 11])
    np.testing.assert_array_equal(dW.values[2], 0.0)  # item 5: no score used
    np.testing.assert_array_equal(db.rows, [0, 3, 7, 11])  # untouched bias row

    before = dW.values.copy()
    inputs = np.array([5, 3, 5])
    d_in = np.arange(15.0).reshape(3, 5)
    same = add_rows(dW, inputs, d_in)
    assert same is dW  # in place
    np.testing.assert_allclose(dW.values[2], d_in[0] + d_in[2])  # repeats summed
    np.testing.assert_allclose(dW.values[1], before[1] + d_in[1])
    np.testing.assert_array_equal(dW.values[[0, 3, 4]], before[[0, 3, 4]])


@pytest.mark.parametrize("rows", [[4], [12], [0, 6]])
def test_add_rows_refuses_rows_the_gradient_does_not_list(rows):
    g = RowSparse(np.array([0, 3, 11]), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="does not list"):
        add_rows(g, np.array(rows), np.ones((len(rows), 2)))
    np.testing.assert_array_equal(g.values, 0.0)  # nothing added


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_recommender_sized_layer_equals_numpy_fancy_indexing(dtype):
    # GRU4Rec's sizes, scaled down: 2,100 candidates drawn with many repeats from
    # 3,000 items, large enough for the kernels' threaded twins to run when
    # `set_threads` gives them two threads.
    rng = np.random.default_rng(3)
    V, H, N, C = 3000, 24, 48, 2100
    W_y = rng.standard_normal((V, H)).astype(dtype)
    b_y = rng.standard_normal(V).astype(dtype)
    h = rng.standard_normal((N, H)).astype(dtype)
    candidates = rng.zipf(1.3, C) % V
    extra = rng.integers(0, V, N)
    d_scores = rng.standard_normal((N, C)).astype(dtype)

    scores, cache = sampled_scores_forward(h, W_y, b_y, candidates, extra)
    items = np.unique(np.r_[candidates, extra])
    np.testing.assert_array_equal(cache.W_u, W_y[items])
    column = np.searchsorted(items, candidates)
    expected = (h @ W_y[items].T + b_y[items])[:, column]
    assert scores.dtype == dtype
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(scores, expected, rtol=rtol, atol=rtol)

    dh, dW, db = sampled_scores_backward(d_scores, cache)
    dR_u = np.zeros((N, len(items)), dtype)
    np.add.at(dR_u.T, column, d_scores.T)
    np.testing.assert_allclose(dh, dR_u @ W_y[items], rtol=rtol, atol=rtol)
    np.testing.assert_array_equal(dW.rows, items)
    np.testing.assert_allclose(dW.values, dR_u.T @ h, rtol=rtol, atol=rtol)
    np.testing.assert_array_equal(db.rows, np.unique(candidates))
    np.testing.assert_allclose(
        db.values, dR_u.sum(axis=0)[np.isin(items, candidates)], rtol=rtol, atol=rtol
    )

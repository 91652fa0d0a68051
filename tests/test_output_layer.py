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

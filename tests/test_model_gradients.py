"""The whole recommender's loss gradient against finite differences, in float64."""

from typing import NamedTuple

import numpy as np
import pytest

from rnnrec.gradcheck import check_gradients
from rnnrec.losses import get_loss
from rnnrec.model import SessionRecommender
from rnnrec.optim import RowSparse

V = 12


class Block(NamedTuple):
    inputs: np.ndarray
    targets: np.ndarray
    reset: np.ndarray
    valid: np.ndarray
    carry: np.ndarray


def random_block(T, B, rng):
    valid = np.ones((T, B), dtype=bool)
    valid[T - 1 :, 0] = False  # slot 0 runs out of sessions at the last step
    reset = rng.random((T, B)) < 0.3
    return Block(
        inputs=rng.integers(0, V, (T, B)),
        targets=rng.integers(0, V, (T, B)),
        reset=reset,
        valid=valid,
        carry=np.arange(B),
    )


def build(cell, embedding, loss, layers=(5,), **options):
    model = SessionRecommender(
        cell=cell, layers=layers, embedding=embedding, loss=loss, dtype=np.float64,
        n_sample=4, seed=0, **options,
    )  # fmt: skip
    model._check_config()
    model._build(V, np.random.default_rng(1))
    model.item_ids_ = np.arange(V)
    return model


def check_model(model, T=3, B=4, seed=0):
    rng = np.random.default_rng(seed)
    block = random_block(T, B, rng)
    states = [
        _random_state(layer, B, rng) for layer in model.layers_
    ]  # the carried state of an earlier block
    negatives = rng.integers(0, V, model.n_sample)
    final_act = model.final_act or ("elu-1" if model.loss == "bpr-max" else "linear")
    extra = {"bpreg": model.bpreg} if model.loss == "bpr-max" else {}
    loss_fn = get_loss(model.loss, final_activation=final_act, **extra)
    counts = np.arange(1, V + 1)
    log_p0 = np.log(counts / counts.sum())

    def loss_of(params):
        model._set_params(params)
        loss, _, _ = model._train_block(block, states, negatives, loss_fn, None, log_p0)
        return loss

    params = {k: v.copy() for k, v in model._param_dict().items()}
    model._set_params({k: v.copy() for k, v in params.items()})
    _, grads, _ = model._train_block(block, states, negatives, loss_fn, None, log_p0)
    dense = {
        k: g.to_dense(params[k].shape) if isinstance(g, RowSparse) else g
        for k, g in grads.items()
    }
    assert set(dense) == set(params)
    report = check_gradients(loss_of, params, dense)
    assert report.passed, "\n" + str(report)
    return report


def _random_state(layer, B, rng):
    h = rng.standard_normal((B, layer.hidden_size))
    return (
        (h, rng.standard_normal((B, layer.hidden_size))) if layer.has_cell_state else h
    )


LOSSES = ["cross-entropy", "bpr-max", "top1-max", "bpr", "top1"]


@pytest.mark.parametrize("embedding", [0, 6, "tied"], ids=["onehot", "embed", "tied"])
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("cell", ["gru", "lstm", "rnn"])
def test_whole_model_gradient(cell, loss, embedding):
    model = build(cell, embedding, loss)
    check_model(model)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_stacked_layers_log_q_and_one_step_blocks(backend):
    model = build(
        "gru", "tied", "cross-entropy", layers=(4, 5), logq=1.0, backend=backend
    )
    check_model(model, T=1, B=5, seed=3)
    check_model(model, T=4, B=3, seed=4)


def test_cho_gru_and_bpr_max_regularisation():
    model = build("gru", 6, "bpr-max", gru_variant="cho", bpreg=0.5)
    check_model(model, seed=5)


def _block_setup(model, T=2, B=4, seed=7):
    rng = np.random.default_rng(seed)
    block = random_block(T, B, rng)
    states = [_random_state(layer, B, rng) for layer in model.layers_]
    negatives = rng.integers(0, V, model.n_sample)
    return block, states, negatives, get_loss(model.loss)


def test_the_loss_is_the_sum_over_predictions_over_the_batch_size():
    # GRU4Rec's scaling: a block's loss and gradients are sum / batch_size, so a
    # model configured with twice the batch size sees half of both.
    model = build("gru", "tied", "cross-entropy", batch_size=4)
    block, states, negatives, loss_fn = _block_setup(model)
    loss4, grads4, _ = model._train_block(block, states, negatives, loss_fn, None)
    model.batch_size = 8
    loss8, grads8, _ = model._train_block(block, states, negatives, loss_fn, None)
    assert loss8 == pytest.approx(loss4 / 2, rel=1e-12)
    np.testing.assert_allclose(
        grads8["layer0.weight_hh"], grads4["layer0.weight_hh"] / 2
    )
    # and the per-prediction mean comes back with batch_size / N
    n = int(block.valid.sum())
    per_event = loss4 * 4 / n
    assert 0 < per_event < 2 * np.log(n + model.n_sample)


@pytest.mark.parametrize("cell", ["gru", "lstm", "rnn"])
def test_the_carried_state_is_the_hidden_output_after_dropout(cell):
    # As in GRU4Rec: with hidden dropout, the next block starts from the dropped
    # output; without an rng (no dropout) it is the layer's own final state.
    model = build(cell, "tied", "cross-entropy", dropout_p_hidden=0.5)
    block, states, negatives, loss_fn = _block_setup(model)
    _, _, clean = model._train_block(block, states, negatives, loss_fn, None)
    rng = np.random.default_rng(0)
    _, _, dropped = model._train_block(block, states, negatives, loss_fn, rng)
    h_clean = clean[0][0] if model.layers_[0].has_cell_state else clean[0]
    h_drop = dropped[0][0] if model.layers_[0].has_cell_state else dropped[0]
    kept = h_drop != 0
    assert 0 < kept.mean() < 1
    np.testing.assert_allclose(h_drop[kept], 2 * h_clean[kept], rtol=1e-12)
    if model.layers_[0].has_cell_state:  # the LSTM's cell state is not dropped
        np.testing.assert_array_equal(dropped[0][1], clean[0][1])

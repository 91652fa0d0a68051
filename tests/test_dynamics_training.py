"""The memory tasks, the sequence-to-one model, its losses and the training loop."""

import math

import numpy as np
import pytest

from rnnrec import GRU, LSTM, RNN
from rnnrec.cells.base import PARAM_NAMES
from rnnrec.dynamics.tasks import AddingProblem, CopyTask, SessionTask, make_task
from rnnrec.dynamics.training import (
    SequenceToOne,
    cross_entropy_backward,
    cross_entropy_forward,
    mse_backward,
    mse_forward,
    train,
)
from rnnrec.gradcheck import check_gradients

# -- tasks ----------------------------------------------------------------------


def test_adding_problem_marks_one_number_in_each_half_and_sums_them():
    task = AddingProblem(9)
    x, y = task.sample(500, seed=0)
    assert x.shape == (9, 500, 2) and y.shape == (500, 1) and x.dtype == np.float64

    marks = x[:, :, 1]
    assert np.all(marks.sum(axis=0) == 2)
    assert np.all(marks[:5].sum(axis=0) == 1)  # first half: steps 0 .. 4
    assert np.all(marks[5:].sum(axis=0) == 1)
    np.testing.assert_allclose(y[:, 0], (x[:, :, 0] * marks).sum(axis=0))
    assert np.all((0 <= x[:, :, 0]) & (x[:, :, 0] < 1))


def test_adding_problem_baseline_is_what_predicting_the_mean_scores():
    task = AddingProblem(20)
    _, y = task.sample(40_000, seed=1)
    assert task.error(np.ones_like(y), y) == pytest.approx(1 / 6, abs=0.005)
    assert task.baseline == pytest.approx(0.1667, abs=1e-4)


def test_copy_task_shows_the_symbols_then_blanks_and_asks_for_them():
    task = CopyTask(7, n_copy=3, n_symbols=5)
    x, y = task.sample(50, seed=0)
    assert x.shape == (10, 50, 6) and y.shape == (50, 3) and y.dtype == np.int64
    np.testing.assert_array_equal(x.sum(axis=-1), 1)  # one-hot everywhere
    np.testing.assert_array_equal(np.argmax(x[:3], axis=-1).T, y)
    assert np.all(x[3:, :, 5] == 1)  # the blank channel
    assert task.baseline == pytest.approx(0.8)


def test_session_task_first_click_decides_the_target():
    task = SessionTask(12, n_items=10, n_keys=3)
    x, y = task.sample(400, seed=0)
    clicks = np.argmax(x, axis=-1)  # (13, 400)
    assert x.shape == (13, 400, 10) and y.shape == (400, 1)
    assert np.all(clicks[0] < 3)
    np.testing.assert_array_equal(y[:, 0], clicks[0] + 3)
    assert set(np.unique(clicks[1:])) == set(range(10))  # distractors: any item
    assert task.baseline == pytest.approx(2 / 3)


def test_tasks_are_reproducible_and_float32_on_request():
    for name in ("adding", "copy", "session"):
        task = make_task(name, 6, dtype=np.float32)
        a, b = task.sample(4, seed=3), task.sample(4, seed=3)
        assert a.x.dtype == np.float32
        np.testing.assert_array_equal(a.x, b.x)
        np.testing.assert_array_equal(a.y, b.y)
        assert not np.array_equal(a.x, task.sample(4, seed=4).x)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: AddingProblem(1), "steps >= 2"),
        (lambda: AddingProblem(0), "steps must be a positive integer"),
        (lambda: CopyTask(5, n_symbols=1), "n_symbols must be at least 2"),
        (lambda: SessionTask(5, n_items=7, n_keys=4), "n_items >= 2 \\* n_keys"),
        (lambda: make_task("parity", 5), "task must be one of 'adding'"),
        (lambda: AddingProblem(5).sample(0), "batch_size must be a positive"),
    ],
)
def test_tasks_reject_bad_sizes_by_name(build, message):
    with pytest.raises((TypeError, ValueError), match=message):
        build()


# -- losses -----------------------------------------------------------------------


def test_mse_gradient_is_its_derivative():
    rng = np.random.default_rng(0)
    y_hat, y = rng.standard_normal((4, 2)), rng.standard_normal((4, 2))
    report = check_gradients(
        lambda v: mse_forward(v["y_hat"], y),
        {"y_hat": y_hat},
        {"y_hat": mse_backward(y_hat, y)},
    )
    assert report.passed, report


def test_cross_entropy_gradient_is_its_derivative_and_stays_finite():
    rng = np.random.default_rng(0)
    scores, y = rng.standard_normal((4, 3, 5)), rng.integers(0, 5, (4, 3))
    loss, p = cross_entropy_forward(scores, y)
    report = check_gradients(
        lambda v: cross_entropy_forward(v["s"], y)[0],
        {"s": scores},
        {"s": cross_entropy_backward(p, y)},
    )
    assert report.passed, report
    # The mean of -log p over the 12 answers.
    manual = -np.mean(
        [
            np.log(np.exp(scores[b, k, y[b, k]]) / np.exp(scores[b, k]).sum())
            for b in range(4)
            for k in range(3)
        ]
    )
    assert loss == pytest.approx(manual, rel=1e-12)

    huge = 1e4 * scores
    with np.errstate(all="raise"):
        loss, p = cross_entropy_forward(huge, y)
        d = cross_entropy_backward(p, y)
    assert math.isfinite(loss) and np.isfinite(d).all()
    np.testing.assert_allclose(d.sum(axis=-1), 0, atol=1e-15)


# -- the model ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "task"),
    [
        (RNN, AddingProblem(5)),
        (LSTM, CopyTask(3, n_copy=2, n_symbols=3)),
        (GRU, SessionTask(4, n_items=8, n_keys=2)),
    ],
    ids=["rnn-adding", "lstm-copy", "gru-session"],
)
def test_model_gradients_match_finite_differences(cls, task):
    model = SequenceToOne(
        cls(task.input_size, 4, seed=0, backend="numpy"), task, seed=0
    )
    x, y = task.sample(3, seed=1)
    _, grads = model.loss_and_gradients(x, y)
    assert sorted(grads) == sorted(model.params)

    def loss(params):
        layer = cls(task.input_size, 4, backend="numpy")
        layer.load_params({k: params[k] for k in PARAM_NAMES})
        twin = SequenceToOne(layer, task)
        twin.readout = {k: params[k] for k in ("readout_weight", "readout_bias")}
        return twin.loss_and_gradients(x, y)[0]

    inputs = {k: v.copy() for k, v in model.params.items()}
    report = check_gradients(loss, inputs, grads)
    assert report.passed, report


def test_model_checks_that_layer_and_task_fit():
    with pytest.raises(ValueError, match="input_size is 3 but the adding task"):
        SequenceToOne(RNN(3, 4), AddingProblem(5))
    with pytest.raises(TypeError, match="task must be an rnnrec Task"):
        SequenceToOne(RNN(2, 4), "adding")
    with pytest.raises(TypeError, match="layer must be an rnnrec"):
        SequenceToOne(object(), AddingProblem(5))


# -- training -----------------------------------------------------------------------


class Counter:
    def __init__(self):
        self.n = 0

    def update(self, n):
        self.n += n


def small_run(clip, *, seed=0, n_updates=12, batch_size=4, **kwargs):
    task = AddingProblem(6)
    model = SequenceToOne(RNN(2, 5, seed=seed), task, seed=seed)
    return train(
        model,
        task,
        n_updates=n_updates,
        batch_size=batch_size,
        clip=clip,
        seed=seed,
        **kwargs,
    )


def test_training_log_records_every_update_before_clipping():
    free = small_run(None, eval_every=5)
    assert len(free.loss) == len(free.grad_norm) == 12
    assert not free.clipped.any() and free.share_clipped == 0
    np.testing.assert_allclose(free.applied_norm, free.grad_norm, rtol=1e-12)
    np.testing.assert_array_equal(free.eval_updates, [5, 10, 12])

    tight = small_run(1e-3, eval_every=5)
    np.testing.assert_array_equal(tight.loss[:1], free.loss[:1])  # same start
    assert tight.clipped.all() and tight.share_clipped == 1.0
    assert np.all(tight.grad_norm > 1e-3) and np.all(tight.applied_norm <= 1e-3)
    assert tight.max_grad_norm == tight.grad_norm.max()
    assert tight.clip == 1e-3 and tight.diverged_at is None


def test_training_is_reproducible_from_its_seed():
    a, b, c = small_run(1.0), small_run(1.0), small_run(1.0, seed=1)
    np.testing.assert_array_equal(a.loss, b.loss)
    np.testing.assert_array_equal(a.eval_error, b.eval_error)
    assert not np.array_equal(a.loss, c.loss)


def test_a_diverging_run_stops_and_says_where():
    from rnnrec.dynamics.studies import make_layer

    task = AddingProblem(10)
    layer = make_layer("rnn", 2, 16, radius=2.0, init="pytorch", seed=0)
    model = SequenceToOne(layer, task, seed=0)
    counter = Counter()
    log = train(
        model,
        task,
        n_updates=1000,
        batch_size=16,
        optimizer="sgd",
        learning_rate=0.1,
        seed=0,
        progress=counter,
    )
    assert log.diverged_at is not None and len(log.loss) == log.diverged_at + 1
    last = log.loss[-1], log.grad_norm[-1]
    assert not (math.isfinite(last[0]) and math.isfinite(last[1]))
    assert np.isfinite(log.grad_norm[:-1]).all()
    assert log.final_loss == math.inf and log.final_error == math.inf
    assert counter.n == 1000  # the bar still reaches its end


def test_gru_learns_the_session_task():
    task = SessionTask(5, n_items=8, n_keys=2)
    model = SequenceToOne(GRU(8, 16, seed=0), task, seed=0)
    counter = Counter()
    log = train(
        model, task, n_updates=300, learning_rate=0.01, seed=0, progress=counter
    )
    assert log.eval_error[0] > 0.2
    assert log.final_error < 0.05  # from 0.5 for a model that forgot the first click
    assert counter.n == 300


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"clip": 0.0}, "clip must be None or a positive number"),
        ({"clip": "1"}, "clip must be None or a positive number"),
        ({"optimizer": "rmsprop"}, "optimizer must be 'adam' or 'sgd'"),
        ({"n_updates": 0}, "n_updates must be a positive integer"),
        ({"eval_every": 0}, "eval_every must be a positive integer"),
        ({"learning_rate": -1.0}, "learning_rate must be a finite number >= 0"),
        ({"batch_size": 0}, "batch_size must be a positive integer"),
    ],
)
def test_train_rejects_bad_arguments_by_name(kwargs, message):
    args = {"clip": None, "n_updates": 3, **kwargs}
    with pytest.raises((TypeError, ValueError), match=message):
        small_run(**args)
    with pytest.raises(TypeError, match="model must be a SequenceToOne"):
        train(RNN(2, 3), AddingProblem(4), n_updates=1)

"""Sequence-to-one training on the memory tasks, with the records that expose it.

The model reads a sequence with one recurrent layer and answers from its last
state through a dense readout::

    h_1 .. h_T = layer(x_1 .. x_T)                      (T, B, H)
    y_hat = h_T W_out^T + b_out                         (B, K*C)

Regression (the adding problem) scores ``y_hat`` with the mean squared error;
classification (copy, session) reads it as K answers of C scores each and scores
every answer with the softmax cross-entropy. Each loss and the readout is a
forward/backward pair below; the layer's own BPTT does the rest.

`train` runs plain mini-batch training and keeps what the lesson needs: the
training loss and the global gradient norm before clipping at every update,
whether that update was clipped, and the error on a held-out batch.
"""

from __future__ import annotations

import math
import numbers
import time
from dataclasses import dataclass

import numpy as np

from rnnrec._validation import as_rng, check_positive_int
from rnnrec.cells.base import RecurrentLayer
from rnnrec.clipping import clip_grad_norm
from rnnrec.dynamics.tasks import Task
from rnnrec.optim import SGD, Adam

OPTIMIZERS = ("adam", "sgd")

# -- readout and losses ------------------------------------------------------------


def readout_forward(h, W, b):
    """Dense readout ``y = h W^T + b``.

    Parameters
    ----------
    h : numpy.ndarray
        Last hidden state ``(B, H)``.
    W : numpy.ndarray
        ``(O, H)``, O outputs.
    b : numpy.ndarray
        ``(O,)``.

    Returns
    -------
    numpy.ndarray
        ``(B, O)``.
    """
    return h @ W.T + b


def readout_backward(dy, h, W):
    """Backward pass of `readout_forward`: ``dh = dy W``, ``dW = dy^T h``, ``db``.

    Parameters
    ----------
    dy : numpy.ndarray
        Gradient with respect to the output ``(B, O)``.
    h : numpy.ndarray
        The readout's input ``(B, H)``.
    W : numpy.ndarray
        ``(O, H)``.

    Returns
    -------
    dh : numpy.ndarray
        ``(B, H)``.
    dW : numpy.ndarray
        ``(O, H)``.
    db : numpy.ndarray
        ``(O,)``, ``sum_B dy``.
    """
    return dy @ W, dy.T @ h, dy.sum(axis=0)


def mse_forward(y_hat, y):
    """Mean squared error ``L = mean((y_hat - y)^2)`` over all entries.

    Parameters
    ----------
    y_hat, y : numpy.ndarray
        Predictions and targets of one shape.

    Returns
    -------
    float
        L.
    """
    return float(np.mean((y_hat - y) ** 2))


def mse_backward(y_hat, y):
    """Gradient of `mse_forward`: ``dL/dy_hat = 2 (y_hat - y) / N``, N entries.

    Parameters
    ----------
    y_hat, y : numpy.ndarray
        Predictions and targets of one shape.

    Returns
    -------
    numpy.ndarray
        Of the shape of ``y_hat``.
    """
    return 2 * (y_hat - y) / y_hat.size


def cross_entropy_forward(scores, y):
    """Softmax cross-entropy, averaged over the B rows and K answers.

    With ``p = softmax(s)`` over the C classes of each answer, and the largest
    score subtracted first so that no exponential overflows::

        log p_c = s_c - m - log sum_j exp(s_j - m),     m = max_j s_j
        L = -mean_{b, k} log p[b, k, y[b, k]]

    Parameters
    ----------
    scores : numpy.ndarray
        ``(B, K, C)``.
    y : numpy.ndarray
        ``(B, K)`` class indices in ``[0, C)``.

    Returns
    -------
    loss : float
        L.
    p : numpy.ndarray
        ``(B, K, C)`` probabilities, for `cross_entropy_backward`.
    """
    shifted = scores - scores.max(axis=-1, keepdims=True)
    with np.errstate(under="ignore"):  # exp(-huge) = 0 is the right value
        log_p = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
        p = np.exp(log_p)
    picked = np.take_along_axis(log_p, y[..., None], axis=-1)  # (B, K, 1)
    return float(-picked.mean()), p


def cross_entropy_backward(p, y):
    """Gradient of `cross_entropy_forward`: ``(p - onehot(y)) / (B K)``.

    Parameters
    ----------
    p : numpy.ndarray
        ``(B, K, C)`` probabilities from the forward pass.
    y : numpy.ndarray
        ``(B, K)`` class indices.

    Returns
    -------
    numpy.ndarray
        ``(B, K, C)`` gradient with respect to the scores.
    """
    onehot = np.zeros_like(p)  # (B, K, C)
    np.put_along_axis(onehot, y[..., None], 1, axis=-1)
    return (p - onehot) / (y.shape[0] * y.shape[1])


# -- the model ------------------------------------------------------------------------


class SequenceToOne:
    """A recurrent layer and a dense readout that answers after the last step.

    Parameters
    ----------
    layer : RNN, LSTM or GRU
        The recurrent layer; its ``params`` arrays are trained in place.
    task : Task
        Sets the readout's size (``n_answers * n_classes`` outputs) and the loss:
        mean squared error for regression, cross-entropy for classification.
    seed : None, int or numpy.random.Generator
        Seed of the readout, drawn from ``U(-1/sqrt(H), 1/sqrt(H))`` as
        ``torch.nn.Linear`` draws it.

    Attributes
    ----------
    params : dict of str to numpy.ndarray
        The layer's parameters and ``readout_weight (K*C, H)``,
        ``readout_bias (K*C,)``; the same arrays, not copies.

    Examples
    --------
    >>> from rnnrec import GRU
    >>> from rnnrec.dynamics.tasks import AddingProblem
    >>> task = AddingProblem(8)
    >>> model = SequenceToOne(GRU(2, 5, seed=0), task, seed=0)
    >>> batch = task.sample(3, seed=1)
    >>> loss, grads = model.loss_and_gradients(batch.x, batch.y)
    >>> sorted(grads) == sorted(model.params)
    True
    """

    def __init__(self, layer, task, *, seed=None):
        if not isinstance(layer, RecurrentLayer):
            raise TypeError(
                f"layer must be an rnnrec RNN, LSTM or GRU, got {type(layer).__name__}"
            )
        if not isinstance(task, Task):
            raise TypeError(f"task must be an rnnrec Task, got {type(task).__name__}")
        if layer.input_size != task.input_size:
            raise ValueError(
                f"the layer's input_size is {layer.input_size} but the {task.name} "
                f"task has inputs of size {task.input_size}"
            )
        self.layer, self.kind = layer, task.kind
        self.n_answers, self.n_classes = task.n_answers, task.n_classes
        H, n_out = layer.hidden_size, task.n_answers * task.n_classes
        rng, k = as_rng(seed), 1 / math.sqrt(H)
        self.readout = {
            "readout_weight": rng.uniform(-k, k, (n_out, H)).astype(layer.dtype),
            "readout_bias": rng.uniform(-k, k, n_out).astype(layer.dtype),
        }

    @property
    def params(self):
        """All trained arrays, keyed by name (see the class docstring)."""
        return {**self.layer.params, **self.readout}

    def _scores(self, h_T):
        y_hat = readout_forward(
            h_T, self.readout["readout_weight"], self.readout["readout_bias"]
        )
        if self.kind == "regression":
            return y_hat  # (B, K)
        return y_hat.reshape(len(h_T), self.n_answers, self.n_classes)  # (B, K, C)

    def predict(self, x):
        """Return the answers' scores for a batch of sequences.

        Parameters
        ----------
        x : numpy.ndarray
            Inputs ``(T, B, D)``.

        Returns
        -------
        numpy.ndarray
            ``(B, K)`` predictions (regression) or ``(B, K, C)`` scores.
        """
        out, _, _ = self.layer.forward(x)
        return self._scores(out[-1])

    def loss_and_gradients(self, x, y):
        """Return the loss on a batch and the gradient of every parameter.

        Parameters
        ----------
        x : numpy.ndarray
            Inputs ``(T, B, D)``.
        y : numpy.ndarray
            Targets ``(B, K)``: floats (regression) or class indices.

        Returns
        -------
        loss : float
            Mean squared error or mean cross-entropy.
        grads : dict of str to numpy.ndarray
            Keyed like `params`.
        """
        out, _, cache = self.layer.forward(x)
        h_T = out[-1]
        scores = self._scores(h_T)
        if self.kind == "regression":
            loss, d_scores = mse_forward(scores, y), mse_backward(scores, y)
        else:
            loss, p = cross_entropy_forward(scores, y)
            d_scores = cross_entropy_backward(p, y)

        # The readout, then BPTT from the last state.
        W = self.readout["readout_weight"]
        dh_T, dW, db = readout_backward(d_scores.reshape(len(h_T), -1), h_T, W)
        d_out = np.zeros_like(out)  # (T, B, H)
        d_out[-1] = dh_T
        _, _, grads = self.layer.backward(d_out, cache)
        grads["readout_weight"], grads["readout_bias"] = dW, db
        return loss, grads


# -- training ---------------------------------------------------------------------


@dataclass
class TrainingLog:
    """What happened during `train`, update by update.

    Attributes
    ----------
    loss : numpy.ndarray
        ``(n,)`` training loss of the batch of each update, before the update.
    grad_norm : numpy.ndarray
        ``(n,)`` global L2 norm of the gradient before clipping.
    clipped : numpy.ndarray
        ``(n,)`` bool: the update was scaled down to the clipping threshold.
    applied_norm : numpy.ndarray
        ``(n,)`` global norm of the gradient the optimizer received, after
        clipping (NaN for an update that diverged and was not taken).
    eval_updates : numpy.ndarray
        ``(E,)`` updates done at each evaluation of the held-out batch.
    eval_error : numpy.ndarray
        ``(E,)`` the task's error on the held-out batch then.
    clip : float or None
        The clipping threshold, None for no clipping.
    diverged_at : int or None
        Index of the update whose loss or gradient was NaN or infinite; training
        stopped there, so the arrays are that long.
    seconds : float
        Wall time.
    """

    loss: np.ndarray
    grad_norm: np.ndarray
    clipped: np.ndarray
    applied_norm: np.ndarray
    eval_updates: np.ndarray
    eval_error: np.ndarray
    clip: float | None
    diverged_at: int | None
    seconds: float

    @property
    def share_clipped(self):
        """Share of the updates that were clipped."""
        return float(self.clipped.mean()) if len(self.clipped) else 0.0

    @property
    def max_grad_norm(self):
        """Largest gradient norm seen before clipping (NaN if none was finite)."""
        finite = self.grad_norm[np.isfinite(self.grad_norm)]
        return float(finite.max()) if len(finite) else math.nan

    @property
    def final_loss(self):
        """Mean training loss over the last tenth of the updates; inf if diverged."""
        if self.diverged_at is not None:
            return math.inf
        tail = max(1, len(self.loss) // 10)
        return float(np.mean(self.loss[-tail:]))

    @property
    def final_error(self):
        """The held-out error at the last evaluation (inf if diverged)."""
        if self.diverged_at is not None or not len(self.eval_error):
            return math.inf
        return float(self.eval_error[-1])


def _check_clip(clip):
    if clip is None:
        return None
    if isinstance(clip, bool) or not isinstance(clip, numbers.Real):
        raise TypeError(f"clip must be None or a positive number, got {clip!r}")
    if not (clip > 0 and math.isfinite(clip)):
        raise ValueError(f"clip must be None or a positive number, got {clip!r}")
    return float(clip)


def train(
    model,
    task,
    *,
    n_updates,
    batch_size=32,
    optimizer="adam",
    learning_rate=1e-3,
    clip=None,
    eval_every=None,
    eval_size=256,
    seed=None,
    progress=None,
):
    """Train a `SequenceToOne` model on a task; return the `TrainingLog`.

    Each update draws a fresh batch, computes the loss and the gradients, measures
    the global gradient norm ``N``, scales the gradients by ``clip / N`` when
    ``N > clip`` (`rnnrec.clipping.clip_grad_norm`), and takes one optimizer
    step. A NaN or infinite loss or norm stops training (the run diverged).

    Parameters
    ----------
    model : SequenceToOne
        The model, trained in place.
    task : Task
        The task, the one the model was built for.
    n_updates : int
        Updates to run.
    batch_size : int, default 32
        Sequences per update.
    optimizer : {"adam", "sgd"}, default "adam"
        `rnnrec.optim.Adam` or plain `rnnrec.optim.SGD`. SGD shows an exploding
        gradient as it is; Adam divides it by a running estimate of its size.
    learning_rate : float, default 1e-3
        The optimizer's step size.
    clip : float, optional
        Largest global gradient norm; None measures without clipping.
    eval_every : int, optional
        Evaluate the held-out batch every this many updates; by default about 20
        times per run. It is also evaluated after the last update.
    eval_size : int, default 256
        Sequences in the held-out batch, drawn once at the start.
    seed : None, int or numpy.random.Generator
        Seed of the batches; training and held-out data come from separate
        streams.
    progress : object, optional
        Anything with an ``update(n)`` method (a ``tqdm`` bar), told of every
        update.

    Returns
    -------
    TrainingLog
        Per-update loss, gradient norm and clipping, and the held-out errors.
    """
    if not isinstance(model, SequenceToOne):
        raise TypeError(f"model must be a SequenceToOne, got {type(model).__name__}")
    n_updates = check_positive_int(n_updates, "n_updates")
    batch_size = check_positive_int(batch_size, "batch_size")
    eval_size = check_positive_int(eval_size, "eval_size")
    if eval_every is None:
        eval_every = max(1, n_updates // 20)
    eval_every = check_positive_int(eval_every, "eval_every")
    clip = _check_clip(clip)
    if isinstance(learning_rate, bool) or not isinstance(learning_rate, numbers.Real):
        raise TypeError(f"learning_rate must be a number, got {learning_rate!r}")
    if not (learning_rate >= 0 and math.isfinite(learning_rate)):
        raise ValueError(
            f"learning_rate must be a finite number >= 0, got {learning_rate!r}"
        )
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be 'adam' or 'sgd', got {optimizer!r}")
    params = model.params
    opt = (Adam if optimizer == "adam" else SGD)(params, lr=learning_rate)

    train_rng, eval_rng = as_rng(seed).spawn(2)
    held_out = task.sample(eval_size, eval_rng)
    losses, norms, clipped, applied = [], [], [], []
    eval_updates, eval_error = [], []
    diverged_at = None
    start = time.perf_counter()
    max_norm = math.inf if clip is None else clip
    for update in range(n_updates):
        batch = task.sample(batch_size, train_rng)
        # A run that explodes overflows on its way to inf; the check below stops it.
        with np.errstate(over="ignore", invalid="ignore"):
            loss, grads = model.loss_and_gradients(batch.x, batch.y)
            norm = clip_grad_norm(grads, max_norm)
            # The norm of what is applied: max_norm=inf only measures.
            after = clip_grad_norm(grads, math.inf) if math.isfinite(norm) else math.nan
        losses.append(loss)
        norms.append(norm)
        clipped.append(clip is not None and norm > clip)
        applied.append(after)
        if not (math.isfinite(loss) and math.isfinite(norm)):
            diverged_at = update  # the update is not taken
            break
        opt.step(grads)
        if progress is not None:
            progress.update(1)
        if (update + 1) % eval_every == 0 or update + 1 == n_updates:
            with np.errstate(over="ignore", invalid="ignore"):
                error = task.error(model.predict(held_out.x), held_out.y)
            eval_updates.append(update + 1)
            eval_error.append(error)
    if progress is not None and diverged_at is not None:
        progress.update(n_updates - diverged_at)  # the bar still reaches its end
    return TrainingLog(
        loss=np.array(losses),
        grad_norm=np.array(norms),
        clipped=np.array(clipped, dtype=bool),
        applied_norm=np.array(applied),
        eval_updates=np.array(eval_updates, dtype=np.int64),
        eval_error=np.array(eval_error),
        clip=clip,
        diverged_at=diverged_at,
        seconds=time.perf_counter() - start,
    )

"""The vanilla (Elman) RNN: step forward, step backward, sequence, BPTT.

Equations, for one step with a batch of B rows::

    a_t = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh        (B, H)
    h_t = phi(a_t),   phi = tanh or relu

Symbols: ``x_t`` input ``(B, D)``; ``h_{t-1}`` previous state ``(B, H)``;
``W_ih`` ``(H, D)``; ``W_hh`` ``(H, H)``; ``b_ih``, ``b_hh`` ``(H,)``. The two biases
are redundant (only their sum matters) but kept, as PyTorch keeps them, so that
weights can be copied both ways.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import numpy as np

from rnnrec._validation import check_choice
from rnnrec.cells.base import RecurrentLayer, input_term, input_term_backward

NONLINEARITIES = ("tanh", "relu")


def rnn_step_forward(x_t, h_prev, W_ih, W_hh, b_ih, b_hh, nonlinearity="tanh"):
    """One step of the vanilla RNN.

    ``h_t = phi(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)`` with ``phi`` tanh or relu.

    Parameters
    ----------
    x_t : numpy.ndarray
        Input ``(B, D)``.
    h_prev : numpy.ndarray
        Previous hidden state ``(B, H)``.
    W_ih, W_hh : numpy.ndarray
        ``(H, D)`` and ``(H, H)``.
    b_ih, b_hh : numpy.ndarray
        ``(H,)``.
    nonlinearity : {"tanh", "relu"}
        ``phi``.

    Returns
    -------
    numpy.ndarray
        ``h_t`` ``(B, H)``.
    """
    a_t = input_term(x_t, W_ih, b_ih) + h_prev @ W_hh.T + b_hh  # (B, H)
    if nonlinearity == "tanh":
        return np.tanh(a_t)
    return np.maximum(a_t, 0)


def rnn_step_backward(dh_t, x_t, h_prev, h_t, W_ih, W_hh, nonlinearity="tanh"):
    """Backward pass of `rnn_step_forward`.

    With ``da = dh_t * phi'(a_t)``, where ``tanh' = 1 - h_t^2`` and
    ``relu' = [h_t > 0]`` (both read off ``h_t``, so ``a_t`` is not stored)::

        dx_t = da W_ih        dh_prev = da W_hh
        dW_ih = da^T x_t      dW_hh = da^T h_prev      db_ih = db_hh = sum_B da

    Parameters
    ----------
    dh_t : numpy.ndarray
        Gradient with respect to ``h_t`` ``(B, H)``.
    x_t, h_prev, h_t : numpy.ndarray
        The step's input ``(B, D)``, previous state and output ``(B, H)``.
    W_ih, W_hh : numpy.ndarray
        ``(H, D)`` and ``(H, H)``.
    nonlinearity : {"tanh", "relu"}
        ``phi``.

    Returns
    -------
    tuple of numpy.ndarray
        ``dx_t, dh_prev, dW_ih, dW_hh, db_ih, db_hh``, in the order the forward
        took its inputs.
    """
    if nonlinearity == "tanh":
        da = dh_t * (1 - h_t * h_t)  # (B, H)
    else:
        da = dh_t * (h_t > 0)  # (B, H)
    dx_t, dW_ih = input_term_backward(da, x_t, W_ih)  # (B, D), (H, D)
    dh_prev = da @ W_hh  # (B, H)
    dW_hh = da.T @ h_prev  # (H, H)
    db = da.sum(axis=0)  # (H,)
    return dx_t, dh_prev, dW_ih, dW_hh, db, db.copy()


class RNNCache(NamedTuple):
    """What the RNN's backward pass needs from its forward pass.

    Attributes
    ----------
    x : numpy.ndarray
        Inputs ``(T, B, D)``.
    h0 : numpy.ndarray
        Initial state ``(B, H)``.
    keep : numpy.ndarray
        ``(T, B)``: 0 where the state was reset before step t, else 1.
    h : numpy.ndarray
        Hidden states ``(T, B, H)``; ``phi'`` is recomputed from them.
    projected : bool
        Whether ``x`` held input projections (see `RecurrentLayer.forward`).
    owner : object
        Token of the layer that made the cache.
    """

    x: np.ndarray
    h0: np.ndarray
    keep: np.ndarray
    h: np.ndarray
    projected: bool = False
    owner: object = None


def rnn_forward(x, h0, keep, params, nonlinearity="tanh", projected=False):
    """Run the vanilla RNN over T steps (NumPy reference).

    Parameters
    ----------
    x : numpy.ndarray
        ``(T, B, D)``.
    h0 : numpy.ndarray
        ``(B, H)``.
    keep : numpy.ndarray
        ``(T, B)``, 0 where the state is reset before step t, else 1.
    params : dict
        ``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh``.
    nonlinearity : {"tanh", "relu"}
        ``phi``.

    Returns
    -------
    h : numpy.ndarray
        ``(T, B, H)``.
    h_T : numpy.ndarray
        Final state ``(B, H)``.
    cache : RNNCache
        For `rnn_backward`.
    """
    W_ih = None if projected else params["weight_ih"]
    W_hh = params["weight_hh"]
    b_ih, b_hh = params["bias_ih"], params["bias_hh"]
    T, B, _ = x.shape
    h = np.empty((T, B, h0.shape[1]), x.dtype)  # (T, B, H)
    h_prev = h0
    for t in range(T):
        h_prev = h_prev * keep[t, :, None]
        h[t] = rnn_step_forward(x[t], h_prev, W_ih, W_hh, b_ih, b_hh, nonlinearity)
        h_prev = h[t]
    return h, h[-1].copy(), RNNCache(x, h0, keep, h)


def rnn_backward(d_out, dh_T, cache, params, nonlinearity="tanh", projected=False):
    """Backpropagation through time for `rnn_forward` (NumPy reference).

    The gradient reaching ``h_t`` is the loss's own ``d_out[t]`` plus what flows
    back from step t+1; a reset before step t+1 cuts that flow.

    Parameters
    ----------
    d_out : numpy.ndarray
        ``(T, B, H)``.
    dh_T : numpy.ndarray
        Gradient with respect to the final state ``(B, H)``.
    cache : RNNCache
        From `rnn_forward`.
    params : dict
        The parameters the forward pass used.
    nonlinearity : {"tanh", "relu"}
        ``phi``.

    Returns
    -------
    dx : numpy.ndarray
        ``(T, B, D)``.
    dh0 : numpy.ndarray
        ``(B, H)``.
    grads : dict
        Gradients keyed like ``params``.
    """
    x, h0, keep, h = cache.x, cache.h0, cache.keep, cache.h
    W_ih = None if projected else params["weight_ih"]
    W_hh = params["weight_hh"]
    grads = {
        name: np.zeros_like(value)
        for name, value in params.items()
        if not (projected and name == "weight_ih")
    }
    dx = np.empty_like(x)  # (T, B, D)
    dh_next = dh_T  # gradient flowing into h_t from the future
    for t in reversed(range(len(x))):
        h_prev = (h[t - 1] if t > 0 else h0) * keep[t, :, None]
        dh_t = d_out[t] + dh_next
        dx[t], dh_prev, dW_ih, dW_hh, db_ih, db_hh = rnn_step_backward(
            dh_t, x[t], h_prev, h[t], W_ih, W_hh, nonlinearity
        )
        if dW_ih is not None:
            grads["weight_ih"] += dW_ih
        grads["weight_hh"] += dW_hh
        grads["bias_ih"] += db_ih
        grads["bias_hh"] += db_hh

        # The reset multiplied h_prev by keep[t]; the chain rule multiplies back.
        dh_next = dh_prev * keep[t, :, None]
    return dx, dh_next, grads


class RNN(RecurrentLayer):
    r"""Vanilla recurrent layer, ``h_t = phi(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)``.

    With ``phi = tanh`` this is the textbook ``h_t = tanh(W_hh h_{t-1} + W_xh x_t +
    b_h)``, with ``W_xh = W_ih`` and ``b_h = b_ih + b_hh``.

    Parameters
    ----------
    input_size : int
        D, the size of each input vector.
    hidden_size : int
        H, the size of the hidden state.
    nonlinearity : {"tanh", "relu"}, default "tanh"
        ``phi``.
    dtype : {np.float64, np.float32}, default np.float64
        Dtype of parameters, inputs and outputs; inputs are never cast silently.
    seed : None, int or numpy.random.Generator
        Seed of the initialisation.
    backend : {"numba", "numpy"}, default "numba"
        ``"numpy"`` runs the readable reference loops; ``"numba"`` the compiled
        core, which computes the same numbers.
    init : {"pytorch", "glorot", "orthogonal"}, default "pytorch"
        Initialisation scheme, see `rnnrec.initializers.init_params`.

    Attributes
    ----------
    params : dict of str to numpy.ndarray
        ``weight_ih (H, D)``, ``weight_hh (H, H)``, ``bias_ih (H,)``,
        ``bias_hh (H,)``, named as in ``torch.nn.RNN`` without ``_l0``.

    Examples
    --------
    Truncated BPTT over windows of 5 steps, the state carried between windows
    but the gradient stopped at their borders:

    >>> import numpy as np
    >>> from rnnrec import RNN
    >>> layer = RNN(3, 4, seed=0)
    >>> x = np.random.default_rng(1).standard_normal((20, 2, 3))
    >>> state = None
    >>> for start in range(0, 20, 5):
    ...     out, state, cache = layer.forward(x[start : start + 5], state)
    ...     dx, _, grads = layer.backward(np.ones_like(out), cache)
    >>> out.shape, sorted(grads)
    ((5, 2, 4), ['bias_hh', 'bias_ih', 'weight_hh', 'weight_ih'])
    """

    n_gates = 1
    cell = "rnn"
    cache_type = RNNCache

    def __init__(
        self,
        input_size,
        hidden_size,
        *,
        nonlinearity="tanh",
        dtype=np.float64,
        seed=None,
        backend="numba",
        init="pytorch",
    ):
        self.nonlinearity = check_choice(nonlinearity, "nonlinearity", NONLINEARITIES)
        super().__init__(
            input_size,
            hidden_size,
            dtype=dtype,
            seed=seed,
            backend=backend,
            init=init,
        )

    def _extra_repr(self):
        return f", nonlinearity={self.nonlinearity!r}"

    def _functions(self):
        if self.backend == "numba":
            from rnnrec.kernels.rnn import rnn_backward_fast, rnn_forward_fast

            forward, backward = rnn_forward_fast, rnn_backward_fast
        else:
            forward, backward = rnn_forward, rnn_backward
        return (
            partial(forward, nonlinearity=self.nonlinearity),
            partial(backward, nonlinearity=self.nonlinearity),
        )

"""The LSTM: step forward, step backward, sequence, BPTT.

Equations, for one step with a batch of B rows (``sigma`` the logistic
function, ``*`` the elementwise product)::

    i_t = sigma(W_ii x_t + b_ii + W_hi h_{t-1} + b_hi)      input gate
    f_t = sigma(W_if x_t + b_if + W_hf h_{t-1} + b_hf)      forget gate
    g_t =  tanh(W_ig x_t + b_ig + W_hg h_{t-1} + b_hg)      candidate
    o_t = sigma(W_io x_t + b_io + W_ho h_{t-1} + b_ho)      output gate
    c_t = f_t * c_{t-1} + i_t * g_t                          cell    (B, H)
    h_t = o_t * tanh(c_t)                                    state   (B, H)

The four gates' weights are stacked in the order i, f, g, o, as in PyTorch:
``W_ih = [W_ii; W_if; W_ig; W_io]`` is ``(4H, D)`` and ``W_hh`` is ``(4H, H)``.

What each gate does to the gradient: the cell path ``c_{t-1} -> c_t`` is
multiplied only by ``f_t``, so with the forget gate open the gradient crosses many
steps without the repeated squashing that makes a vanilla RNN's vanish.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from rnnrec.cells.activations import sigmoid
from rnnrec.cells.base import RecurrentLayer, input_term, input_term_backward


def lstm_step_forward(x_t, h_prev, c_prev, W_ih, W_hh, b_ih, b_hh):
    """One LSTM step (equations in the module docstring).

    Parameters
    ----------
    x_t : numpy.ndarray
        Input ``(B, D)``.
    h_prev, c_prev : numpy.ndarray
        Previous hidden and cell state ``(B, H)``.
    W_ih, W_hh : numpy.ndarray
        ``(4H, D)`` and ``(4H, H)``, gates stacked i, f, g, o.
    b_ih, b_hh : numpy.ndarray
        ``(4H,)``.

    Returns
    -------
    h_t, c_t : numpy.ndarray
        ``(B, H)``.
    gates : numpy.ndarray
        ``[i_t, f_t, g_t, o_t]`` after their nonlinearities, ``(B, 4H)``.
    """
    H = h_prev.shape[1]
    a_t = input_term(x_t, W_ih, b_ih) + h_prev @ W_hh.T + b_hh  # (B, 4H)
    gates = sigmoid(a_t)
    gates[:, 2 * H : 3 * H] = np.tanh(a_t[:, 2 * H : 3 * H])
    i_t, f_t, g_t, o_t = np.split(gates, 4, axis=1)
    c_t = f_t * c_prev + i_t * g_t  # (B, H)
    h_t = o_t * np.tanh(c_t)  # (B, H)
    return h_t, c_t, gates


def lstm_step_backward(dh_t, dc_t, x_t, h_prev, c_prev, c_t, gates, W_ih, W_hh):
    """Backward pass of `lstm_step_forward`.

    ``dc_t`` is the gradient reaching ``c_t`` from step t+1; the output adds its
    own share through ``h_t = o_t * tanh(c_t)``. With ``a`` the pre-activations::

        do = dh * tanh(c_t)               dc = dc_t + dh * o_t * (1 - tanh(c_t)^2)
        di = dc * g_t    df = dc * c_prev    dg = dc * i_t    dc_prev = dc * f_t
        da = [di*i(1-i), df*f(1-f), dg*(1-g^2), do*o(1-o)]          (B, 4H)
        dx_t = da W_ih    dh_prev = da W_hh    dW_ih = da^T x_t
        dW_hh = da^T h_prev    db_ih = db_hh = sum_B da

    ``tanh(c_t)`` is recomputed rather than stored.

    Parameters
    ----------
    dh_t, dc_t : numpy.ndarray
        Gradients with respect to ``h_t`` and ``c_t`` ``(B, H)``.
    x_t : numpy.ndarray
        The step's input ``(B, D)``.
    h_prev, c_prev, c_t : numpy.ndarray
        ``(B, H)``.
    gates : numpy.ndarray
        ``[i, f, g, o]`` from the forward step ``(B, 4H)``.
    W_ih, W_hh : numpy.ndarray
        ``(4H, D)`` and ``(4H, H)``.

    Returns
    -------
    tuple of numpy.ndarray
        ``dx_t, dh_prev, dc_prev, dW_ih, dW_hh, db_ih, db_hh``.
    """
    i_t, f_t, g_t, o_t = np.split(gates, 4, axis=1)
    tanh_c = np.tanh(c_t)

    # h_t = o_t * tanh(c_t): one share to o_t, one to c_t.
    do = dh_t * tanh_c
    dc = dc_t + dh_t * o_t * (1 - tanh_c * tanh_c)

    # c_t = f_t * c_{t-1} + i_t * g_t
    di = dc * g_t
    df = dc * c_prev
    dg = dc * i_t
    dc_prev = dc * f_t

    # Through the nonlinearities: sigma' = s(1-s), tanh' = 1-g^2.
    da = np.concatenate(
        [
            di * i_t * (1 - i_t),
            df * f_t * (1 - f_t),
            dg * (1 - g_t * g_t),
            do * o_t * (1 - o_t),
        ],
        axis=1,
    )  # (B, 4H)

    # The affine maps.
    dx_t, dW_ih = input_term_backward(da, x_t, W_ih)  # (B, D), (4H, D)
    dh_prev = da @ W_hh  # (B, H)
    dW_hh = da.T @ h_prev  # (4H, H)
    db = da.sum(axis=0)  # (4H,)
    return dx_t, dh_prev, dc_prev, dW_ih, dW_hh, db, db.copy()


class LSTMCache(NamedTuple):
    """What the LSTM's backward pass needs from its forward pass.

    Attributes
    ----------
    x : numpy.ndarray
        Inputs ``(T, B, D)``.
    h0, c0 : numpy.ndarray
        Initial state ``(B, H)``.
    keep : numpy.ndarray
        ``(T, B)``: 0 where the state was reset before step t, else 1.
    gates : numpy.ndarray
        ``[i, f, g, o]`` after their nonlinearities ``(T, B, 4H)``.
    c : numpy.ndarray
        Cell states ``(T, B, H)``; ``tanh(c)`` is recomputed in backward.
    h : numpy.ndarray
        Hidden states ``(T, B, H)``.
    projected : bool
        Whether ``x`` held input projections (see `RecurrentLayer.forward`).
    owner : object
        Token of the layer that made the cache.
    """

    x: np.ndarray
    h0: np.ndarray
    c0: np.ndarray
    keep: np.ndarray
    gates: np.ndarray
    c: np.ndarray
    h: np.ndarray
    projected: bool = False
    owner: object = None


def lstm_forward(x, state, keep, params, projected=False):
    """Run the LSTM over T steps (NumPy reference).

    Parameters
    ----------
    x : numpy.ndarray
        ``(T, B, D)``.
    state : tuple of numpy.ndarray
        ``(h0, c0)``, each ``(B, H)``.
    keep : numpy.ndarray
        ``(T, B)``, 0 where the state is reset before step t, else 1.
    params : dict
        ``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh``.

    Returns
    -------
    h : numpy.ndarray
        ``(T, B, H)``.
    state : tuple of numpy.ndarray
        ``(h_T, c_T)``.
    cache : LSTMCache
        For `lstm_backward`.
    """
    W_ih = None if projected else params["weight_ih"]
    W_hh = params["weight_hh"]
    b_ih, b_hh = params["bias_ih"], params["bias_hh"]
    h0, c0 = state
    T, B, _ = x.shape
    H = h0.shape[1]
    h = np.empty((T, B, H), x.dtype)  # (T, B, H)
    c = np.empty((T, B, H), x.dtype)  # (T, B, H)
    gates = np.empty((T, B, 4 * H), x.dtype)  # (T, B, 4H)
    h_prev, c_prev = h0, c0
    for t in range(T):
        h_prev = h_prev * keep[t, :, None]
        c_prev = c_prev * keep[t, :, None]
        h[t], c[t], gates[t] = lstm_step_forward(
            x[t], h_prev, c_prev, W_ih, W_hh, b_ih, b_hh
        )
        h_prev, c_prev = h[t], c[t]
    cache = LSTMCache(x, h0, c0, keep, gates, c, h)
    return h, (h[-1].copy(), c[-1].copy()), cache


def lstm_backward(d_out, d_state, cache, params, projected=False):
    """Backpropagation through time for `lstm_forward` (NumPy reference).

    Parameters
    ----------
    d_out : numpy.ndarray
        ``(T, B, H)``.
    d_state : tuple of numpy.ndarray
        Gradients with respect to the final ``(h_T, c_T)``.
    cache : LSTMCache
        From `lstm_forward`.
    params : dict
        The parameters the forward pass used.

    Returns
    -------
    dx : numpy.ndarray
        ``(T, B, D)``.
    d_state0 : tuple of numpy.ndarray
        ``(dh0, dc0)``.
    grads : dict
        Gradients keyed like ``params``.
    """
    x, keep, gates, c, h = cache.x, cache.keep, cache.gates, cache.c, cache.h
    W_ih = None if projected else params["weight_ih"]
    W_hh = params["weight_hh"]
    grads = {
        name: np.zeros_like(value)
        for name, value in params.items()
        if not (projected and name == "weight_ih")
    }
    dx = np.empty_like(x)  # (T, B, D)
    dh_next, dc_next = d_state
    for t in reversed(range(len(x))):
        h_prev = (h[t - 1] if t > 0 else cache.h0) * keep[t, :, None]
        c_prev = (c[t - 1] if t > 0 else cache.c0) * keep[t, :, None]
        dh_t = d_out[t] + dh_next
        dx[t], dh_prev, dc_prev, dW_ih, dW_hh, db_ih, db_hh = lstm_step_backward(
            dh_t, dc_next, x[t], h_prev, c_prev, c[t], gates[t], W_ih, W_hh
        )
        if dW_ih is not None:
            grads["weight_ih"] += dW_ih
        grads["weight_hh"] += dW_hh
        grads["bias_ih"] += db_ih
        grads["bias_hh"] += db_hh

        # A reset zeroed both states before step t: no gradient crosses it.
        dh_next = dh_prev * keep[t, :, None]
        dc_next = dc_prev * keep[t, :, None]
    return dx, (dh_next, dc_next), grads


class LSTM(RecurrentLayer):
    """Long short-term memory layer (Hochreiter & Schmidhuber, 1997).

    Equations (gates stacked i, f, g, o, as in ``torch.nn.LSTM``)::

        a_t = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh                  (B, 4H)
        [i, f, g, o] = [sigma, sigma, tanh, sigma](a_t)
        c_t = f * c_{t-1} + i * g
        h_t = o * tanh(c_t)

    Parameters
    ----------
    input_size : int
        D, the size of each input vector.
    hidden_size : int
        H, the size of the hidden and cell state.
    dtype : {np.float64, np.float32}, default np.float64
        Dtype of parameters, inputs and outputs; inputs are never cast silently.
    seed : None, int or numpy.random.Generator
        Seed of the initialisation.
    backend : {"numba", "numpy"}, default "numba"
        ``"numpy"`` runs the readable reference loops; ``"numba"`` the compiled
        core, which computes the same numbers.
    init : {"pytorch", "glorot", "orthogonal"}, default "pytorch"
        Initialisation scheme, see `rnnrec.initializers.init_params`.
    forget_bias : float, optional
        If given, the forget gate's biases are set so that ``b_if + b_hf`` equals
        it (``b_if = forget_bias``, ``b_hf = 0``); 1.0 is the usual choice to
        start with the cell's memory open.

    Attributes
    ----------
    params : dict of str to numpy.ndarray
        ``weight_ih (4H, D)``, ``weight_hh (4H, H)``, ``bias_ih (4H,)``,
        ``bias_hh (4H,)``, as in ``torch.nn.LSTM`` without ``_l0``.

    Examples
    --------
    The state is the tuple ``(h, c)``:

    >>> import numpy as np
    >>> from rnnrec import LSTM
    >>> layer = LSTM(3, 4, seed=0, forget_bias=1.0)
    >>> out, (h, c), cache = layer.forward(np.zeros((6, 2, 3)))
    >>> dx, (dh0, dc0), grads = layer.backward(np.ones_like(out), cache)
    >>> dx.shape, grads["weight_hh"].shape
    ((6, 2, 3), (16, 4))
    """

    n_gates = 4
    cell = "lstm"
    cache_type = LSTMCache
    has_cell_state = True

    def __init__(
        self,
        input_size,
        hidden_size,
        *,
        dtype=np.float64,
        seed=None,
        backend="numba",
        init="pytorch",
        forget_bias=None,
    ):
        super().__init__(
            input_size,
            hidden_size,
            dtype=dtype,
            seed=seed,
            backend=backend,
            init=init,
        )
        if forget_bias is not None:
            try:
                value = float(forget_bias)
            except (TypeError, ValueError):
                raise TypeError(
                    f"forget_bias must be a number or None, got {forget_bias!r}"
                ) from None
            if not np.isfinite(value):
                raise ValueError(f"forget_bias must be finite, got {forget_bias!r}")
            H = self.hidden_size
            self.params["bias_ih"][H : 2 * H] = value
            self.params["bias_hh"][H : 2 * H] = 0
        self.forget_bias = forget_bias

    def _functions(self):
        if self.backend == "numba":
            from rnnrec.kernels.lstm import lstm_backward_fast, lstm_forward_fast

            return lstm_forward_fast, lstm_backward_fast
        return lstm_forward, lstm_backward

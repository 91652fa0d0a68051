"""A ``jax.lax.scan`` twin of rnnrec's cells, written for the accuracy comparison.

The RNN (tanh and relu), the LSTM and both GRU variants are written here a
second time, step by step, in JAX: the same equations as ``rnnrec.cells``, the
same parameter names and gate orders as PyTorch (``weight_ih``, ``weight_hh``,
``bias_ih``, ``bias_hh``; gates i, f, g, o for the LSTM and r, z, n for the
GRU), time-major inputs ``(T, B, D)``. Gradients come from JAX's automatic
differentiation (`jax.vjp`), not from a hand-written backward pass, so they are
an independent check of rnnrec's BPTT.

This is not part of the package; `bench_accuracy.py` and the tests use it. JAX
computes in float32 unless 64-bit types are switched on; a float64 run needs
``jax.config.update("jax_enable_x64", True)`` or the ``jax.enable_x64(True)``
context. Every array here is given an explicit dtype, so a float32 run stays
float32 with 64-bit types switched on.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

PARAM_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
CELLS = ("rnn-tanh", "rnn-relu", "lstm", "gru-torch", "gru-cho")


def _matmul_t(a, W):
    """Return ``a W^T`` at full precision (no reduced-precision shortcut)."""
    return jnp.matmul(a, W.T, precision=jax.lax.Precision.HIGHEST)


def rnn_step(params, h_prev, x_t, nonlinearity="tanh"):
    """One step of the vanilla RNN.

    Equations::

        a_t = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh        (B, H)
        h_t = phi(a_t),   phi = tanh or relu

    ``relu`` is written as ``where(a > 0, a, 0)``, so its derivative at 0 is 0,
    as in rnnrec.

    Parameters
    ----------
    params : dict of str to jax.Array
        ``weight_ih (H, D)``, ``weight_hh (H, H)``, ``bias_ih (H,)``,
        ``bias_hh (H,)``.
    h_prev : jax.Array
        ``h_{t-1}`` ``(B, H)``.
    x_t : jax.Array
        ``(B, D)``.
    nonlinearity : {"tanh", "relu"}
        ``phi``.

    Returns
    -------
    jax.Array
        ``h_t`` ``(B, H)``.
    """
    W_ih, W_hh = params["weight_ih"], params["weight_hh"]
    b_ih, b_hh = params["bias_ih"], params["bias_hh"]
    a_t = _matmul_t(x_t, W_ih) + b_ih + _matmul_t(h_prev, W_hh) + b_hh  # (B, H)
    if nonlinearity == "tanh":
        return jnp.tanh(a_t)
    return jnp.where(a_t > 0, a_t, jnp.zeros_like(a_t))


def lstm_step(params, h_prev, c_prev, x_t):
    """One LSTM step, gates stacked i, f, g, o.

    Equations (``sigma`` the logistic function, ``*`` elementwise)::

        [a_i, a_f, a_g, a_o] = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh  (B, 4H)
        i_t = sigma(a_i)    f_t = sigma(a_f)    g_t = tanh(a_g)    o_t = sigma(a_o)
        c_t = f_t * c_{t-1} + i_t * g_t                                (B, H)
        h_t = o_t * tanh(c_t)                                          (B, H)

    Parameters
    ----------
    params : dict of str to jax.Array
        ``weight_ih (4H, D)``, ``weight_hh (4H, H)``, ``bias_ih (4H,)``,
        ``bias_hh (4H,)``.
    h_prev, c_prev : jax.Array
        ``h_{t-1}`` and ``c_{t-1}`` ``(B, H)``.
    x_t : jax.Array
        ``(B, D)``.

    Returns
    -------
    h_t, c_t : jax.Array
        ``(B, H)``.
    """
    W_ih, W_hh = params["weight_ih"], params["weight_hh"]
    b_ih, b_hh = params["bias_ih"], params["bias_hh"]
    a_t = _matmul_t(x_t, W_ih) + b_ih + _matmul_t(h_prev, W_hh) + b_hh  # (B, 4H)
    a_i, a_f, a_g, a_o = jnp.split(a_t, 4, axis=1)
    i_t, f_t, o_t = jax.nn.sigmoid(a_i), jax.nn.sigmoid(a_f), jax.nn.sigmoid(a_o)
    g_t = jnp.tanh(a_g)
    c_t = f_t * c_prev + i_t * g_t  # (B, H)
    h_t = o_t * jnp.tanh(c_t)  # (B, H)
    return h_t, c_t


def gru_step(params, h_prev, x_t, variant="torch"):
    """One GRU step, gates stacked r, z, n.

    Equations::

        r_t = sigma(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)          (B, H)
        z_t = sigma(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)          (B, H)
        "torch": n_t = tanh(W_in x_t + b_in + r_t * (W_hn h_{t-1} + b_hn))
        "cho":   n_t = tanh(W_in x_t + b_in + W_hn (r_t * h_{t-1}) + b_hn)
        h_t = (1 - z_t) * n_t + z_t * h_{t-1}                        (B, H)

    Parameters
    ----------
    params : dict of str to jax.Array
        ``weight_ih (3H, D)``, ``weight_hh (3H, H)``, ``bias_ih (3H,)``,
        ``bias_hh (3H,)``.
    h_prev : jax.Array
        ``h_{t-1}`` ``(B, H)``.
    x_t : jax.Array
        ``(B, D)``.
    variant : {"torch", "cho"}
        Whether the reset gate multiplies the recurrent product ("torch",
        PyTorch's convention) or the state inside it ("cho", Cho et al. 2014).

    Returns
    -------
    jax.Array
        ``h_t`` ``(B, H)``.
    """
    W_ih, W_hh = params["weight_ih"], params["weight_hh"]
    b_ih, b_hh = params["bias_ih"], params["bias_hh"]
    H = h_prev.shape[1]
    ax = _matmul_t(x_t, W_ih) + b_ih  # (B, 3H)
    ah_rz = _matmul_t(h_prev, W_hh[: 2 * H]) + b_hh[: 2 * H]  # (B, 2H)
    r_t = jax.nn.sigmoid(ax[:, :H] + ah_rz[:, :H])
    z_t = jax.nn.sigmoid(ax[:, H : 2 * H] + ah_rz[:, H:])
    W_hn, b_hn = W_hh[2 * H :], b_hh[2 * H :]
    if variant == "torch":
        n_t = jnp.tanh(ax[:, 2 * H :] + r_t * (_matmul_t(h_prev, W_hn) + b_hn))
    else:
        n_t = jnp.tanh(ax[:, 2 * H :] + _matmul_t(r_t * h_prev, W_hn) + b_hn)
    return (1 - z_t) * n_t + z_t * h_prev


def scan_forward(cell, params, x, state0):
    """Run a cell over a sequence with `jax.lax.scan`.

    Parameters
    ----------
    cell : {"rnn-tanh", "rnn-relu", "lstm", "gru-torch", "gru-cho"}
        Which cell (see `rnn_step`, `lstm_step`, `gru_step`).
    params : dict of str to jax.Array
        The cell's parameters, named as in rnnrec.
    x : jax.Array
        Inputs, time-major, ``(T, B, D)``.
    state0 : jax.Array or tuple of jax.Array
        Initial state ``h_0`` ``(B, H)``; for the LSTM the pair ``(h_0, c_0)``.

    Returns
    -------
    out : jax.Array
        Every hidden state ``h_1 .. h_T``, ``(T, B, H)``.
    final : jax.Array or tuple of jax.Array
        The last state (LSTM: ``(h_T, c_T)``).
    """
    if cell not in CELLS:
        raise ValueError(f"cell must be one of {CELLS}, got {cell!r}")
    if cell == "lstm":

        def step(state, x_t):
            h_t, c_t = lstm_step(params, *state, x_t)
            return (h_t, c_t), h_t

    else:
        kind, option = cell.split("-")  # ("rnn", "tanh"), ("gru", "cho"), ...

        def step(h_prev, x_t):
            if kind == "rnn":
                h_t = rnn_step(params, h_prev, x_t, nonlinearity=option)
            else:
                h_t = gru_step(params, h_prev, x_t, variant=option)
            return h_t, h_t

    final, out = jax.lax.scan(step, state0, x)
    return out, final


def _check_dtype(dtype):
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dtype}")
    if dtype == np.float64 and not jax.config.jax_enable_x64:
        raise ValueError(
            "a float64 run needs JAX's 64-bit types: call "
            'jax.config.update("jax_enable_x64", True) or run inside '
            "jax.enable_x64(True)"
        )
    return dtype


def cell_of(layer):
    """Name an rnnrec layer's cell as this module does (``"gru-cho"``, ...).

    Parameters
    ----------
    layer : rnnrec.RNN, rnnrec.LSTM or rnnrec.GRU
        The layer.

    Returns
    -------
    str
        One of `CELLS`.
    """
    if layer.cell == "rnn":
        return f"rnn-{layer.nonlinearity}"
    if layer.cell == "gru":
        return f"gru-{layer.variant}"
    if layer.cell == "lstm":
        return "lstm"
    raise TypeError(f"layer must be an RNN, LSTM or GRU, got {type(layer).__name__}")


def params_of(layer, dtype):
    """Copy an rnnrec layer's parameters into JAX arrays of ``dtype``.

    Parameters
    ----------
    layer : rnnrec.RNN, rnnrec.LSTM or rnnrec.GRU
        The layer whose ``params`` are copied.
    dtype : {numpy.float32, numpy.float64}
        The dtype of the copies (float64 needs 64-bit types switched on).

    Returns
    -------
    dict of str to jax.Array
        The four parameters under rnnrec's names.
    """
    dtype = _check_dtype(dtype)
    return {
        name: jnp.asarray(np.asarray(layer.params[name], dtype=dtype))
        for name in PARAM_NAMES
    }


@partial(jax.jit, static_argnames="cell")
def _forward_vjp(cell, params, x, state0, d_out):
    def forward(params, x, state0):
        return scan_forward(cell, params, x, state0)

    out, pullback, final = jax.vjp(forward, params, x, state0, has_aux=True)
    d_params, dx, d_state0 = pullback(d_out)
    return out, final, dx, d_state0, d_params


def forward_and_grads(layer, x, state0, d_out, dtype=np.float32):
    """Forward pass and gradients of ``sum(out * d_out)`` for an rnnrec layer's twin.

    The layer's weights, ``x``, ``state0`` and ``d_out`` are converted to
    ``dtype``; the JAX twin of the layer's cell runs over the sequence, and
    `jax.vjp` pulls ``d_out`` back to the input, the initial state and every
    parameter.

    Parameters
    ----------
    layer : rnnrec.RNN, rnnrec.LSTM or rnnrec.GRU
        Supplies the cell and the weights.
    x : numpy.ndarray
        Inputs ``(T, B, D)``.
    state0 : numpy.ndarray or tuple of numpy.ndarray
        ``h_0`` ``(B, H)``; for the LSTM ``(h_0, c_0)``.
    d_out : numpy.ndarray
        Gradient of the loss with respect to ``out`` ``(T, B, H)``.
    dtype : {numpy.float32, numpy.float64}, default numpy.float32
        Precision of the whole computation.

    Returns
    -------
    out : numpy.ndarray
        ``(T, B, H)``.
    final : numpy.ndarray or tuple of numpy.ndarray
        The last state (LSTM: ``(h_T, c_T)``).
    grads : dict of str to numpy.ndarray
        ``"x"``, ``"h0"`` (and ``"c0"`` for the LSTM), and the four parameters
        under rnnrec's names, all of ``dtype``.
    """
    dtype = _check_dtype(dtype)
    cell = cell_of(layer)

    def as_jax(a):
        return jnp.asarray(np.asarray(a, dtype=dtype))

    if cell == "lstm":
        if not (isinstance(state0, tuple) and len(state0) == 2):
            raise TypeError("state0 of an LSTM must be a tuple (h0, c0)")
        state0 = tuple(as_jax(s) for s in state0)
    else:
        state0 = as_jax(state0)
    out, final, dx, d_state0, d_params = _forward_vjp(
        cell, params_of(layer, dtype), as_jax(x), state0, as_jax(d_out)
    )
    grads = {"x": np.asarray(dx)}
    if cell == "lstm":
        grads["h0"], grads["c0"] = np.asarray(d_state0[0]), np.asarray(d_state0[1])
        final = (np.asarray(final[0]), np.asarray(final[1]))
    else:
        grads["h0"] = np.asarray(d_state0)
        final = np.asarray(final)
    grads.update({name: np.asarray(d_params[name]) for name in PARAM_NAMES})
    return np.asarray(out), final, grads

"""The vanilla RNN on the Numba core (mirrors `rnnrec.cells.rnn`).

The work splits in two. Everything that does not depend on the previous step is
one large matrix product in NumPy, outside the time loop:

    A = X W_ih^T + b_ih + b_hh          (T*B, H)   before the loop
    dX = dA W_ih,  dW_ih = dA^T X,  dW_hh = dA^T H_prev,  db = sum dA   after it

The time loop is compiled and does, per step, the recurrent product (one BLAS
call) and the elementwise work:

    forward   a_t += h_{t-1} W_hh^T;   h_t = phi(a_t)
    backward  da_t = (d_out_t + dh_t) * phi'(a_t);   dh_{t-1} = da_t W_hh

with the state, and the gradient flowing back to it, zeroed where ``keep`` is 0.
"""

from __future__ import annotations

import numpy as np

from rnnrec.cells.rnn import RNNCache
from rnnrec.kernels import gatemath
from rnnrec.kernels._jit import gemm, jit, matmul


@jit
def masked_previous(h0, h, keep, t, out):
    """Write ``h_{t-1} * keep_t`` into ``out`` (``h_{-1}`` is ``h0``).

    Parameters
    ----------
    h0 : numpy.ndarray
        Initial state ``(B, H)``.
    h : numpy.ndarray
        States ``(T, B, H)``, filled up to step ``t - 1``.
    keep : numpy.ndarray
        ``(T, B)``.
    t : int
        The step.
    out : numpy.ndarray
        ``(B, H)``, overwritten.
    """
    B, H = out.shape
    for b in range(B):
        k = keep[t, b]
        for j in range(H):
            out[b, j] = (h[t - 1, b, j] if t > 0 else h0[b, j]) * k


@jit
def rnn_forward_loop(a, h0, keep, W_hh, relu, h):
    """Run the recurrence; ``a`` holds ``x_t W_ih^T + b`` on entry.

    Parameters
    ----------
    a : numpy.ndarray
        ``(T, B, H)``; the input projections on entry, the pre-activations on
        exit.
    h0 : numpy.ndarray
        ``(B, H)``.
    keep : numpy.ndarray
        ``(T, B)``.
    W_hh : numpy.ndarray
        ``(H, H)``, unit stride along the last axis.
    relu : bool
        ``phi`` is relu (else tanh).
    h : numpy.ndarray
        ``(T, B, H)``, overwritten with the states.
    """
    T, B, H = a.shape
    h_prev = np.empty((B, H), a.dtype)  # (B, H)
    for t in range(T):
        masked_previous(h0, h, keep, t, h_prev)
        gemm(h_prev, W_hh, a[t], True, 1.0)  # a_t += h_{t-1} W_hh^T
        for b in range(B):
            for j in range(H):
                v = a[t, b, j]
                h[t, b, j] = max(v, 0.0) if relu else gatemath.tanh(v)


@jit
def rnn_backward_loop(d_out, dh_T, h, keep, W_hh, relu, da):
    """Backpropagate through the recurrence; return the gradient on ``h0``.

    Parameters
    ----------
    d_out : numpy.ndarray
        ``(T, B, H)``.
    dh_T : numpy.ndarray
        Gradient on the final state ``(B, H)``.
    h : numpy.ndarray
        States ``(T, B, H)``.
    keep : numpy.ndarray
        ``(T, B)``.
    W_hh : numpy.ndarray
        ``(H, H)``.
    relu : bool
        ``phi`` is relu (else tanh).
    da : numpy.ndarray
        ``(T, B, H)``, overwritten with the pre-activation gradients.

    Returns
    -------
    numpy.ndarray
        ``dh0`` ``(B, H)``.
    """
    T, B, H = d_out.shape
    dh_next = dh_T.copy()  # gradient reaching h_t from step t+1
    for t in range(T - 1, -1, -1):
        for b in range(B):
            for j in range(H):
                dh = d_out[t, b, j] + dh_next[b, j]
                h_t = h[t, b, j]
                # phi' read off h_t: relu' = [h > 0], tanh' = 1 - h^2
                da[t, b, j] = dh * (h_t > 0) if relu else dh * (1.0 - h_t * h_t)

        gemm(da[t], W_hh, dh_next, False, 0.0)  # dh_{t-1} = da_t W_hh

        # A reset before step t cut the state: no gradient crosses it.
        for b in range(B):
            k = keep[t, b]
            for j in range(H):
                dh_next[b, j] *= k
    return dh_next


def previous_states(h0, h, keep):
    """Stack ``h_{t-1} * keep_t`` for all steps, ``(T*B, H)``.

    Parameters
    ----------
    h0 : numpy.ndarray
        ``(B, H)``.
    h : numpy.ndarray
        ``(T, B, H)``.
    keep : numpy.ndarray
        ``(T, B)``.

    Returns
    -------
    numpy.ndarray
        ``(T*B, H)``, the inputs of the recurrent product at every step.
    """
    T, B, H = h.shape
    prev = np.empty_like(h)  # (T, B, H)
    prev[0] = h0
    prev[1:] = h[:-1]
    prev *= keep[:, :, None]
    return prev.reshape(T * B, H)


def input_projection(x, W_ih, bias):
    """Return ``x W_ih^T + bias`` for all steps at once, ``(T, B, G*H)``.

    Parameters
    ----------
    x : numpy.ndarray
        ``(T, B, D)``; in projected mode (``W_ih`` None) ``(T, B, G*H)``, the
        projection itself.
    W_ih : numpy.ndarray or None
        ``(G*H, D)``.
    bias : numpy.ndarray
        ``(G*H,)``.

    Returns
    -------
    numpy.ndarray
        A new C-contiguous array.
    """
    if W_ih is None:
        return x + bias
    T, B, D = x.shape
    a = matmul(x.reshape(T * B, D), W_ih.T)  # (T*B, G*H)
    a += bias
    return a.reshape(T, B, -1)


def input_gradients(da, x, W_ih):
    """Return ``dx``, ``dW_ih`` and ``db_ih`` from the pre-activation gradients.

    Parameters
    ----------
    da : numpy.ndarray
        ``(T, B, G*H)``.
    x : numpy.ndarray
        ``(T, B, D)``.
    W_ih : numpy.ndarray or None
        ``(G*H, D)``; None in projected mode, where ``dx`` is ``da`` and
        ``dW_ih`` is None.

    Returns
    -------
    dx, dW_ih, db_ih : numpy.ndarray
        ``(T, B, D)``, ``(G*H, D)``, ``(G*H,)``.
    """
    T, B, _ = x.shape
    da2 = da.reshape(T * B, -1)
    if W_ih is None:
        return da, None, da2.sum(axis=0)
    D = x.shape[2]
    dx = matmul(da2, W_ih).reshape(T, B, D)
    return dx, matmul(da2.T, x.reshape(T * B, D)), da2.sum(axis=0)


def input_weights(params, projected):
    """Return ``weight_ih``, or None in projected mode."""
    return None if projected else params["weight_ih"]


def assemble_grads(dW_ih, dW_hh, db_ih, db_hh):
    """Return the gradient dict, without ``weight_ih`` in projected mode."""
    grads = {"weight_ih": dW_ih, "weight_hh": dW_hh, "bias_ih": db_ih, "bias_hh": db_hh}
    if dW_ih is None:
        del grads["weight_ih"]
    return grads


def rnn_forward_fast(x, h0, keep, params, nonlinearity="tanh", projected=False):
    """Numba-backed equivalent of `rnnrec.cells.rnn.rnn_forward`.

    Parameters
    ----------
    x, h0, keep, params, nonlinearity
        As in `rnnrec.cells.rnn.rnn_forward`.

    Returns
    -------
    h, h_T, cache
        As in `rnnrec.cells.rnn.rnn_forward`.
    """
    bias = params["bias_ih"] + params["bias_hh"]
    a = input_projection(x, input_weights(params, projected), bias)
    h = np.empty_like(a)  # (T, B, H)
    W_hh = np.ascontiguousarray(params["weight_hh"])  # (H, H), no copy if C-order
    rnn_forward_loop(a, h0, keep, W_hh, nonlinearity == "relu", h)
    return h, h[-1].copy(), RNNCache(x, h0, keep, h)


def rnn_backward_fast(d_out, dh_T, cache, params, nonlinearity="tanh", projected=False):
    """Numba-backed equivalent of `rnnrec.cells.rnn.rnn_backward`.

    Parameters
    ----------
    d_out, dh_T, cache, params, nonlinearity
        As in `rnnrec.cells.rnn.rnn_backward`.

    Returns
    -------
    dx, dh0, grads
        As in `rnnrec.cells.rnn.rnn_backward`.
    """
    x, h = cache.x, cache.h
    W_hh = params["weight_hh"]
    da = np.empty_like(h)  # (T, B, H)
    relu = nonlinearity == "relu"
    dh0 = rnn_backward_loop(d_out, dh_T, h, cache.keep, W_hh, relu, da)
    dx, dW_ih, db = input_gradients(da, x, input_weights(params, projected))
    T, B, H = h.shape
    dW_hh = da.reshape(T * B, H).T @ previous_states(cache.h0, h, cache.keep)
    return dx, dh0, assemble_grads(dW_ih, dW_hh, db, db.copy())

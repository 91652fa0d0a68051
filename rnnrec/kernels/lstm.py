"""The LSTM on the Numba core (mirrors `rnnrec.cells.lstm`).

Outside the time loop, in NumPy: ``A = X W_ih^T + b_ih + b_hh`` before it and
``dX``, ``dW_ih``, ``dW_hh``, the biases after it, each one large product (see
`rnnrec.kernels.rnn`). The compiled loop does, per step::

    forward   a_t += h_{t-1} W_hh^T                    (one BLAS call)
              i, f, g, o = sigma, sigma, tanh, sigma of the four blocks of a_t
              c_t = f c_{t-1} + i g;   h_t = o tanh(c_t)
    backward  dh = d_out_t + dh_next;   dc = dc_next + dh o (1 - tanh(c_t)^2)
              da_t = [dc g i(1-i), dc c_{t-1} f(1-f), dc i (1-g^2), dh tanh(c_t) o(1-o)]
              dh_next = da_t W_hh (one BLAS call);   dc_next = dc f

The gate activations overwrite ``a`` in place and are kept for the backward pass.
"""

from __future__ import annotations

import numpy as np

from rnnrec.cells.lstm import LSTMCache
from rnnrec.kernels import gatemath
from rnnrec.kernels._jit import gemm, jit
from rnnrec.kernels.rnn import (
    assemble_grads,
    input_gradients,
    input_projection,
    input_weights,
    masked_previous,
    previous_states,
)


@jit
def lstm_forward_loop(a, h0, c0, keep, W_hh, h, c):
    """Run the recurrence; ``a`` holds ``x_t W_ih^T + b`` on entry.

    Parameters
    ----------
    a : numpy.ndarray
        ``(T, B, 4H)``; input projections on entry, gate activations
        ``[i, f, g, o]`` on exit.
    h0, c0 : numpy.ndarray
        ``(B, H)``.
    keep : numpy.ndarray
        ``(T, B)``.
    W_hh : numpy.ndarray
        ``(4H, H)``, unit stride along the last axis.
    h, c : numpy.ndarray
        ``(T, B, H)``, overwritten with the hidden and cell states.
    """
    T, B, H = h.shape
    h_prev = np.empty((B, H), a.dtype)  # (B, H)
    c_prev = np.empty((B, H), a.dtype)  # (B, H)
    for t in range(T):
        masked_previous(h0, h, keep, t, h_prev)
        masked_previous(c0, c, keep, t, c_prev)
        gemm(h_prev, W_hh, a[t], True, 1.0)  # a_t += h_{t-1} W_hh^T
        for b in range(B):
            row = a[t, b]
            gatemath.sigmoid_inplace(row[: 2 * H])  # i, f
            gatemath.tanh_inplace(row[2 * H : 3 * H])  # g
            gatemath.sigmoid_inplace(row[3 * H :])  # o
            i_t, f_t, g_t, o_t = (
                row[:H],
                row[H : 2 * H],
                row[2 * H : 3 * H],
                row[3 * H :],
            )
            c_t, h_t, c_p = c[t, b], h[t, b], c_prev[b]
            for j in range(H):
                c_t[j] = f_t[j] * c_p[j] + i_t[j] * g_t[j]
                h_t[j] = o_t[j] * gatemath.tanh(c_t[j])


@jit
def lstm_backward_loop(d_out, dh_T, dc_T, gates, c, c0, keep, W_hh, da):
    """Backpropagate through the recurrence; return the gradients on ``(h0, c0)``.

    Parameters
    ----------
    d_out : numpy.ndarray
        ``(T, B, H)``.
    dh_T, dc_T : numpy.ndarray
        Gradients on the final state ``(B, H)``.
    gates : numpy.ndarray
        ``[i, f, g, o]`` ``(T, B, 4H)``.
    c : numpy.ndarray
        Cell states ``(T, B, H)``.
    c0 : numpy.ndarray
        Initial cell state ``(B, H)``.
    keep : numpy.ndarray
        ``(T, B)``.
    W_hh : numpy.ndarray
        ``(4H, H)``.
    da : numpy.ndarray
        ``(T, B, 4H)``, overwritten with the pre-activation gradients.

    Returns
    -------
    dh0, dc0 : numpy.ndarray
        ``(B, H)``.
    """
    T, B, H = d_out.shape
    dh_next = dh_T.copy()  # (B, H)
    dc_next = dc_T.copy()  # (B, H)
    c_prev = np.empty((B, H), c.dtype)  # (B, H)
    tanh_c = np.empty(H, c.dtype)  # (H,)
    for t in range(T - 1, -1, -1):
        masked_previous(c0, c, keep, t, c_prev)
        for b in range(B):
            gate = gates[t, b]
            i_t, f_t, g_t, o_t = (
                gate[:H],
                gate[H : 2 * H],
                gate[2 * H : 3 * H],
                gate[3 * H :],
            )
            grad = da[t, b]
            di, df, dg, do = (
                grad[:H],
                grad[H : 2 * H],
                grad[2 * H : 3 * H],
                grad[3 * H :],
            )
            c_t, c_p, dy = c[t, b], c_prev[b], d_out[t, b]
            dh, dc = dh_next[b], dc_next[b]  # updated in place

            # Short loops with few arrays each: a loop that writes many arrays needs
            # more overlap checks than the vectoriser allows, and runs scalar.
            for j in range(H):
                dh[j] += dy[j]
                tanh_c[j] = gatemath.tanh(c_t[j])  # recomputed, not stored

            # h_t = o tanh(c_t): one share to o, one to c_t.
            for j in range(H):
                do[j] = dh[j] * tanh_c[j] * o_t[j] * (1.0 - o_t[j])
                dc[j] += dh[j] * o_t[j] * (1.0 - tanh_c[j] * tanh_c[j])

            # c_t = f c_{t-1} + i g, then through sigma and tanh.
            for j in range(H):
                di[j] = dc[j] * g_t[j] * i_t[j] * (1.0 - i_t[j])
                df[j] = dc[j] * c_p[j] * f_t[j] * (1.0 - f_t[j])
                dg[j] = dc[j] * i_t[j] * (1.0 - g_t[j] * g_t[j])
            for j in range(H):
                dc[j] *= f_t[j]

        gemm(da[t], W_hh, dh_next, False, 0.0)  # dh_{t-1} = da_t W_hh

        # A reset before step t cut both states: no gradient crosses it.
        for b in range(B):
            k = keep[t, b]
            for j in range(H):
                dh_next[b, j] *= k
                dc_next[b, j] *= k
    return dh_next, dc_next


def lstm_forward_fast(x, state, keep, params, projected=False):
    """Numba-backed equivalent of `rnnrec.cells.lstm.lstm_forward`.

    Parameters
    ----------
    x, state, keep, params
        As in `rnnrec.cells.lstm.lstm_forward`.

    Returns
    -------
    h, state, cache
        As in `rnnrec.cells.lstm.lstm_forward`.
    """
    h0, c0 = state
    bias = params["bias_ih"] + params["bias_hh"]
    a = input_projection(x, input_weights(params, projected), bias)
    T, B, _ = x.shape
    h = np.empty((T, B, h0.shape[1]), x.dtype)  # (T, B, H)
    c = np.empty_like(h)  # (T, B, H)
    W_hh = np.ascontiguousarray(params["weight_hh"])  # (4H, H), no copy if C-order
    lstm_forward_loop(a, h0, c0, keep, W_hh, h, c)
    cache = LSTMCache(x, h0, c0, keep, a, c, h)
    return h, (h[-1].copy(), c[-1].copy()), cache


def lstm_backward_fast(d_out, d_state, cache, params, projected=False):
    """Numba-backed equivalent of `rnnrec.cells.lstm.lstm_backward`.

    Parameters
    ----------
    d_out, d_state, cache, params
        As in `rnnrec.cells.lstm.lstm_backward`.

    Returns
    -------
    dx, d_state0, grads
        As in `rnnrec.cells.lstm.lstm_backward`.
    """
    dh_T, dc_T = d_state
    W_hh = params["weight_hh"]
    da = np.empty_like(cache.gates)  # (T, B, 4H)
    dh0, dc0 = lstm_backward_loop(
        d_out, dh_T, dc_T, cache.gates, cache.c, cache.c0, cache.keep, W_hh, da
    )
    dx, dW_ih, db = input_gradients(da, cache.x, input_weights(params, projected))
    T, B, H = cache.h.shape
    dW_hh = da.reshape(T * B, 4 * H).T @ previous_states(cache.h0, cache.h, cache.keep)
    return dx, (dh0, dc0), assemble_grads(dW_ih, dW_hh, db, db.copy())

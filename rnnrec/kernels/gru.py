"""The GRU, both variants, on the Numba core (mirrors `rnnrec.cells.gru`).

Outside the time loop, in NumPy: the input projection ``A = X W_ih^T + b`` before
it, and ``dX``, ``dW_ih``, ``dW_hh`` and the biases after it (see
`rnnrec.kernels.rnn`). The compiled loop does, per step, with ``a`` the input
projection and ``s = h_{t-1} W_hh^T`` the recurrent one::

    "torch"  s = h_{t-1} W_hh^T                     (one BLAS call)
             r, z = sigma(a_r + s_r), sigma(a_z + s_z)
             hn = s_n + b_hn;   n = tanh(a_n + r * hn)
    "cho"    s_rz = h_{t-1} W_hr,z^T                (one BLAS call)
             r, z = sigma(a_r + s_r), sigma(a_z + s_z)
             hn = (r * h_{t-1}) W_hn^T + b_hn        (a second one)
             n = tanh(a_n + hn)
    both     h_t = (1 - z) n + z h_{t-1}

and backward, with ``dh`` the gradient reaching ``h_t``::

    dn_a = dh (1 - z)(1 - n^2);   dz_a = dh (h_{t-1} - n) z (1 - z)
    "torch"  dr_a = dn_a hn r (1 - r);   da_h = [dr_a, dz_a, dn_a r]
             dh_{t-1} = dh z + da_h W_hh           (one BLAS call)
    "cho"    drh = dn_a W_hn                        (one BLAS call)
             dr_a = drh h_{t-1} r (1 - r)
             dh_{t-1} = dh z + drh r + [dr_a, dz_a] W_hr,z   (a second one)

The gate activations ``[r, z, n]`` overwrite ``a`` in place.
"""

from __future__ import annotations

import numba
import numpy as np

from rnnrec.cells.gru import GRUCache
from rnnrec.kernels import gatemath
from rnnrec.kernels._jit import gemm_split, jit_rows, matmul
from rnnrec.kernels.rnn import (
    assemble_grads,
    input_gradients,
    input_projection,
    input_weights,
    masked_previous,
    previous_states,
)


@jit_rows
def gru_forward_loop(a, h0, keep, W_hh, b_hn, cho, h, hn):
    """Run the recurrence; ``a`` holds ``x_t W_ih^T + b`` on entry.

    Parameters
    ----------
    a : numpy.ndarray
        ``(T, B, 3H)``; input projections (with ``b_ih`` and the r and z blocks
        of ``b_hh``) on entry, gate activations ``[r, z, n]`` on exit.
    h0 : numpy.ndarray
        ``(B, H)``.
    keep : numpy.ndarray
        ``(T, B)``.
    W_hh : numpy.ndarray
        ``(3H, H)``, rows ``[W_hr; W_hz; W_hn]``, unit stride along the last axis.
    b_hn : numpy.ndarray
        ``(H,)``, the candidate's recurrent bias.
    cho : bool
        Variant "cho" (else "torch").
    h, hn : numpy.ndarray
        ``(T, B, H)``, overwritten with the states and the candidate's recurrent
        term.
    """
    T, B, H = h.shape
    h_prev = np.empty((B, H), a.dtype)  # (B, H)
    s = np.empty((B, 3 * H), a.dtype)  # (B, 3H)
    for t in range(T):
        masked_previous(h0, h, keep, t, h_prev)
        if cho:
            gemm_split(h_prev, W_hh[: 2 * H], s[:, : 2 * H], True, 0.0)
        else:
            gemm_split(h_prev, W_hh, s, True, 0.0)  # s = h_{t-1} W_hh^T

        for b in numba.prange(B):
            row, s_row = a[t, b], s[b]
            rz = row[: 2 * H]
            for k in range(2 * H):
                rz[k] += s_row[k]
            gatemath.sigmoid_inplace(rz)  # r, z
            if not cho:
                r_t, hn_t, s_n = row[:H], hn[t, b], s_row[2 * H :]
                for j in range(H):
                    hn_t[j] = s_n[j] + b_hn[j]
                n_t = row[2 * H :]
                for j in range(H):
                    n_t[j] += r_t[j] * hn_t[j]

        if cho:
            # hn = (r * h_{t-1}) W_hn^T + b_hn, the reset applied before the product.
            rh = s[:, :H]  # reuses the buffer
            for b in numba.prange(B):
                r_t, rh_b, hp = a[t, b, :H], rh[b], h_prev[b]
                for j in range(H):
                    rh_b[j] = r_t[j] * hp[j]
            gemm_split(rh, W_hh[2 * H :], hn[t], True, 0.0)
            for b in numba.prange(B):
                n_t, hn_t = a[t, b, 2 * H :], hn[t, b]
                for j in range(H):
                    hn_t[j] += b_hn[j]
                    n_t[j] += hn_t[j]

        for b in numba.prange(B):
            row = a[t, b]
            z_t, n_t = row[H : 2 * H], row[2 * H :]
            gatemath.tanh_inplace(n_t)
            h_t, hp = h[t, b], h_prev[b]
            for j in range(H):
                h_t[j] = (1.0 - z_t[j]) * n_t[j] + z_t[j] * hp[j]


@jit_rows
def gru_backward_loop(
    d_out, dh_T, gates, hn, h, h0, keep, W_hh, cho, state_grad, da_x, da_h
):
    """Backpropagate through the recurrence; return the gradient on ``h0``.

    Parameters
    ----------
    d_out : numpy.ndarray
        ``(T, B, H)``.
    dh_T : numpy.ndarray
        Gradient on the final state ``(B, H)``.
    gates : numpy.ndarray
        ``[r, z, n]`` ``(T, B, 3H)``.
    hn : numpy.ndarray
        The candidate's recurrent term ``(T, B, H)``.
    h : numpy.ndarray
        States ``(T, B, H)``.
    h0 : numpy.ndarray
        ``(B, H)``.
    keep : numpy.ndarray
        ``(T, B)``.
    W_hh : numpy.ndarray
        ``(3H, H)``.
    cho : bool
        Variant "cho" (else "torch").
    state_grad : bool
        Compute ``dh0``; if false, the first step's product through ``W_hh`` to
        ``h0`` is skipped and the returned array holds only part of it.
    da_x : numpy.ndarray
        ``(T, B, 3H)``, overwritten with the gradients of the input side's
        pre-activations ``[dr_a, dz_a, dn_a]``.
    da_h : numpy.ndarray
        ``(T, B, 3H)``, overwritten with those of the recurrent side
        (``[dr_a, dz_a, dn_a * r]`` for "torch"); unused for "cho", whose
        recurrent side sees ``da_x``.

    Returns
    -------
    numpy.ndarray
        ``dh0`` ``(B, H)``.
    """
    T, B, H = d_out.shape
    dh_next = dh_T.copy()  # (B, H)
    h_prev = np.empty((B, H), h.dtype)  # (B, H)
    dh = np.empty((B, H), h.dtype)  # (B, H)
    drh = np.empty((B, H), h.dtype)  # (B, H)
    for t in range(T - 1, -1, -1):
        to_h0 = t > 0 or state_grad  # carry the gradient on to h_{t-1}
        masked_previous(h0, h, keep, t, h_prev)
        for b in numba.prange(B):
            gate, grad = gates[t, b], da_x[t, b]
            r_t, z_t, n_t = gate[:H], gate[H : 2 * H], gate[2 * H :]
            dr_a, dz_a, dn_a = grad[:H], grad[H : 2 * H], grad[2 * H :]
            dh_b, dy, dh_n, hp = dh[b], d_out[t, b], dh_next[b], h_prev[b]
            for j in range(H):
                dh_b[j] = dy[j] + dh_n[j]

            # h_t = (1 - z) n + z h_{t-1}, then through tanh and sigma.
            for j in range(H):
                dn_a[j] = dh_b[j] * (1.0 - z_t[j]) * (1.0 - n_t[j] * n_t[j])
                dz_a[j] = dh_b[j] * (hp[j] - n_t[j]) * z_t[j] * (1.0 - z_t[j])
            for j in range(H):
                dh_n[j] = dh_b[j] * z_t[j]  # the direct path to h_{t-1}

            if not cho:
                # n_a = ... + r * hn: to r through hn, to the recurrent side times r.
                hn_t, dh_side = hn[t, b], da_h[t, b]
                for j in range(H):
                    dr_a[j] = dn_a[j] * hn_t[j] * r_t[j] * (1.0 - r_t[j])
                for k in range(2 * H):
                    dh_side[k] = grad[k]
                dhn = dh_side[2 * H :]
                for j in range(H):
                    dhn[j] = dn_a[j] * r_t[j]

        if cho:
            # n_a = ... + W_hn (r * h_{t-1}): drh = dn_a W_hn, to r and to h_{t-1}.
            gemm_split(da_x[t, :, 2 * H :], W_hh[2 * H :], drh, False, 0.0)
            for b in numba.prange(B):
                r_t, dr_a = gates[t, b, :H], da_x[t, b, :H]
                drh_b, hp, dh_n = drh[b], h_prev[b], dh_next[b]
                for j in range(H):
                    dr_a[j] = drh_b[j] * hp[j] * r_t[j] * (1.0 - r_t[j])
                for j in range(H):
                    dh_n[j] += drh_b[j] * r_t[j]
            if to_h0:
                gemm_split(da_x[t, :, : 2 * H], W_hh[: 2 * H], dh_next, False, 1.0)
        elif to_h0:
            gemm_split(da_h[t], W_hh, dh_next, False, 1.0)  # dh_{t-1} += da_h W_hh

        # A reset before step t cut the state: no gradient crosses it.
        for b in numba.prange(B):
            k = keep[t, b]
            dh_n = dh_next[b]
            for j in range(H):
                dh_n[j] *= k
    return dh_next


def gru_forward_fast(x, h0, keep, params, variant="torch", projected=False):
    """Numba-backed equivalent of `rnnrec.cells.gru.gru_forward`.

    Parameters
    ----------
    x, h0, keep, params, variant
        As in `rnnrec.cells.gru.gru_forward`.

    Returns
    -------
    h, h_T, cache
        As in `rnnrec.cells.gru.gru_forward`.
    """
    H = h0.shape[1]
    b_hh = params["bias_hh"]
    bias = params["bias_ih"].copy()
    bias[: 2 * H] += b_hh[: 2 * H]  # r and z: both biases act alike
    a = input_projection(x, input_weights(params, projected), bias)
    T, B, _ = x.shape
    h = np.empty((T, B, H), x.dtype)  # (T, B, H)
    hn = np.empty_like(h)  # (T, B, H)
    cho = variant == "cho"
    W_hh = np.ascontiguousarray(params["weight_hh"])  # (3H, H), no copy if C-order
    gru_forward_loop(a, h0, keep, W_hh, b_hh[2 * H :], cho, h, hn, work=B * 3 * H)
    return h, h[-1].copy(), GRUCache(x, h0, keep, a, hn, h)


def gru_backward_fast(
    d_out, dh_T, cache, params, variant="torch", projected=False, state_grad=True
):
    """Numba-backed equivalent of `rnnrec.cells.gru.gru_backward`.

    Parameters
    ----------
    d_out, dh_T, cache, params, variant
        As in `rnnrec.cells.gru.gru_backward`.
    state_grad : bool, default True
        Compute ``dh0``. Without it the first step's product ``da_h W_hh``,
        which reaches only ``h0``, is skipped (a sixth of the layer's products
        when every call runs one step, as in the recommender) and ``dh0`` is
        None.

    Returns
    -------
    dx, dh0, grads
        As in `rnnrec.cells.gru.gru_backward`.
    """
    T, B, H = cache.h.shape
    cho = variant == "cho"
    da_x = np.empty_like(cache.gates)  # (T, B, 3H)
    da_h = da_x if cho else np.empty_like(da_x)  # (T, B, 3H)
    dh0 = gru_backward_loop(
        d_out, dh_T, cache.gates, cache.hn, cache.h, cache.h0, cache.keep,
        params["weight_hh"], cho, state_grad, da_x, da_h, work=B * 3 * H,
    )  # fmt: skip
    dh0 = dh0 if state_grad else None
    dx, dW_ih, db_ih = input_gradients(da_x, cache.x, input_weights(params, projected))

    # The recurrent side: W_hr and W_hz see h_{t-1}; W_hn sees h_{t-1} ("torch")
    # or r * h_{t-1} ("cho").
    h_prev = previous_states(cache.h0, cache.h, cache.keep)  # (T*B, H)
    da_h2 = da_h.reshape(T * B, 3 * H)
    if cho:
        h_in_n = h_prev * cache.gates[:, :, :H].reshape(T * B, H)
        dW_hh = np.concatenate(
            [matmul(da_h2[:, : 2 * H].T, h_prev), matmul(da_h2[:, 2 * H :].T, h_in_n)]
        )  # (3H, H)
    else:
        dW_hh = matmul(da_h2.T, h_prev)  # (3H, H), one product for all three gates
    return dx, dh0, assemble_grads(dW_ih, dW_hh, db_ih, da_h2.sum(axis=0))

"""One step of a recurrent layer, linearised: its Jacobian applied both ways.

A layer's forward pass is a chain of steps ``s_t = F_t(s_{t-1})``, where the state
``s_t`` is ``h_t`` (LSTM: the pair ``(h_t, c_t)``) and ``F_t`` also reads the input
``x_t``. Every question about gradients through time is a question about the step
Jacobians ``J_t = ds_t / ds_{t-1}`` and their products::

    ds_T / ds_t = J_T J_{T-1} ... J_{t+1}

`StepJacobians` applies one ``J_t`` to vectors, at the states of one forward pass,
in the two directions:

* ``vjp(t, u) = J_t^T u`` (vector-Jacobian product, reverse mode). This is the
  cells' own step backward (`rnnrec.cells.rnn.rnn_step_backward` and its LSTM and
  GRU siblings), the hand-written BPTT itself, called with the upstream gradient
  ``u``. The parameter gradients it also returns are discarded.
* ``jvp(t, v) = J_t v`` (Jacobian-vector product, forward mode). The tangent of
  every forward equation, written out below per cell. BPTT never needs it; the
  power iteration of `rnnrec.dynamics.flow.jacobian_norms` does, and the explicit
  Jacobians of the tests are built from it.

State vectors are flat: ``(..., B, H)``, or ``(..., B, 2H)`` for the LSTM, whose
``[:H]`` is the ``h`` part and ``[H:]`` the ``c`` part. Any leading axes are a
stack of independent vectors, all at the same states (the power iteration pushes
one vector per start step through the chain at once).

Step ``t`` here is the 0-based index into the cache: it reads the state after
``t`` steps (``h_0`` for t = 0) and makes the state after ``t + 1``. A reset
before step ``t`` multiplies the incoming state by ``keep[t]``, and so both
products.
"""

from __future__ import annotations

import numpy as np

from rnnrec.cells.base import RecurrentLayer
from rnnrec.cells.gru import gru_step_backward
from rnnrec.cells.lstm import LSTM, lstm_step_backward
from rnnrec.cells.rnn import RNN, rnn_step_backward


class StepJacobians:
    """The step Jacobians ``J_t = ds_t/ds_{t-1}`` of one forward pass.

    Parameters
    ----------
    layer : RNN, LSTM or GRU
        The layer that ran the forward pass; its current ``params`` are used.
    cache : NamedTuple
        The cache its ``forward`` returned (either backend).

    Attributes
    ----------
    T, B, H : int
        Steps, batch rows and hidden size of the forward pass.
    state_size : int
        Width of a state vector: H, or 2H for the LSTM (``[h, c]``).

    Examples
    --------
    The products are transposes of each other: ``<u, J v> = <J^T u, v>``.

    >>> import numpy as np
    >>> from rnnrec import GRU
    >>> layer = GRU(2, 3, seed=0, backend="numpy")
    >>> _, _, cache = layer.forward(np.ones((4, 1, 2)))
    >>> jac = StepJacobians(layer, cache)
    >>> u, v = np.array([[1.0, 0, 0]]), np.array([[0, 1.0, 0]])
    >>> bool(np.isclose(np.sum(u * jac.jvp(2, v)), np.sum(jac.vjp(2, u) * v)))
    True
    """

    def __init__(self, layer, cache):
        if not isinstance(layer, RecurrentLayer) or type(layer).cell not in (
            "rnn",
            "lstm",
            "gru",
        ):
            raise TypeError(
                f"layer must be an rnnrec RNN, LSTM or GRU, got {type(layer).__name__}"
            )
        if not isinstance(cache, layer.cache_type):
            raise TypeError(
                f"cache must be the {layer.cache_type.__name__} returned by the "
                f"layer's forward, got {type(cache).__name__}"
            )
        T, B, _ = cache.x.shape
        H = layer.hidden_size
        if cache.h.shape != (T, B, H):
            raise ValueError(
                f"cache holds hidden states of shape {cache.h.shape}, but the layer "
                f"has hidden_size {H}; pass the cache of this layer's forward"
            )
        self.layer, self.cache = layer, cache
        self.T, self.B, self.H = T, B, H
        self.state_size = 2 * H if isinstance(layer, LSTM) else H
        self.W_hh = layer.params["weight_hh"]

    # -- helpers --------------------------------------------------------------

    def _check_vector(self, t, vector, name):
        if not 0 <= t < self.T:
            raise ValueError(f"t must be a step index in [0, {self.T}), got {t}")
        shape = (self.B, self.state_size)
        if not isinstance(vector, np.ndarray) or vector.shape[-2:] != shape:
            got = vector.shape if isinstance(vector, np.ndarray) else type(vector)
            raise ValueError(
                f"{name} must be an array of shape (..., {shape[0]}, {shape[1]}), "
                f"got {got}"
            )
        return vector

    def previous_state(self, t):
        """Return the state that step ``t`` reads, after the reset mask.

        Parameters
        ----------
        t : int
            Step index in ``[0, T)``.

        Returns
        -------
        numpy.ndarray
            ``h_prev`` ``(B, H)``; for the LSTM ``[h_prev, c_prev]`` ``(B, 2H)``.
        """
        c = self.cache
        keep = c.keep[t, :, None]
        h_prev = (c.h[t - 1] if t > 0 else c.h0) * keep  # (B, H)
        if isinstance(self.layer, LSTM):
            c_prev = (c.c[t - 1] if t > 0 else c.c0) * keep  # (B, H)
            return np.concatenate([h_prev, c_prev], axis=-1)  # (B, 2H)
        return h_prev

    # -- reverse mode ----------------------------------------------------------

    def vjp(self, t, u):
        """Return ``J_t^T u``, the gradient at ``s_{t-1}`` given ``u`` at ``s_t``.

        The cell's own step backward computes it; a stack of N vectors is run as
        one batch of ``N*B`` rows, each row seeing the cached values of its own
        batch row.

        Parameters
        ----------
        t : int
            Step index in ``[0, T)``.
        u : numpy.ndarray
            ``(..., B, H)`` (LSTM: ``(..., B, 2H)``) gradient with respect to
            the state after step ``t``.

        Returns
        -------
        numpy.ndarray
            Of the same shape: the gradient with respect to the state before step ``t``
            (before the reset mask, so zero in rows that were reset).
        """
        u = self._check_vector(t, u, "u")
        lead, (B, width), H = u.shape[:-2], u.shape[-2:], self.H
        N = int(np.prod(lead, dtype=np.int64))  # vectors in the stack
        u = u.reshape(N * B, width)
        c, layer = self.cache, self.layer

        def tiled(a):
            return np.tile(a, (N, 1))  # row n*B + b holds a[b]

        prev = tiled(self.previous_state(t))
        # W_ih=None: the step backward skips the input side, whose gradient we drop.
        if isinstance(layer, RNN):
            _, du_prev, *_ = rnn_step_backward(
                u, None, prev, tiled(c.h[t]), None, self.W_hh, layer.nonlinearity
            )
        elif isinstance(layer, LSTM):
            _, dh_prev, dc_prev, *_ = lstm_step_backward(
                u[:, :H],
                u[:, H:],
                None,
                prev[:, :H],
                prev[:, H:],
                tiled(c.c[t]),
                tiled(c.gates[t]),
                None,
                self.W_hh,
            )
            du_prev = np.concatenate([dh_prev, dc_prev], axis=1)
        else:
            _, du_prev, *_ = gru_step_backward(
                u,
                None,
                prev,
                tiled(c.gates[t]),
                tiled(c.hn[t]),
                None,
                self.W_hh,
                layer.variant,
            )
        # The reset multiplied the incoming state by keep[t].
        du_prev = du_prev.reshape(N, B, width) * c.keep[t, :, None]
        return du_prev.reshape(*lead, B, width)

    # -- forward mode ----------------------------------------------------------

    def jvp(self, t, v):
        """Return ``J_t v``, the tangent of ``s_t`` for a tangent ``v`` of ``s_{t-1}``.

        Parameters
        ----------
        t : int
            Step index in ``[0, T)``.
        v : numpy.ndarray
            ``(..., B, H)`` (LSTM: ``(..., B, 2H)``) tangent of the state before
            step ``t``.

        Returns
        -------
        numpy.ndarray
            Of the same shape: the tangent of the state after step ``t``.
        """
        v = self._check_vector(t, v, "v")
        v = v * self.cache.keep[t, :, None]  # the reset, before anything else
        if isinstance(self.layer, RNN):
            return self._rnn_jvp(t, v)
        if isinstance(self.layer, LSTM):
            return self._lstm_jvp(t, v)
        return self._gru_jvp(t, v)

    def _rnn_jvp(self, t, dh_prev):
        # h_t = phi(a_t), a_t = ... + W_hh h_prev:  dh_t = phi'(a_t) * (W_hh dh_prev)
        h_t = self.cache.h[t]
        da = dh_prev @ self.W_hh.T
        if self.layer.nonlinearity == "tanh":
            return (1 - h_t * h_t) * da
        return (h_t > 0) * da

    def _lstm_jvp(self, t, v):
        H, c = self.H, self.cache
        dh_prev, dc_prev = v[..., :H], v[..., H:]
        c_prev = self.previous_state(t)[:, H:]
        i_t, f_t, g_t, o_t = np.split(c.gates[t], 4, axis=-1)
        tanh_c = np.tanh(c.c[t])

        # Tangents of the pre-activations, then of the gates.
        da = dh_prev @ self.W_hh.T  # (..., B, 4H)
        di = i_t * (1 - i_t) * da[..., :H]
        df = f_t * (1 - f_t) * da[..., H : 2 * H]
        dg = (1 - g_t * g_t) * da[..., 2 * H : 3 * H]
        do = o_t * (1 - o_t) * da[..., 3 * H :]

        # c_t = f c_prev + i g;  h_t = o tanh(c_t)
        dc = df * c_prev + f_t * dc_prev + di * g_t + i_t * dg
        dh = do * tanh_c + o_t * (1 - tanh_c * tanh_c) * dc
        return np.concatenate([dh, dc], axis=-1)

    def _gru_jvp(self, t, dh_prev):
        H, c = self.H, self.cache
        h_prev = self.previous_state(t)
        r_t, z_t, n_t = np.split(c.gates[t], 3, axis=-1)
        W_hh = self.W_hh

        # r and z: sigma of a pre-activation whose tangent is W_h{r,z} dh_prev.
        da_rz = dh_prev @ W_hh[: 2 * H].T  # (..., B, 2H)
        dr = r_t * (1 - r_t) * da_rz[..., :H]
        dz = z_t * (1 - z_t) * da_rz[..., H:]

        # n = tanh(... + r * hn), hn = W_hn h_prev + b_hn         ("torch")
        # n = tanh(... + hn),     hn = W_hn (r * h_prev) + b_hn   ("cho")
        if self.layer.variant == "torch":
            dn_a = dr * c.hn[t] + r_t * (dh_prev @ W_hh[2 * H :].T)
        else:
            dn_a = (dr * h_prev + r_t * dh_prev) @ W_hh[2 * H :].T
        dn = (1 - n_t * n_t) * dn_a

        # h_t = (1 - z) n + z h_prev
        return (1 - z_t) * dn + z_t * dh_prev + dz * (h_prev - n_t)

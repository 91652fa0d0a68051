"""The GRU in its two variants: step forward, step backward, sequence, BPTT.

Equations, for one step with a batch of B rows; gates stacked r, z, n as in
PyTorch, so ``W_ih = [W_ir; W_iz; W_in]`` is ``(3H, D)`` and ``W_hh`` is
``(3H, H)``::

    r_t = sigma(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)          reset gate
    z_t = sigma(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)          update gate

    variant "torch" (PyTorch, cuDNN): reset applied after the product
    n_t = tanh(W_in x_t + b_in + r_t * (W_hn h_{t-1} + b_hn))

    variant "cho" (Cho et al. 2014, the original GRU4Rec): reset applied before
    n_t = tanh(W_in x_t + b_in + W_hn (r_t * h_{t-1}) + b_hn)

    h_t = (1 - z_t) * n_t + z_t * h_{t-1}                        (B, H)

The variants differ only in where ``r_t`` meets the recurrent product. In
"torch" the product ``W_hn h_{t-1}`` does not depend on ``r_t``, so all three
gates' recurrent products are one matrix product; in "cho" the candidate's product
must wait for ``r_t``. With equal weights the two compute different functions.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import numpy as np

from rnnrec._validation import check_choice
from rnnrec.cells.activations import sigmoid
from rnnrec.cells.base import RecurrentLayer, input_term, input_term_backward

VARIANTS = ("torch", "cho")


def gru_step_forward(x_t, h_prev, W_ih, W_hh, b_ih, b_hh, variant="torch"):
    """One GRU step (equations in the module docstring).

    Parameters
    ----------
    x_t : numpy.ndarray
        Input ``(B, D)``.
    h_prev : numpy.ndarray
        Previous hidden state ``(B, H)``.
    W_ih, W_hh : numpy.ndarray
        ``(3H, D)`` and ``(3H, H)``, gates stacked r, z, n.
    b_ih, b_hh : numpy.ndarray
        ``(3H,)``.
    variant : {"torch", "cho"}
        Where the reset gate is applied.

    Returns
    -------
    h_t : numpy.ndarray
        ``(B, H)``.
    gates : numpy.ndarray
        ``[r_t, z_t, n_t]`` after their nonlinearities ``(B, 3H)``.
    hn : numpy.ndarray
        The candidate's recurrent term ``(B, H)``: ``W_hn h_{t-1} + b_hn``
        ("torch") or ``W_hn (r_t * h_{t-1}) + b_hn`` ("cho").
    """
    H = h_prev.shape[1]
    ax = input_term(x_t, W_ih, b_ih)  # (B, 3H)
    if variant == "torch":
        ah = h_prev @ W_hh.T + b_hh  # (B, 3H)
        rz = sigmoid(ax[:, : 2 * H] + ah[:, : 2 * H])
        r_t, z_t = rz[:, :H], rz[:, H:]
        hn = ah[:, 2 * H :]
        n_t = np.tanh(ax[:, 2 * H :] + r_t * hn)
    else:
        ah = h_prev @ W_hh[: 2 * H].T + b_hh[: 2 * H]  # (B, 2H)
        rz = sigmoid(ax[:, : 2 * H] + ah)
        r_t, z_t = rz[:, :H], rz[:, H:]
        hn = (r_t * h_prev) @ W_hh[2 * H :].T + b_hh[2 * H :]  # (B, H)
        n_t = np.tanh(ax[:, 2 * H :] + hn)
    h_t = (1 - z_t) * n_t + z_t * h_prev
    return h_t, np.concatenate([r_t, z_t, n_t], axis=1), hn


def gru_step_backward(dh_t, x_t, h_prev, gates, hn, W_ih, W_hh, variant="torch"):
    """Backward pass of `gru_step_forward`.

    With ``dn_a``, ``dr_a``, ``dz_a`` the gradients of the gates'
    pre-activations::

        dn = dh (1 - z)      dz = dh (h_prev - n)      dh_prev = dh z + ...
        dn_a = dn (1 - n^2)                       dz_a = dz z (1 - z)
        "torch": dr = dn_a * hn                   dhn = dn_a * r
        "cho":   d(r h_prev) = dn_a W_hn          dr = d(r h_prev) * h_prev
                 dh_prev += d(r h_prev) * r
        dr_a = dr r (1 - r)

    The input side sees ``da_x = [dr_a, dz_a, dn_a]``; the recurrent side sees
    ``[dr_a, dz_a, dhn]`` ("torch") or ``[dr_a, dz_a, dn_a]`` with ``r * h_prev``
    as the candidate's input ("cho").

    Parameters
    ----------
    dh_t : numpy.ndarray
        Gradient with respect to ``h_t`` ``(B, H)``.
    x_t : numpy.ndarray
        The step's input ``(B, D)``.
    h_prev : numpy.ndarray
        Previous state ``(B, H)``.
    gates : numpy.ndarray
        ``[r, z, n]`` from the forward step ``(B, 3H)``.
    hn : numpy.ndarray
        The candidate's recurrent term from the forward step ``(B, H)``.
    W_ih, W_hh : numpy.ndarray
        ``(3H, D)`` and ``(3H, H)``.
    variant : {"torch", "cho"}
        Where the reset gate is applied.

    Returns
    -------
    tuple of numpy.ndarray
        ``dx_t, dh_prev, dW_ih, dW_hh, db_ih, db_hh``.
    """
    H = h_prev.shape[1]
    r_t, z_t, n_t = np.split(gates, 3, axis=1)

    # h_t = (1 - z) n + z h_prev
    dn = dh_t * (1 - z_t)
    dz = dh_t * (h_prev - n_t)
    dh_prev = dh_t * z_t

    # Through tanh and sigma.
    dn_a = dn * (1 - n_t * n_t)
    dz_a = dz * z_t * (1 - z_t)

    if variant == "torch":
        # n_a = ... + r * hn, hn = W_hn h_prev + b_hn
        dr = dn_a * hn
        dhn = dn_a * r_t
    else:
        # n_a = ... + W_hn (r * h_prev) + b_hn
        drh = dn_a @ W_hh[2 * H :]  # (B, H)
        dr = drh * h_prev
        dh_prev = dh_prev + drh * r_t
        dhn = dn_a
    dr_a = dr * r_t * (1 - r_t)

    # Input side.
    da_x = np.concatenate([dr_a, dz_a, dn_a], axis=1)  # (B, 3H)
    dx_t, dW_ih = input_term_backward(da_x, x_t, W_ih)  # (B, D), (3H, D)
    db_ih = da_x.sum(axis=0)  # (3H,)

    # Recurrent side.
    da_rz = da_x[:, : 2 * H]
    dh_prev = dh_prev + da_rz @ W_hh[: 2 * H]
    if variant == "torch":
        dh_prev = dh_prev + dhn @ W_hh[2 * H :]
        h_in_n = h_prev
    else:
        h_in_n = r_t * h_prev
    dW_hh = np.concatenate([da_rz.T @ h_prev, dhn.T @ h_in_n])  # (3H, H)
    db_hh = np.concatenate([da_rz.sum(axis=0), dhn.sum(axis=0)])  # (3H,)
    return dx_t, dh_prev, dW_ih, dW_hh, db_ih, db_hh


class GRUCache(NamedTuple):
    """What the GRU's backward pass needs from its forward pass.

    Attributes
    ----------
    x : numpy.ndarray
        Inputs ``(T, B, D)``.
    h0 : numpy.ndarray
        Initial state ``(B, H)``.
    keep : numpy.ndarray
        ``(T, B)``: 0 where the state was reset before step t, else 1.
    gates : numpy.ndarray
        ``[r, z, n]`` after their nonlinearities ``(T, B, 3H)``.
    hn : numpy.ndarray
        The candidate's recurrent term ``(T, B, H)`` (see `gru_step_forward`).
    h : numpy.ndarray
        Hidden states ``(T, B, H)``.
    projected : bool
        Whether ``x`` held input projections (see `RecurrentLayer.forward`).
    owner : object
        Token of the layer that made the cache.
    """

    x: np.ndarray
    h0: np.ndarray
    keep: np.ndarray
    gates: np.ndarray
    hn: np.ndarray
    h: np.ndarray
    projected: bool = False
    owner: object = None


def gru_forward(x, h0, keep, params, variant="torch", projected=False):
    """Run the GRU over T steps (NumPy reference).

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
    variant : {"torch", "cho"}
        Where the reset gate is applied.

    Returns
    -------
    h : numpy.ndarray
        ``(T, B, H)``.
    h_T : numpy.ndarray
        Final state ``(B, H)``.
    cache : GRUCache
        For `gru_backward`.
    """
    W_ih = None if projected else params["weight_ih"]
    W_hh = params["weight_hh"]
    b_ih, b_hh = params["bias_ih"], params["bias_hh"]
    T, B, _ = x.shape
    H = h0.shape[1]
    h = np.empty((T, B, H), x.dtype)  # (T, B, H)
    hn = np.empty((T, B, H), x.dtype)  # (T, B, H)
    gates = np.empty((T, B, 3 * H), x.dtype)  # (T, B, 3H)
    h_prev = h0
    for t in range(T):
        h_prev = h_prev * keep[t, :, None]
        h[t], gates[t], hn[t] = gru_step_forward(
            x[t], h_prev, W_ih, W_hh, b_ih, b_hh, variant
        )
        h_prev = h[t]
    return h, h[-1].copy(), GRUCache(x, h0, keep, gates, hn, h)


def gru_backward(d_out, dh_T, cache, params, variant="torch", projected=False):
    """Backpropagation through time for `gru_forward` (NumPy reference).

    Parameters
    ----------
    d_out : numpy.ndarray
        ``(T, B, H)``.
    dh_T : numpy.ndarray
        Gradient with respect to the final state ``(B, H)``.
    cache : GRUCache
        From `gru_forward`.
    params : dict
        The parameters the forward pass used.
    variant : {"torch", "cho"}
        Where the reset gate is applied.

    Returns
    -------
    dx : numpy.ndarray
        ``(T, B, D)``.
    dh0 : numpy.ndarray
        ``(B, H)``.
    grads : dict
        Gradients keyed like ``params``.
    """
    x, keep, h = cache.x, cache.keep, cache.h
    W_ih = None if projected else params["weight_ih"]
    W_hh = params["weight_hh"]
    grads = {
        name: np.zeros_like(value)
        for name, value in params.items()
        if not (projected and name == "weight_ih")
    }
    dx = np.empty_like(x)  # (T, B, D)
    dh_next = dh_T
    for t in reversed(range(len(x))):
        h_prev = (h[t - 1] if t > 0 else cache.h0) * keep[t, :, None]
        dh_t = d_out[t] + dh_next
        dx[t], dh_prev, dW_ih, dW_hh, db_ih, db_hh = gru_step_backward(
            dh_t, x[t], h_prev, cache.gates[t], cache.hn[t], W_ih, W_hh, variant
        )
        if dW_ih is not None:
            grads["weight_ih"] += dW_ih
        grads["weight_hh"] += dW_hh
        grads["bias_ih"] += db_ih
        grads["bias_hh"] += db_hh

        # A reset zeroed h_prev before step t: no gradient crosses it.
        dh_next = dh_prev * keep[t, :, None]
    return dx, dh_next, grads


class GRU(RecurrentLayer):
    """Gated recurrent unit layer, in PyTorch's or Cho et al.'s variant.

    Equations (gates stacked r, z, n, as in ``torch.nn.GRU``)::

        r = sigma(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)
        z = sigma(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)
        "torch": n = tanh(W_in x_t + b_in + r * (W_hn h_{t-1} + b_hn))
        "cho":   n = tanh(W_in x_t + b_in + W_hn (r * h_{t-1}) + b_hn)
        h_t = (1 - z) * n + z * h_{t-1}

    Parameters
    ----------
    input_size : int
        D, the size of each input vector.
    hidden_size : int
        H, the size of the hidden state.
    dtype : {np.float64, np.float32}, default np.float64
        Dtype of parameters, inputs and outputs; inputs are never cast silently.
    seed : None, int or numpy.random.Generator
        Seed of the initialisation.
    backend : {"numba", "numpy"}, default "numba"
        ``"numpy"`` runs the readable reference loops; ``"numba"`` the compiled
        core, which computes the same numbers.
    init : {"pytorch", "glorot", "orthogonal"}, default "pytorch"
        Initialisation scheme, see `rnnrec.initializers.init_params`.
    variant : {"torch", "cho"}, default "torch"
        ``"torch"`` applies the reset gate after the recurrent product, as
        PyTorch and cuDNN do; ``"cho"`` applies it before, as Cho et al. (2014)
        and the original GRU4Rec do.

    Attributes
    ----------
    params : dict of str to numpy.ndarray
        ``weight_ih (3H, D)``, ``weight_hh (3H, H)``, ``bias_ih (3H,)``,
        ``bias_hh (3H,)``, as in ``torch.nn.GRU`` without ``_l0``.

    Examples
    --------
    A reset mask starts a new sequence in row 1 at step 2:

    >>> import numpy as np
    >>> from rnnrec import GRU
    >>> layer = GRU(3, 4, seed=0, variant="cho")
    >>> reset = np.zeros((4, 2), dtype=bool)
    >>> reset[2, 1] = True
    >>> out, h_T, cache = layer.forward(np.ones((4, 2, 3)), reset=reset)
    >>> bool(np.allclose(out[2, 1], out[0, 1]))
    True
    """

    n_gates = 3
    cell = "gru"
    cache_type = GRUCache

    def __init__(
        self,
        input_size,
        hidden_size,
        *,
        dtype=np.float64,
        seed=None,
        backend="numba",
        init="pytorch",
        variant="torch",
    ):
        self.variant = check_choice(variant, "variant", VARIANTS)
        super().__init__(
            input_size,
            hidden_size,
            dtype=dtype,
            seed=seed,
            backend=backend,
            init=init,
        )

    def _extra_repr(self):
        return f", variant={self.variant!r}"

    def _skips_state_grad(self):
        return self.backend == "numba"

    def _functions(self):
        if self.backend == "numba":
            from rnnrec.kernels.gru import gru_backward_fast, gru_forward_fast

            forward, backward = gru_forward_fast, gru_backward_fast
        else:
            forward, backward = gru_forward, gru_backward
        return (
            partial(forward, variant=self.variant),
            partial(backward, variant=self.variant),
        )

"""Gradients through time: their norms, the Jacobians behind them, and saturation.

For a loss ``L`` on the last step of a sequence, the chain rule gives the gradient
with respect to every earlier hidden state::

    dL/dh_t = (dh_T/dh_t)^T dL/dh_T,      dh_T/dh_t = J_T J_{T-1} ... J_{t+1}

with ``J_s`` the step Jacobians of `rnnrec.dynamics.linearize`. For a tanh RNN
``J_s = diag(1 - h_s^2) W_hh``, so ``||dh_T/dh_t|| <= ||W_hh||^(T-t)``: below a
spectral norm of 1 the gradient vanishes geometrically. The LSTM's cell path
``c_{t-1} -> c_t`` is scaled only by the forget gate, which is how it keeps
gradients alive over long distances.

Everything here is exact, from the hand-written BPTT and its forward-mode twin,
with no finite differences:

* `gradient_flow`: ``||dL/dh_t||`` for every t, by one backward sweep;
* `jacobian_norms`: the spectral norm of ``dh_T/dh_t`` for every t, by power
  iteration with the backward pass as the vector-Jacobian product;
* `explicit_jacobians`: the matrices ``dh_T/dh_t`` themselves, for small H;
* `saturation`: the share of gate and tanh values that sit where their slope is
  nearly zero, step by step.

Time is indexed as in the equations: ``t = 0`` is the initial state ``h_0`` and
``t = T`` the last state, so arrays over t have ``T + 1`` entries, and the
distance of state ``t`` from the loss is ``T - t``. For the LSTM, ``dh_T/dh_t``
is taken with the cell state ``c_t`` held fixed: the ``h`` block of the Jacobian
of the whole state.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np

from rnnrec._validation import as_rng, check_array
from rnnrec.cells.lstm import LSTM
from rnnrec.cells.rnn import RNN
from rnnrec.dynamics.linearize import StepJacobians


def _forward(layer, x, state):
    """Run the layer and return its step Jacobians (which hold the cache)."""
    if not hasattr(layer, "cache_type"):
        raise TypeError(
            f"layer must be an rnnrec RNN, LSTM or GRU, got {type(layer).__name__}"
        )
    _, _, cache = layer.forward(x, state)
    return StepJacobians(layer, cache)


def _normalise(a):
    """Scale the vectors on the last axis to unit length; zero vectors stay zero."""
    norm = np.linalg.norm(a, axis=-1)
    safe = np.where(norm > 0, norm, 1)
    return a / safe[..., None], norm


def _with_zero_cell(jac, v):
    """Widen h vectors ``(..., B, H)`` to state vectors, with zero in the c part."""
    if jac.state_size == jac.H:
        return v
    return np.concatenate([v, np.zeros_like(v)], axis=-1)


# -- gradient flow ---------------------------------------------------------------


class GradientFlow(NamedTuple):
    """The gradient of a last-step loss with respect to every hidden state.

    Attributes
    ----------
    dh : numpy.ndarray
        ``(T+1, B, H)``: ``dh[t] = dL/dh_t`` for ``t = 0 .. T``; ``dh[T]`` is the
        gradient the loss puts on the last state.
    dc : numpy.ndarray or None
        LSTM only: ``(T+1, B, H)``, ``dL/dc_t`` (``dc[T]`` is zero: the loss reads
        ``h_T`` only).
    norm : numpy.ndarray
        ``(T+1, B)``: ``||dL/dh_t||`` for each batch row.
    """

    dh: np.ndarray
    dc: np.ndarray | None
    norm: np.ndarray

    @property
    def distance(self):
        """``(T+1,)`` distance ``T - t`` of each state from the loss."""
        return np.arange(len(self.norm) - 1, -1, -1)


def gradient_flow(layer, x, d_last=None, *, state=None, seed=None):
    """Return ``dL/dh_t`` for every t, for a loss on the last step, by BPTT.

    Any loss that reads only the last state has ``dL/dh_T = g`` for some ``g``,
    and one backward sweep through the step Jacobians gives the rest::

        dL/dh_T = g,        dL/ds_{t-1} = J_t^T dL/ds_t        t = T .. 1

    Each ``J_t^T`` product is the cell's own step backward (see `StepJacobians`):
    these are the numbers BPTT computes, not an approximation of them.

    Parameters
    ----------
    layer : RNN, LSTM or GRU
        The layer, with its current parameters.
    x : numpy.ndarray
        Inputs ``(T, B, D)`` of the layer's dtype.
    d_last : numpy.ndarray, optional
        ``g = dL/dh_T`` ``(B, H)``. By default a random unit vector per row, so
        that ``norm[T]`` is 1 and ``norm[t]`` is the gain over ``T - t`` steps.
    state : numpy.ndarray or tuple, optional
        Initial state, as for ``layer.forward``; zeros if omitted.
    seed : None, int or numpy.random.Generator
        Seed of the default ``d_last``.

    Returns
    -------
    GradientFlow
        ``dh (T+1, B, H)``, ``dc`` (LSTM) and ``norm (T+1, B)``.

    Examples
    --------
    >>> import numpy as np
    >>> from rnnrec import RNN
    >>> layer = RNN(2, 4, seed=0, backend="numpy")
    >>> flow = gradient_flow(layer, np.zeros((10, 1, 2)), seed=0)
    >>> flow.norm.shape, float(flow.norm[-1, 0])
    ((11, 1), 1.0)
    """
    jac = _forward(layer, x, state)
    T, B, H = jac.T, jac.B, jac.H
    if d_last is None:
        g, _ = _normalise(as_rng(seed).standard_normal((B, H)).astype(layer.dtype))
    else:
        g = check_array(d_last, "d_last", shape=(B, H), dtype=layer.dtype)

    ds = np.empty((T + 1, B, jac.state_size), layer.dtype)  # (T+1, B, H or 2H)
    ds[T] = _with_zero_cell(jac, g)
    for t in reversed(range(T)):
        ds[t] = jac.vjp(t, ds[t + 1])
    dh = ds[..., :H]
    dc = ds[..., H:] if isinstance(layer, LSTM) else None
    return GradientFlow(dh=dh, dc=dc, norm=np.linalg.norm(dh, axis=-1))


# -- Jacobians ---------------------------------------------------------------------


def _forward_sweep(jac, v):
    """Return ``(dh_T/dh_j) v[j]`` for every start j, by forward-mode tangents.

    ``v`` is ``(T, ..., B, H)``, row ``j`` a tangent of ``h_j``. The tangent that
    starts at ``h_j`` joins the sweep at step j; all live tangents cross each step
    together.
    """
    T, H = jac.T, jac.H
    z = np.zeros((*v.shape[:-1], jac.state_size), v.dtype)  # (T, ..., B, H or 2H)
    for t in range(T):
        z[t, ..., :H] = v[t]
        z[: t + 1] = jac.jvp(t, z[: t + 1])
    return z[..., :H]


def _backward_sweep(jac, u):
    """Return ``(dh_T/dh_j)^T u[j]`` for every start j, by the backward pass.

    ``u`` is ``(T, ..., B, H)``, every row a gradient at ``h_T``. Row ``j`` crosses
    the steps T-1 .. j and is read off when it reaches ``h_j``.
    """
    T, H = jac.T, jac.H
    s = _with_zero_cell(jac, u)
    out = np.empty_like(u)
    for t in reversed(range(T)):
        s = jac.vjp(t, s[: t + 1])
        out[t] = s[t, ..., :H]
    return out


def explicit_jacobians(layer, x, *, state=None, mode="forward"):
    """Return the Jacobians ``dh_T/dh_t`` as matrices, for small hidden sizes.

    Column ``k`` of ``dh_T/dh_t`` is the tangent of ``h_T`` for the unit tangent
    ``e_k`` of ``h_t`` (forward mode); row ``k`` is the gradient at ``h_t`` of the
    unit gradient ``e_k`` at ``h_T`` (reverse mode, the backward pass). Both take
    H sweeps. The two share no arithmetic (forward mode runs the tangent
    equations of `StepJacobians`, reverse mode the cells' own step backward), so
    their agreement checks each against the other.

    Parameters
    ----------
    layer : RNN, LSTM or GRU
        The layer.
    x : numpy.ndarray
        Inputs ``(T, B, D)``.
    state : numpy.ndarray or tuple, optional
        Initial state; zeros if omitted.
    mode : {"forward", "reverse"}, default "forward"
        Build the matrices from Jacobian-vector or vector-Jacobian products.

    Returns
    -------
    numpy.ndarray
        ``(T+1, B, H, H)``: entry ``[t, b, i, k] = dh_T[b, i] / dh_t[b, k]``;
        ``[T]`` is the identity.
    """
    if mode not in ("forward", "reverse"):
        raise ValueError(f"mode must be 'forward' or 'reverse', got {mode!r}")
    jac = _forward(layer, x, state)
    T, B, H = jac.T, jac.B, jac.H
    basis = np.broadcast_to(np.eye(H, dtype=layer.dtype)[:, None, :], (H, B, H))
    vectors = np.broadcast_to(basis, (T, H, B, H))  # (T, H, B, H): e_k per start
    J = np.empty((T + 1, B, H, H), layer.dtype)  # (T+1, B, H, H)
    J[T] = np.eye(H)
    if mode == "forward":
        columns = _forward_sweep(jac, vectors)  # [t, k, b, :] = J_t e_k
        J[:T] = columns.transpose(0, 2, 3, 1)
    else:
        rows = _backward_sweep(jac, vectors)  # [t, k, b, :] = J_t^T e_k
        J[:T] = rows.transpose(0, 2, 1, 3)
    return J


class JacobianNorms(NamedTuple):
    """Spectral norms of ``dh_T/dh_t``, by power iteration.

    Attributes
    ----------
    norm : numpy.ndarray
        ``(T+1, B)``: ``||dh_T/dh_t||_2`` for ``t = 0 .. T`` and each batch row;
        ``norm[T]`` is 1.
    iterations : int
        Power iterations run.
    converged : numpy.ndarray
        ``(T+1, B)`` bool: the estimate changed by at most ``rtol`` (relative)
        in the last iteration.
    """

    norm: np.ndarray
    iterations: int
    converged: np.ndarray

    @property
    def distance(self):
        """``(T+1,)`` distance ``T - t`` of each state from the last one."""
        return np.arange(len(self.norm) - 1, -1, -1)


def jacobian_norms(layer, x, *, state=None, n_iter=200, rtol=None, seed=None):
    """Return the spectral norm of ``dh_T/dh_t`` for every t, by power iteration.

    For each start ``t`` and batch row, with ``J = dh_T/dh_t`` and a random unit
    ``v``, repeat::

        u = J v / ||J v||               a forward-mode sweep (tangents)
        sigma = ||J^T u||               the backward pass (BPTT) on u
        v = J^T u / sigma

    This is power iteration on ``J^T J``, whose largest eigenvalue is
    ``sigma_1^2``; it needs both products, and the backward pass supplies
    ``J^T``. ``sigma`` rises to ``sigma_1``, the largest singular value of ``J``,
    the error shrinking by ``(sigma_2 / sigma_1)^2`` per iteration. The ``T``
    Jacobians of every row are iterated together: one sweep pushes all their
    vectors through the steps, ``T (T + 1) / 2`` step products in all.

    Parameters
    ----------
    layer : RNN, LSTM or GRU
        The layer.
    x : numpy.ndarray
        Inputs ``(T, B, D)``.
    state : numpy.ndarray or tuple, optional
        Initial state; zeros if omitted.
    n_iter : int, default 200
        Most iterations; a ``RuntimeWarning`` says when that was not enough.
    rtol : float, optional
        Stop when no estimate changes by more than ``rtol`` times itself;
        default the square root of the dtype's machine epsilon.
    seed : None, int or numpy.random.Generator
        Seed of the starting vectors.

    Returns
    -------
    JacobianNorms
        ``norm (T+1, B)``, the number of iterations and the converged mask.
    """
    if isinstance(n_iter, bool) or not isinstance(n_iter, int) or n_iter < 1:
        raise ValueError(f"n_iter must be a positive integer, got {n_iter!r}")
    if rtol is None:
        rtol = float(np.sqrt(np.finfo(layer.dtype).eps))
    if not (isinstance(rtol, (int, float)) and rtol > 0):
        raise ValueError(f"rtol must be a positive number, got {rtol!r}")
    jac = _forward(layer, x, state)
    T, B, H = jac.T, jac.B, jac.H
    v, _ = _normalise(as_rng(seed).standard_normal((T, B, H)).astype(layer.dtype))
    sigma = np.zeros((T, B), layer.dtype)
    for iteration in range(1, n_iter + 1):
        u, _ = _normalise(_forward_sweep(jac, v))
        v, new = _normalise(_backward_sweep(jac, u))
        converged = np.abs(new - sigma) <= rtol * new
        sigma = new
        if iteration > 1 and converged.all():
            break
    if not converged.all():
        warnings.warn(
            f"power iteration did not converge in {n_iter} iterations for "
            f"{int((~converged).sum())} of {converged.size} Jacobians "
            f"(rtol {rtol:.1e}); raise n_iter",
            RuntimeWarning,
            stacklevel=2,
        )
    norm = np.ones((T + 1, B), layer.dtype)
    norm[:T] = sigma
    done = np.ones((T + 1, B), bool)
    done[:T] = converged
    return JacobianNorms(norm=norm, iterations=iteration, converged=done)


# -- saturation ----------------------------------------------------------------------


class Saturation(NamedTuple):
    """The share of saturated activations at every step.

    Attributes
    ----------
    gates : numpy.ndarray or None
        ``(T,)``: share of sigmoid gate values below ``gate_limit`` or above
        ``1 - gate_limit``, over batch rows, units and gates; None for the RNN.
    tanh : numpy.ndarray or None
        ``(T,)``: share of tanh outputs with ``|value| > tanh_limit``; None for
        the relu RNN.
    by_name : dict of str to numpy.ndarray
        ``(T,)`` per activation: ``"h"`` (tanh RNN); ``"i"``, ``"f"``, ``"o"``,
        ``"g"``, ``"tanh(c)"`` (LSTM); ``"r"``, ``"z"``, ``"n"`` (GRU).
    """

    gates: np.ndarray | None
    tanh: np.ndarray | None
    by_name: dict


def saturation(layer, x, *, state=None, gate_limit=0.05, tanh_limit=0.95):
    """Return, per step, the share of gate and tanh values that are saturated.

    A saturated unit passes almost no gradient: ``sigma'(a) = s (1 - s)`` is below
    ``0.0475`` once ``s < 0.05`` or ``s > 0.95``, and ``tanh'(a) = 1 - y^2`` is
    below ``0.0975`` once ``|y| > 0.95``.

    Parameters
    ----------
    layer : RNN, LSTM or GRU
        The layer.
    x : numpy.ndarray
        Inputs ``(T, B, D)``.
    state : numpy.ndarray or tuple, optional
        Initial state; zeros if omitted.
    gate_limit : float, default 0.05
        A sigmoid value counts as saturated below it or above ``1 - gate_limit``.
    tanh_limit : float, default 0.95
        A tanh value counts as saturated when its magnitude exceeds it.

    Returns
    -------
    Saturation
        Pooled shares ``gates`` and ``tanh`` ``(T,)`` and ``by_name``.
    """
    for name, value in (("gate_limit", gate_limit), ("tanh_limit", tanh_limit)):
        if not (isinstance(value, (int, float)) and 0 < value < 1):
            raise ValueError(f"{name} must be a number in (0, 1), got {value!r}")
    cache = _forward(layer, x, state).cache
    H = layer.hidden_size

    def gate_share(s):
        return np.mean((s < gate_limit) | (s > 1 - gate_limit), axis=(1, 2))

    def tanh_share(y):
        return np.mean(np.abs(y) > tanh_limit, axis=(1, 2))

    sigmoids, tanhs = {}, {}
    if isinstance(layer, RNN):
        if layer.nonlinearity == "tanh":
            tanhs["h"] = cache.h
    elif isinstance(layer, LSTM):
        i, f, g, o = np.split(cache.gates, 4, axis=-1)
        sigmoids.update(i=i, f=f, o=o)
        tanhs.update(g=g)
        tanhs["tanh(c)"] = np.tanh(cache.c)
    else:
        sigmoids.update(r=cache.gates[..., :H], z=cache.gates[..., H : 2 * H])
        tanhs.update(n=cache.gates[..., 2 * H :])

    by_name = {name: gate_share(s) for name, s in sigmoids.items()}
    by_name.update({name: tanh_share(y) for name, y in tanhs.items()})
    pooled_gates = np.mean([by_name[n] for n in sigmoids], axis=0) if sigmoids else None
    pooled_tanh = np.mean([by_name[n] for n in tanhs], axis=0) if tanhs else None
    return Saturation(gates=pooled_gates, tanh=pooled_tanh, by_name=by_name)

"""Optimizers over a dict of parameter arrays, with row-sparse updates.

An optimizer holds references to the model's parameter arrays and updates them
in place. ``step(grads)`` takes a dict keyed like the parameters; each gradient
is either

* dense: an array of the parameter's shape and dtype, or
* row-sparse: a `RowSparse` ``(rows, values)``, meaning that only the listed
  rows of the parameter have a non-zero gradient, ``values[k]`` being the
  gradient of row ``rows[k]``. This is the gradient of an item matrix
  (``(V, H)``, V in the tens of thousands) after a batch that touched a few
  thousand items; `coalesce_rows` builds one from rows that repeat.

A parameter missing from ``grads`` (or given None) is left alone.

Sparse semantics: lazy. A row-sparse gradient updates the listed rows with
exactly the dense rule applied to those rows, and nothing else: the other rows,
and every piece of optimizer state that belongs to them (momentum buffers,
moment estimates, squared-gradient sums), stay as they are. For a dense update
this differs only where the rule moves rows whose gradient is zero:

* `SGD` with momentum: a dense zero-gradient row keeps moving on its momentum,
  which decays; a sparse untouched row stands still and keeps its momentum.
* `Adam`: likewise for its moments (this is ``torch.optim.SparseAdam``'s rule);
  the step count ``t`` of the bias correction counts the steps the parameter
  took, sparse or dense, not the steps each row took.
* `AdagradM` with momentum: GRU4Rec's sparse rule; the momentum of untouched
  rows does not decay.
* weight decay, which enters through the gradient, decays only touched rows.

Without momentum and weight decay, SGD and Adagrad give the same result either
way, because a zero gradient moves nothing. State lives in the parameter's
dtype (float32 or float64), and the arithmetic stays in it.
"""

from __future__ import annotations

import math
import numbers
from typing import NamedTuple

import numpy as np

from rnnrec._validation import FLOAT_DTYPES
from rnnrec.kernels.sparse import adagrad_rows, segment_sum


class RowSparse(NamedTuple):
    """A gradient that is non-zero only in some rows of its parameter.

    Attributes
    ----------
    rows : numpy.ndarray
        ``(K,)`` integer row indices, unique, in ``[0, n_rows)``.
    values : numpy.ndarray
        ``(K, *row_shape)`` the gradient of those rows, in the parameter's dtype.
    """

    rows: np.ndarray
    values: np.ndarray

    def to_dense(self, shape):
        """Return the gradient as a dense array.

        Parameters
        ----------
        shape : tuple of int
            The parameter's shape ``(n_rows, *row_shape)``.

        Returns
        -------
        numpy.ndarray
            Zeros except in ``rows``, in the dtype of ``values``.
        """
        dense = np.zeros(shape, dtype=self.values.dtype)
        dense[self.rows] = self.values
        return dense


def coalesce_rows(rows, values):
    """Sum the gradients of repeated rows into a `RowSparse` with unique rows.

    The gradient of an embedding lookup ``E[rows]`` has one row of ``values``
    per lookup; an item looked up twice must get the sum of both.

    Parameters
    ----------
    rows : numpy.ndarray
        ``(K,)`` integer row indices, repeats allowed.
    values : numpy.ndarray
        ``(K, *row_shape)`` one gradient row per index.

    Returns
    -------
    RowSparse
        Sorted unique int64 rows and their summed values.

    Examples
    --------
    >>> import numpy as np
    >>> g = coalesce_rows(np.array([3, 1, 3]), np.array([[1.0], [2.0], [4.0]]))
    >>> g.rows, g.values
    (array([1, 3]), array([[2.],
           [5.]]))
    """
    rows = np.asarray(rows)
    if rows.ndim != 1 or rows.dtype.kind not in "iu":
        raise TypeError(
            f"rows must be a 1-D integer array, got dtype {rows.dtype.name} and "
            f"shape {rows.shape}"
        )
    if not isinstance(values, np.ndarray) or values.ndim < 1:
        raise TypeError("values must be a numpy array with one row per entry of rows")
    if values.shape[0] != rows.shape[0]:
        raise ValueError(
            f"values must have one row per entry of rows ({rows.shape[0]}), got "
            f"shape {values.shape}"
        )
    order = np.argsort(rows, kind="stable")
    sorted_rows = rows[order].astype(np.int64)  # (K,)
    if sorted_rows.size == 0:
        return RowSparse(sorted_rows, values.copy())
    starts = np.flatnonzero(np.r_[True, sorted_rows[1:] != sorted_rows[:-1]])
    if values.dtype in FLOAT_DTYPES:
        # The compiled loop adds each run of equal rows left to right, without
        # first copying every row into sorted order.
        flat = np.ascontiguousarray(values).reshape(len(rows), -1)  # (K, R)
        summed = np.empty((len(starts), flat.shape[1]), values.dtype)  # (K', R)
        segment_sum(flat, order, starts, summed, work=flat.size)
        summed = summed.reshape(len(starts), *values.shape[1:])
    else:
        summed = np.add.reduceat(values[order], starts, axis=0)  # (K', *row_shape)
    return RowSparse(sorted_rows[starts], summed)


# -- validation ---------------------------------------------------------------------


def _check_real(value, name, low, high=math.inf, *, low_open=False, high_open=False):
    """Check ``low <=/< value <=/< high``; return a Python float."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    above = value > low if low_open else value >= low
    below = value < high if high_open else value <= high
    if not (math.isfinite(value) and above and below):
        left = "(" if low_open else "["
        right = ")" if high_open or high == math.inf else "]"
        raise ValueError(
            f"{name} must be in {left}{low:g}, {high:g}{right}, got {value!r}"
        )
    return value


def _check_params(params):
    if not isinstance(params, dict):
        raise TypeError(
            f"params must be a dict of str to numpy arrays, got {type(params).__name__}"
        )
    for name, p in params.items():
        if not isinstance(p, np.ndarray) or p.dtype not in FLOAT_DTYPES:
            got = p.dtype.name if isinstance(p, np.ndarray) else type(p).__name__
            raise TypeError(
                f"params[{name!r}] must be a float32 or float64 numpy array, got {got}"
            )
        if not p.flags.writeable:
            raise ValueError(
                f"params[{name!r}] is read-only; the optimizer updates it in place"
            )
    return params


def _check_row_sparse(name, g, p):
    """Validate a `RowSparse` gradient against its parameter."""
    rows, values = g
    where = f"grads[{name!r}]"
    if p.ndim < 1:
        raise ValueError(f"{where} is row-sparse, but the parameter is 0-D")
    if not (
        isinstance(rows, np.ndarray) and rows.ndim == 1 and rows.dtype.kind in "iu"
    ):
        got = rows.dtype.name if isinstance(rows, np.ndarray) else type(rows).__name__
        raise TypeError(f"{where}.rows must be a 1-D integer array, got {got}")
    if rows.size and (rows.min() < 0 or rows.max() >= p.shape[0]):
        raise ValueError(
            f"{where}.rows must be in [0, {p.shape[0]}), got values from "
            f"{rows.min()} to {rows.max()}"
        )
    # Rows from coalesce_rows are sorted, which proves them unique in one pass.
    if not (rows[1:] > rows[:-1]).all() and np.unique(rows).size != rows.size:
        raise ValueError(
            f"{where}.rows must be unique (a repeated row would get one update, not "
            f"their sum); sum the values of repeated rows with coalesce_rows"
        )
    expected = (rows.size, *p.shape[1:])
    if not isinstance(values, np.ndarray):
        raise TypeError(
            f"{where}.values must be a numpy array of shape {expected}, got "
            f"{type(values).__name__}"
        )
    if values.shape != expected:
        raise ValueError(
            f"{where}.values must have shape {expected}, got {values.shape}"
        )
    if values.dtype != p.dtype:
        raise TypeError(
            f"{where}.values must have the parameter's dtype {p.dtype.name}, got "
            f"{values.dtype.name}"
        )
    return g


def _check_grad(name, g, p):
    """Validate one gradient, dense or row-sparse, against its parameter."""
    if isinstance(g, RowSparse):
        return _check_row_sparse(name, g, p)
    if not isinstance(g, np.ndarray):
        raise TypeError(
            f"grads[{name!r}] must be a numpy array or a RowSparse, got "
            f"{type(g).__name__}"
        )
    if g.shape != p.shape:
        raise ValueError(f"grads[{name!r}] must have shape {p.shape}, got {g.shape}")
    if g.dtype != p.dtype:
        raise TypeError(
            f"grads[{name!r}] must have the parameter's dtype {p.dtype.name}, got "
            f"{g.dtype.name}"
        )
    return g


# -- the optimizers -----------------------------------------------------------------


class Optimizer:
    """What the optimizers share: parameters, validation, dense/sparse dispatch.

    A subclass defines ``_init_state(p) -> dict`` and
    ``_update(p, g, state, where)``, which applies its rule to the entries
    ``p[where]`` with their gradient ``g``; ``where`` is ``...`` (every entry) for a
    dense gradient and the row indices for a sparse one, so the two share one
    formula.

    Parameters
    ----------
    params : dict of str to numpy.ndarray
        The parameters, float32 or float64, updated in place.
    lr : float
        Learning rate, >= 0. May be changed between steps.
    weight_decay : float, default 0
        L2 coefficient, >= 0, added to the gradient as ``g + weight_decay * p``.

    Attributes
    ----------
    params : dict of str to numpy.ndarray
        The same arrays as given.
    state : dict of str to dict
        Per-parameter state, arrays in the parameter's dtype.
    """

    def __init__(self, params, lr, weight_decay=0.0):
        self.params = _check_params(params)
        self.lr = _check_real(lr, "lr", 0)
        self.weight_decay = _check_real(weight_decay, "weight_decay", 0)
        self.state = {name: self._init_state(p) for name, p in params.items()}

    def _init_state(self, p):
        return {}

    def _update(self, p, g, state, where):
        raise NotImplementedError

    def step(self, grads):
        """Update the parameters in place with one gradient step.

        Every gradient is checked before any parameter changes.

        Parameters
        ----------
        grads : dict of str to numpy.ndarray or RowSparse
            Gradients keyed like (a subset of) ``params``; None skips a parameter.
        """
        if not isinstance(grads, dict):
            raise TypeError(f"grads must be a dict, got {type(grads).__name__}")
        checked = []
        for name, g in grads.items():
            if name not in self.params:
                known = ", ".join(repr(k) for k in self.params)
                raise KeyError(f"grads[{name!r}] has no parameter; params are {known}")
            if g is not None:
                checked.append((name, _check_grad(name, g, self.params[name])))
        for name, g in checked:
            p = self.params[name]
            if isinstance(g, RowSparse):
                where, g = g.rows, g.values
            else:
                where = ...  # every entry, also of a 0-d parameter
            if self.weight_decay:
                g = g + self.weight_decay * p[where]
            self._update(p, g, self.state[name], where)


class SGD(Optimizer):
    """Stochastic gradient descent with heavy-ball momentum.

    With ``g`` the gradient (plus ``weight_decay * p``), momentum ``mu`` and
    learning rate ``lr``, the rule of ``torch.optim.SGD`` (no dampening, no
    Nesterov)::

        b <- mu b + g          (b = 0 at the start; skipped when mu = 0)
        p <- p - lr b

    A row-sparse gradient applies it to the listed rows only (see the module
    docstring).

    Parameters
    ----------
    params : dict of str to numpy.ndarray
        The parameters, updated in place.
    lr : float
        Learning rate, >= 0.
    momentum : float, default 0
        ``mu`` in ``[0, 1)``.
    weight_decay : float, default 0
        L2 coefficient, >= 0.

    Examples
    --------
    >>> import numpy as np
    >>> params = {"w": np.array([1.0, 2.0])}
    >>> SGD(params, lr=0.5).step({"w": np.array([2.0, -2.0])})
    >>> params["w"]
    array([0., 3.])
    """

    def __init__(self, params, lr, momentum=0.0, weight_decay=0.0):
        self.momentum = _check_real(momentum, "momentum", 0, 1, high_open=True)
        super().__init__(params, lr, weight_decay)

    def _init_state(self, p):
        return {"momentum_buffer": np.zeros_like(p)} if self.momentum else {}

    def _update(self, p, g, state, where):
        if self.momentum:
            buf = state["momentum_buffer"]
            buf[where] = self.momentum * buf[where] + g
            g = buf[where]
        p[where] -= self.lr * g


class Adam(Optimizer):
    """Adam, with the L2 weight decay of ``torch.optim.Adam`` (not AdamW).

    With ``g`` the gradient (plus ``weight_decay * p``) and ``t`` the number of
    steps this parameter has taken, this one included::

        m <- beta1 m + (1 - beta1) g              first moment, m = 0 at the start
        v <- beta2 v + (1 - beta2) g^2            second moment, v = 0 at the start
        m_hat = m / (1 - beta1^t)
        v_hat = v / (1 - beta2^t)
        p <- p - lr m_hat / (sqrt(v_hat) + eps)

    A row-sparse gradient applies it to the listed rows only, with the
    parameter's ``t``: the lazy rule of ``torch.optim.SparseAdam`` (which
    differs only in adding ``eps sqrt(1 - beta2^t)`` instead of ``eps``).

    Parameters
    ----------
    params : dict of str to numpy.ndarray
        The parameters, updated in place.
    lr : float, default 1e-3
        Learning rate, >= 0.
    betas : tuple of float, default (0.9, 0.999)
        ``(beta1, beta2)``, each in ``[0, 1)``.
    eps : float, default 1e-8
        Added to the denominator, > 0.
    weight_decay : float, default 0
        L2 coefficient, >= 0.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise TypeError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        self.betas = tuple(
            _check_real(b, f"betas[{k}]", 0, 1, high_open=True)
            for k, b in enumerate(betas)
        )
        self.eps = _check_real(eps, "eps", 0, low_open=True)
        super().__init__(params, lr, weight_decay)

    def _init_state(self, p):
        return {"step": 0, "exp_avg": np.zeros_like(p), "exp_avg_sq": np.zeros_like(p)}

    def _update(self, p, g, state, where):
        beta1, beta2 = self.betas
        state["step"] += 1
        t = state["step"]
        m, v = state["exp_avg"], state["exp_avg_sq"]

        # The moment estimates of the touched entries.
        m[where] = beta1 * m[where] + (1 - beta1) * g
        v[where] = beta2 * v[where] + (1 - beta2) * (g * g)

        # Bias-corrected step.
        m_hat = m[where] / (1 - beta1**t)
        v_hat = v[where] / (1 - beta2**t)
        p[where] -= self.lr * m_hat / (np.sqrt(v_hat) + self.eps)


class AdagradM(Optimizer):
    """Adagrad with momentum, as GRU4Rec trains with it.

    With ``g`` the gradient (plus ``weight_decay * p``), momentum ``mu`` and
    learning rate ``lr``::

        G <- G + g^2                              squared-gradient sum, G = 0 at start
        u  = lr g / sqrt(G + eps)                 the Adagrad step
        v <- mu v + u                             velocity, v = 0 at the start
        p <- p - v

    With ``mu = 0`` this is Adagrad, ``p <- p - u``; note that ``eps`` sits under
    the square root, where ``torch.optim.Adagrad`` adds it after the root.
    This is GRU4Rec's ``IndexedAdagradM`` (which stores ``-v``). A row-sparse
    gradient updates ``G``, ``v`` and ``p`` of the listed rows only; the other
    rows' velocity neither decays nor moves them.

    Parameters
    ----------
    params : dict of str to numpy.ndarray
        The parameters, updated in place.
    lr : float
        Learning rate, >= 0 (GRU4Rec's default is 0.05).
    momentum : float, default 0
        ``mu`` in ``[0, 1)``.
    eps : float, default 1e-6
        Added to ``G`` under the root, > 0.
    weight_decay : float, default 0
        L2 coefficient, >= 0.

    Examples
    --------
    >>> import numpy as np
    >>> params = {"w": np.array([1.0])}
    >>> opt = AdagradM(params, lr=0.2, momentum=0.5, eps=7.0)
    >>> opt.step({"w": np.array([3.0])})  # G = 9, u = 0.2 * 3 / 4 = 0.15
    >>> params["w"]
    array([0.85])
    """

    def __init__(self, params, lr, momentum=0.0, eps=1e-6, weight_decay=0.0):
        self.momentum = _check_real(momentum, "momentum", 0, 1, high_open=True)
        self.eps = _check_real(eps, "eps", 0, low_open=True)
        super().__init__(params, lr, weight_decay)

    def _init_state(self, p):
        state = {"sum_sq": np.zeros_like(p)}
        if self.momentum:
            state["velocity"] = np.zeros_like(p)
        return state

    def _update(self, p, g, state, where):
        G = state["sum_sq"]
        if p.ndim and p.size and p.flags.c_contiguous:
            # The same rule as below, in one compiled pass over each row.
            rows = (
                np.arange(len(p))
                if where is ...
                else where.astype(np.int64, copy=False)
            )
            v = state.get("velocity", G)
            real = p.dtype.type
            adagrad_rows(
                p.reshape(len(p), -1),
                G.reshape(len(p), -1),
                v.reshape(len(p), -1),
                rows,
                np.ascontiguousarray(g).reshape(len(rows), -1),
                real(self.lr),
                real(self.momentum),
                real(self.eps),
                work=g.size,
            )
            return

        # Accumulate, then scale the gradient by the root of the sum.
        G[where] += g * g
        u = self.lr * g / np.sqrt(G[where] + self.eps)

        if self.momentum:
            v = state["velocity"]
            v[where] = self.momentum * v[where] + u
            u = v[where]
        p[where] -= u

"""What the three recurrent layers share: parameters, validation and dispatch.

A layer holds its parameters in ``params``, a dict named and shaped like a
one-layer PyTorch module without the ``_l0`` suffix. The arithmetic lives in
module-level functions, one pair per backend: the readable NumPy reference in
``rnnrec.cells`` and the compiled core in ``rnnrec.kernels``. Both take and return
the same cache, so a cache made by one backend can be differentiated by the other.
"""

from __future__ import annotations

import numpy as np

from rnnrec._validation import (
    as_rng,
    check_array,
    check_choice,
    check_dtype,
    check_mask,
    check_positive_int,
)
from rnnrec.initializers import INITS, init_params

BACKENDS = ("numba", "numpy")


def input_term(x_t, W_ih, b_ih):
    """Return the input side of a step's pre-activation, ``x_t W_ih^T + b_ih``.

    With ``W_ih`` None the layer runs in projected mode: ``x_t`` already is
    ``x_t W_ih^T`` (for example rows of an embedding table gathered by the caller)
    and only the bias is added.

    Parameters
    ----------
    x_t : numpy.ndarray
        ``(B, D)``, or ``(B, G*H)`` in projected mode.
    W_ih : numpy.ndarray or None
        ``(G*H, D)``.
    b_ih : numpy.ndarray
        ``(G*H,)``.

    Returns
    -------
    numpy.ndarray
        ``(B, G*H)``.
    """
    return (x_t if W_ih is None else x_t @ W_ih.T) + b_ih


def input_term_backward(da, x_t, W_ih):
    """Backward pass of `input_term`: ``dx_t = da W_ih`` and ``dW_ih = da^T x_t``.

    Parameters
    ----------
    da : numpy.ndarray
        Gradient of the pre-activation ``(B, G*H)``.
    x_t : numpy.ndarray
        The step's input.
    W_ih : numpy.ndarray or None
        ``(G*H, D)``, or None in projected mode.

    Returns
    -------
    dx_t : numpy.ndarray
        ``(B, D)``; in projected mode ``da`` itself, the gradient of the projection.
    dW_ih : numpy.ndarray or None
        ``(G*H, D)``; None in projected mode.
    """
    if W_ih is None:
        return da, None
    return da @ W_ih, da.T @ x_t


PARAM_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


class RecurrentLayer:
    """Base class of `RNN`, `LSTM` and `GRU`; not used on its own.

    Subclasses set ``n_gates`` and ``cell`` and implement ``_functions``, which
    returns the (forward, backward) pair of sequence functions for a backend.
    """

    n_gates = 1
    cell = "base"
    cache_type = tuple  # the subclass's cache NamedTuple
    has_cell_state = False

    def __init__(
        self,
        input_size,
        hidden_size,
        *,
        dtype=np.float64,
        seed=None,
        backend="numba",
        init="pytorch",
    ):
        self.input_size = check_positive_int(input_size, "input_size")
        self.hidden_size = check_positive_int(hidden_size, "hidden_size")
        self.dtype = check_dtype(dtype)
        self.backend = check_choice(backend, "backend", BACKENDS)
        self.init = check_choice(init, "init", INITS)
        rng = as_rng(seed)
        self.params = init_params(
            rng, self.n_gates, self.input_size, self.hidden_size, self.dtype, init
        )
        # Identifies caches made by this layer (copies get their own).
        self._token = object()

    def __repr__(self):
        return (
            f"{type(self).__name__}(input_size={self.input_size}, "
            f"hidden_size={self.hidden_size}, dtype=np.{self.dtype.name}, "
            f"backend={self.backend!r}{self._extra_repr()})"
        )

    def _extra_repr(self):
        return ""

    def __deepcopy__(self, memo):
        new = type(self).__new__(type(self))
        new.__dict__.update(
            {k: v for k, v in self.__dict__.items() if k not in ("params", "_token")}
        )
        new.params = {k: v.copy() for k, v in self.params.items()}
        new._token = object()
        return new

    # -- parameters ---------------------------------------------------------

    def param_shapes(self):
        """Return the required shape of every parameter.

        Returns
        -------
        dict of str to tuple of int
            ``weight_ih (G*H, D)``, ``weight_hh (G*H, H)``, ``bias_ih (G*H,)``,
            ``bias_hh (G*H,)``.
        """
        GH, D, H = self.n_gates * self.hidden_size, self.input_size, self.hidden_size
        return {
            "weight_ih": (GH, D),
            "weight_hh": (GH, H),
            "bias_ih": (GH,),
            "bias_hh": (GH,),
        }

    def load_params(self, params):
        """Replace the parameters with copies of ``params``, after checking them.

        Parameters
        ----------
        params : mapping of str to array_like
            Exactly the keys of `params`, with the same shapes. Values are copied
            and converted to the layer's dtype.
        """
        if set(params) != set(PARAM_NAMES):
            raise ValueError(
                f"params must have exactly the keys {list(PARAM_NAMES)}, "
                f"got {sorted(params)}"
            )
        new = {}
        for name, shape in self.param_shapes().items():
            try:
                value = np.array(params[name], dtype=self.dtype, copy=True)
            except (TypeError, ValueError):
                raise TypeError(
                    f"params[{name!r}] must be an array of numbers of shape "
                    f"{shape}, got {type(params[name]).__name__}"
                ) from None
            new[name] = check_array(
                value, f"params[{name!r}]", shape=shape, dtype=self.dtype
            )
        self.params = new

    def _checked_params(self):
        dtype, params = self.dtype, self.params
        for name, shape in self.param_shapes().items():
            value = params.get(name)
            if not (
                isinstance(value, np.ndarray)
                and value.shape == shape
                and value.dtype == dtype
            ):
                check_array(value, f"params[{name!r}]", shape=shape, dtype=dtype)
        return params

    # -- state ----------------------------------------------------------------

    def zero_state(self, batch_size):
        """Return the all-zero initial state for ``batch_size`` sequences.

        Parameters
        ----------
        batch_size : int
            B.

        Returns
        -------
        numpy.ndarray or tuple of numpy.ndarray
            ``h (B, H)``; for the LSTM the tuple ``(h, c)``.
        """
        B = check_positive_int(batch_size, "batch_size")
        h = np.zeros((B, self.hidden_size), self.dtype)
        return (h, h.copy()) if self.has_cell_state else h

    def _check_state(self, state, B, name):
        if state is None:
            return self.zero_state(B)
        shape = (B, self.hidden_size)
        if self.has_cell_state:
            if not (isinstance(state, tuple) and len(state) == 2):
                got = type(state).__name__
                if isinstance(state, tuple):
                    got += f" of length {len(state)}"
                raise TypeError(
                    f"{name} of an LSTM must be a tuple (h, c) of two arrays of "
                    f"shape {shape}, got {got}"
                )
            return tuple(
                check_array(s, f"{name}[{i}]", shape=shape, dtype=self.dtype)
                for i, s in enumerate(state)
            )
        return check_array(state, name, shape=shape, dtype=self.dtype)

    # -- forward and backward ---------------------------------------------------

    def forward(self, x, state=None, reset=None, *, projected=False):
        """Run the layer over a batch of sequences.

        Parameters
        ----------
        x : numpy.ndarray
            Inputs, time-major, ``(T, B, D)``, of the layer's dtype.
        state : numpy.ndarray or tuple, optional
            Initial state ``(B, H)`` (LSTM: a tuple ``(h, c)``); zeros if omitted.
        reset : numpy.ndarray of bool, optional
            ``(T, B)``; where true, that row's state is zeroed before step ``t``
            (a new sequence starts there).
        projected : bool, default False
            ``x`` is not the input but its projection ``x_t W_ih^T``, ``(T, B,
            G*H)``, computed by the caller (for example rows of an item
            embedding gathered for one-hot inputs). ``weight_ih`` is then unused;
            `backward` returns the gradient of the projection as ``dx`` and no
            ``weight_ih`` gradient.

        Returns
        -------
        out : numpy.ndarray
            Every hidden state, ``(T, B, H)``.
        state : numpy.ndarray or tuple
            The final state (LSTM: ``(h_T, c_T)``), ready to be passed to the
            next call.
        cache : NamedTuple
            What `backward` needs.
        """
        D = self.n_gates * self.hidden_size if projected else self.input_size
        x = check_array(x, "x", shape=("T", "B", D), dtype=self.dtype)
        T, B, _ = x.shape
        state = self._check_state(state, B, "state")
        if reset is None:
            keep = np.ones((T, B), self.dtype)
        else:
            keep = 1 - check_mask(reset, "reset", (T, B)).astype(self.dtype)
        params = self._checked_params()
        forward, _ = self._functions()
        out, final, cache = forward(x, state, keep, params, projected=bool(projected))
        return out, final, cache._replace(owner=self._token, projected=bool(projected))

    def backward(self, d_out, cache, d_state=None, *, state_grad=True):
        """Backpropagate through time over the steps of one `forward` call.

        Parameters
        ----------
        d_out : numpy.ndarray
            Gradient of the loss with respect to ``out``, ``(T, B, H)``.
        cache : NamedTuple
            The cache that this layer's `forward` returned.
        d_state : numpy.ndarray or tuple, optional
            Gradient with respect to the final state (LSTM: ``(dh_T, dc_T)``),
            for example from a later window of truncated BPTT; zeros if omitted.
        state_grad : bool, default True
            Return the gradient with respect to the initial state. A caller
            that treats the initial state as a constant (the recommender, which
            carries states from one mini-batch to the next) passes False: the
            GRU on the Numba backend then skips the first step's product
            through ``W_hh``, which only that gradient needs.

        Returns
        -------
        dx : numpy.ndarray
            ``(T, B, D)`` (in projected mode the gradient of the projection,
            ``(T, B, G*H)``).
        d_state0 : numpy.ndarray or tuple or None
            Gradient with respect to the initial state; None without
            ``state_grad``.
        grads : dict of str to numpy.ndarray
            Gradients with the keys and shapes of `params` (without
            ``weight_ih`` in projected mode).
        """
        layer, want = type(self).__name__, self.cache_type.__name__
        if not isinstance(cache, self.cache_type):
            raise TypeError(
                f"cache must be the {want} returned by this {layer}'s forward, "
                f"got {type(cache).__name__}"
            )
        if cache.owner is not self._token:
            raise ValueError(
                f"cache is a {want} made by another {layer}'s forward; pass the "
                "cache returned by this layer's own forward call"
            )
        T, B, _ = cache.x.shape
        H = self.hidden_size
        d_out = check_array(d_out, "d_out", shape=(T, B, H), dtype=self.dtype)
        d_state = self._check_state(d_state, B, "d_state")
        params = self._checked_params()
        _, backward = self._functions()
        skip = (
            {} if state_grad or not self._skips_state_grad() else {"state_grad": False}
        )
        dx, d_state0, grads = backward(
            d_out, d_state, cache, params, projected=cache.projected, **skip
        )
        return dx, (d_state0 if state_grad else None), grads

    def _skips_state_grad(self):
        """Whether the backward function takes ``state_grad`` (see `backward`)."""
        return False

    def _functions(self):
        raise NotImplementedError

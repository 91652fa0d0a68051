"""Gradient clipping by global norm and by value.

Both functions modify the gradient arrays in place, as their PyTorch
counterparts do, and accept a dict of arrays (the ``grads`` a layer's backward
returns) or a list of arrays.
"""

from __future__ import annotations

import math
import numbers

import numpy as np


def _arrays(grads, name="grads"):
    if isinstance(grads, np.ndarray):  # one array, as PyTorch takes one tensor
        items = [(name, grads)]
    elif isinstance(grads, dict):
        items = [(f"{name}[{k!r}]", g) for k, g in grads.items()]
    else:
        try:
            items = [(f"{name}[{i}]", g) for i, g in enumerate(grads)]
        except TypeError:
            raise TypeError(
                f"{name} must be a dict or list of numpy arrays, got "
                f"{type(grads).__name__}"
            ) from None
    for where, g in items:
        if not isinstance(g, np.ndarray):
            raise TypeError(
                f"{where} must be a floating-point numpy array, got {type(g).__name__}"
            )
        if g.dtype.kind != "f":
            raise TypeError(
                f"{where} must be a floating-point numpy array, got dtype "
                f"{g.dtype.name}"
            )
    return [g for _, g in items]


def _check_limit(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {value!r}")
    if not value >= 0:
        raise ValueError(
            f"{name} must be a non-negative number (inf only measures), got {value!r}"
        )
    return float(value)


def clip_grad_norm(grads, max_norm, *, eps=1e-6, error_if_nonfinite=False):
    """Scale all gradients in place so that their global L2 norm is at most max_norm.

    The global norm is ``N = sqrt(sum_k ||g_k||^2)`` over every array. If
    ``N > max_norm`` every array is multiplied by ``max_norm / (N + eps)``;
    otherwise nothing changes. These are the semantics of
    ``torch.nn.utils.clip_grad_norm_``, including what happens when ``N`` is not
    finite: an infinite norm scales the gradients by 0 and a NaN norm makes them
    NaN, unless ``error_if_nonfinite`` asks for an error instead.

    Parameters
    ----------
    grads : dict of str to numpy.ndarray or list of numpy.ndarray
        The gradients, modified in place.
    max_norm : float
        Largest global norm allowed, >= 0; ``inf`` only measures the norm.
    eps : float, default 1e-6
        Added to the norm before dividing, as in PyTorch.
    error_if_nonfinite : bool, default False
        Raise ``FloatingPointError`` if the norm is NaN or infinite.

    Returns
    -------
    float
        The global norm before clipping.

    Examples
    --------
    >>> import numpy as np
    >>> grads = {"w": np.array([3.0, 4.0])}
    >>> clip_grad_norm(grads, 1.0)
    5.0
    >>> np.round(grads["w"], 6)
    array([0.6, 0.8])
    """
    max_norm = _check_limit(max_norm, "max_norm")
    arrays = _arrays(grads)
    # The sum of squares runs in float64 so that float32 gradients cannot overflow.
    squares = [float(np.sum(np.square(g, dtype=np.float64))) for g in arrays]
    try:
        total = math.sqrt(math.fsum(squares))
    except OverflowError:  # finite squares whose sum exceeds float64: the norm is inf
        total = math.inf
    if error_if_nonfinite and not math.isfinite(total):
        raise FloatingPointError(
            f"the global gradient norm is {total}; a gradient holds NaN or infinity"
        )
    with np.errstate(invalid="ignore"):
        scale = max_norm / (total + eps)
        if not scale >= 1:  # also true when scale is NaN
            for g in arrays:
                g *= g.dtype.type(scale)
    return total


def clip_grad_value(grads, clip_value):
    """Clamp every gradient entry in place to ``[-clip_value, clip_value]``.

    Parameters
    ----------
    grads : dict of str to numpy.ndarray or list of numpy.ndarray
        The gradients, modified in place.
    clip_value : float
        Largest absolute value allowed, >= 0.

    Returns
    -------
    None
        As ``torch.nn.utils.clip_grad_value_``.

    Examples
    --------
    >>> import numpy as np
    >>> grads = [np.array([-3.0, 0.5, 2.0])]
    >>> clip_grad_value(grads, 1.0)
    >>> grads[0]
    array([-1. ,  0.5,  1. ])
    """
    clip_value = _check_limit(clip_value, "clip_value")
    for g in _arrays(grads):
        np.clip(g, -clip_value, clip_value, out=g)

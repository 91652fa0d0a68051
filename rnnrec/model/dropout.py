"""Inverted dropout as a forward/backward pair."""

from __future__ import annotations


def dropout_forward(x, p, rng):
    """Zero each entry with probability ``p`` and scale the rest by ``1 / (1 - p)``.

    Parameters
    ----------
    x : numpy.ndarray
        Input.
    p : float
        Drop probability in ``[0, 1)``; 0 returns ``x`` itself.
    rng : numpy.random.Generator
        Source of the mask.

    Returns
    -------
    out : numpy.ndarray
        ``x * mask``.
    mask : numpy.ndarray or None
        ``0`` or ``1 / (1 - p)`` per entry, in the dtype of ``x`` (None if p is 0).
    """
    if p == 0:
        return x, None
    keep = rng.random(x.shape) >= p
    mask = keep.astype(x.dtype) / x.dtype.type(1 - p)
    return x * mask, mask


def dropout_backward(d_out, mask):
    """Backward pass of `dropout_forward`: ``d_out * mask``.

    Parameters
    ----------
    d_out : numpy.ndarray
        Gradient of the output.
    mask : numpy.ndarray or None
        From the forward pass.

    Returns
    -------
    numpy.ndarray
        Gradient of the input.
    """
    return d_out if mask is None else d_out * mask

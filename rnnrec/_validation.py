"""Argument checks shared by the public API.

Every check raises ``TypeError`` (wrong kind of object or dtype) or ``ValueError``
(wrong shape or value) with a message that names the argument, what was expected
and what arrived, so that a mistake never surfaces as a traceback from deep inside
NumPy or as silently wrong numbers.
"""

from __future__ import annotations

import numbers

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def check_dtype(dtype, name: str = "dtype") -> np.dtype:
    """Normalise a floating dtype argument to ``np.float32`` or ``np.float64``.

    Parameters
    ----------
    dtype : dtype-like
        The requested dtype.
    name : str
        Argument name used in the error message.

    Returns
    -------
    numpy.dtype
        ``np.dtype(np.float32)`` or ``np.dtype(np.float64)``.
    """
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt is None or dt not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be np.float32 or np.float64, got {dtype!r}")
    return dt


def check_positive_int(value, name: str) -> int:
    """Return ``value`` as an int after checking it is a positive integer.

    Parameters
    ----------
    value : object
        The value to check.
    name : str
        Argument name used in the error message.

    Returns
    -------
    int
        The value.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a positive integer, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value}")
    return int(value)


def check_choice(value, name: str, allowed) -> str:
    """Check that ``value`` is one of ``allowed``.

    Parameters
    ----------
    value : object
        The value to check.
    name : str
        Argument name used in the error message.
    allowed : sequence of str
        The allowed values.

    Returns
    -------
    str
        The value.
    """
    if value not in allowed:
        options = ", ".join(repr(a) for a in allowed)
        raise ValueError(f"{name} must be one of {options}, got {value!r}")
    return value


def _shape_text(shape):
    """Write a shape as Python does, ``(2,)`` for one dimension, names allowed."""
    parts = [str(s) for s in shape]
    return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"


def check_array(
    a,
    name: str,
    *,
    shape: tuple,
    dtype: np.dtype,
    finite: bool = True,
) -> np.ndarray:
    """Check an array's type, shape, dtype and (optionally) finiteness.

    Parameters
    ----------
    a : object
        The argument to check.
    name : str
        Argument name used in error messages.
    shape : tuple
        Expected shape; an entry of ``None`` accepts any length, a string entry is
        a symbolic name shown in the message (``"T"``) and accepts any length >= 1.
    dtype : numpy.dtype
        The required dtype; arrays are never cast silently.
    finite : bool, default True
        Reject NaN and infinity.

    Returns
    -------
    numpy.ndarray
        ``a`` itself (not a copy).
    """
    if (
        isinstance(a, np.ndarray)
        and a.ndim == len(shape)
        and all(
            got == want if isinstance(want, int) else want is None or got >= 1
            for got, want in zip(a.shape, shape, strict=True)
        )
        and a.dtype == dtype
    ):
        if finite and not np.isfinite(a).all():
            n_bad = int(a.size - np.count_nonzero(np.isfinite(a)))
            raise ValueError(f"{name} contains {n_bad} NaN or infinite value(s)")
        return a

    # Something is wrong: find what, and say it.
    expected = _shape_text(shape)
    if not isinstance(a, np.ndarray):
        raise TypeError(
            f"{name} must be a numpy array of shape {expected}, got {type(a).__name__}"
        )
    if a.ndim != len(shape):
        raise ValueError(
            f"{name} must have {len(shape)} dimensions {expected}, "
            f"got {a.ndim} with shape {a.shape}"
        )
    for got, want in zip(a.shape, shape, strict=True):
        if isinstance(want, int) and got != want:
            raise ValueError(f"{name} must have shape {expected}, got {a.shape}")
        if isinstance(want, str) and got < 1:
            raise ValueError(
                f"{name} must have shape {expected} with {want} >= 1, got {a.shape}"
            )
    raise TypeError(
        f"{name} must have dtype {dtype.name} (the layer's dtype), got "
        f"{a.dtype.name}; convert it with .astype(np.{dtype.name})"
    )


def check_mask(mask, name: str, shape: tuple) -> np.ndarray:
    """Check a boolean mask of a given shape.

    Parameters
    ----------
    mask : object
        The argument to check.
    name : str
        Argument name used in error messages.
    shape : tuple of int
        Required shape.

    Returns
    -------
    numpy.ndarray
        The mask.
    """
    expected = _shape_text(shape)
    if not isinstance(mask, np.ndarray):
        raise TypeError(
            f"{name} must be a boolean numpy array of shape {expected}, "
            f"got {type(mask).__name__}"
        )
    if mask.dtype != np.bool_:
        raise TypeError(f"{name} must have dtype bool, got {mask.dtype.name}")
    if mask.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {expected}, got {mask.shape}")
    return mask


def as_rng(seed) -> np.random.Generator:
    """Turn ``None``, an int or a Generator into a ``numpy.random.Generator``.

    Parameters
    ----------
    seed : None, int or numpy.random.Generator
        The seed.

    Returns
    -------
    numpy.random.Generator
        A generator; the same object when a Generator is passed.
    """
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or (
        isinstance(seed, numbers.Integral) and not isinstance(seed, bool)
    ):
        if seed is not None and seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed}")
        return np.random.default_rng(seed)
    raise TypeError(
        f"seed must be None, a non-negative int or a numpy Generator, got {seed!r}"
    )

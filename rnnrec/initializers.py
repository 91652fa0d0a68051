"""Initial weights for the recurrent layers.

Weights are stored gate-stacked as PyTorch stores them: ``weight_ih`` is
``(G*H, D)``, ``weight_hh`` is ``(G*H, H)``, and gate ``k`` owns rows
``k*H:(k+1)*H``. The Glorot and orthogonal schemes are applied to each gate's
block on its own, so that every gate sees a well-scaled matrix.
"""

from __future__ import annotations

import numpy as np

from rnnrec._validation import check_choice

INITS = ("pytorch", "glorot", "orthogonal")


def uniform(rng, shape, bound, dtype):
    """Draw from ``U(-bound, bound)``.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of randomness.
    shape : tuple of int
        Output shape.
    bound : float
        Half-width of the interval.
    dtype : numpy.dtype
        Output dtype.

    Returns
    -------
    numpy.ndarray
        The draw.
    """
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


def glorot_uniform(rng, fan_out, fan_in, dtype):
    """Glorot (Xavier) uniform matrix, ``U(-a, a)`` with ``a = sqrt(6/(in+out))``.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of randomness.
    fan_out, fan_in : int
        Rows and columns of the matrix.
    dtype : numpy.dtype
        Output dtype.

    Returns
    -------
    numpy.ndarray
        A ``(fan_out, fan_in)`` matrix.
    """
    return uniform(rng, (fan_out, fan_in), np.sqrt(6.0 / (fan_in + fan_out)), dtype)


def orthogonal(rng, n, dtype):
    """Random orthogonal ``(n, n)`` matrix, uniform over the orthogonal group.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of randomness.
    n : int
        Size of the matrix.
    dtype : numpy.dtype
        Output dtype.

    Returns
    -------
    numpy.ndarray
        ``Q`` with ``Q.T @ Q = I``.
    """
    a = rng.standard_normal((n, n))
    q, r = np.linalg.qr(a)
    # Fix the signs so the distribution is Haar, not biased by the QR convention.
    q *= np.sign(np.diag(r))
    return q.astype(dtype)


def init_params(rng, n_gates, input_size, hidden_size, dtype, scheme="pytorch"):
    """Draw the initial parameters of a one-layer cell, in PyTorch's layout.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of randomness.
    n_gates : int
        G: 1 for the vanilla RNN, 4 for the LSTM, 3 for the GRU.
    input_size, hidden_size : int
        D and H.
    dtype : numpy.dtype
        Parameter dtype.
    scheme : {"pytorch", "glorot", "orthogonal"}
        ``"pytorch"``: every entry from ``U(-1/sqrt(H), 1/sqrt(H))``, PyTorch's
        default. ``"glorot"``: Glorot-uniform blocks per gate, zero biases.
        ``"orthogonal"``: Glorot-uniform input blocks, orthogonal recurrent blocks,
        zero biases.

    Returns
    -------
    dict of str to numpy.ndarray
        ``weight_ih (G*H, D)``, ``weight_hh (G*H, H)``, ``bias_ih (G*H,)``,
        ``bias_hh (G*H,)``.
    """
    check_choice(scheme, "init", INITS)
    G, D, H = n_gates, input_size, hidden_size
    if scheme == "pytorch":
        k = 1.0 / np.sqrt(H)
        return {
            "weight_ih": uniform(rng, (G * H, D), k, dtype),
            "weight_hh": uniform(rng, (G * H, H), k, dtype),
            "bias_ih": uniform(rng, (G * H,), k, dtype),
            "bias_hh": uniform(rng, (G * H,), k, dtype),
        }
    W_ih = np.concatenate([glorot_uniform(rng, H, D, dtype) for _ in range(G)])
    if scheme == "glorot":
        W_hh = np.concatenate([glorot_uniform(rng, H, H, dtype) for _ in range(G)])
    else:
        W_hh = np.concatenate([orthogonal(rng, H, dtype) for _ in range(G)])
    return {
        "weight_ih": W_ih,
        "weight_hh": W_hh,
        "bias_ih": np.zeros(G * H, dtype),
        "bias_hh": np.zeros(G * H, dtype),
    }

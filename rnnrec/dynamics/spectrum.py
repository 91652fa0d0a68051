"""The recurrent matrix: its singular values, spectral radius, and a chosen radius.

``W_hh`` is stored gate-stacked, ``(G*H, H)``, and gate ``k`` owns the rows
``k*H:(k+1)*H`` (see `rnnrec.initializers`). Each gate's block ``W_h?`` is a
square ``(H, H)`` matrix, named after the gate it feeds::

    RNN    W_hh                        block "h"
    LSTM   W_hi, W_hf, W_hg, W_ho      blocks "i", "f", "g", "o"
    GRU    W_hr, W_hz, W_hn            blocks "r", "z", "n"

Two numbers describe what a block does to a vector over many steps:

* the spectral norm ``||W||_2 = sigma_1``, the largest singular value, which
  bounds the growth of one step: ``||W v|| <= sigma_1 ||v||``;
* the spectral radius ``rho(W) = max |lambda_i|``, the largest eigenvalue
  magnitude, which sets the growth of many: ``||W^k||^(1/k) -> rho(W)``.

``rho <= sigma_1``, with equality for normal matrices (for example ``r Q`` with
``Q`` orthogonal). Scaling a matrix scales both.
"""

from __future__ import annotations

import numbers
from typing import NamedTuple

import numpy as np

from rnnrec.cells.base import RecurrentLayer

GATES = {"rnn": ("h",), "lstm": ("i", "f", "g", "o"), "gru": ("r", "z", "n")}


def _check_layer(layer):
    if not isinstance(layer, RecurrentLayer) or type(layer).cell not in GATES:
        raise TypeError(
            f"layer must be an rnnrec RNN, LSTM or GRU, got {type(layer).__name__}"
        )
    return GATES[type(layer).cell]


def gate_blocks(layer):
    """Return each gate's ``(H, H)`` block of ``weight_hh``, as writable views.

    Parameters
    ----------
    layer : RNN, LSTM or GRU
        The layer.

    Returns
    -------
    dict of str to numpy.ndarray
        Block name (see the module docstring) to a view ``(H, H)`` into
        ``layer.params["weight_hh"]``.
    """
    names = _check_layer(layer)
    H, W_hh = layer.hidden_size, layer.params["weight_hh"]
    return {name: W_hh[k * H : (k + 1) * H] for k, name in enumerate(names)}


def spectral_radius(W):
    """Return ``rho(W) = max_i |lambda_i(W)|`` of a square matrix.

    Parameters
    ----------
    W : numpy.ndarray
        ``(H, H)``.

    Returns
    -------
    float
        The largest eigenvalue magnitude, computed in float64.
    """
    if not isinstance(W, np.ndarray) or W.ndim != 2 or W.shape[0] != W.shape[1]:
        got = W.shape if isinstance(W, np.ndarray) else type(W).__name__
        raise ValueError(f"W must be a square 2-D numpy array, got {got}")
    return float(np.max(np.abs(np.linalg.eigvals(W.astype(np.float64)))))


class Spectrum(NamedTuple):
    """Singular values and spectral radius of one ``(H, H)`` block.

    Attributes
    ----------
    singular_values : numpy.ndarray
        ``(H,)`` float64, largest first.
    spectral_radius : float
        ``max |lambda_i|``.
    """

    singular_values: np.ndarray
    spectral_radius: float

    @property
    def spectral_norm(self):
        """The largest singular value, ``||W||_2``."""
        return float(self.singular_values[0])


def recurrent_spectrum(layer):
    """Return the singular values and spectral radius of every gate's block.

    Parameters
    ----------
    layer : RNN, LSTM or GRU
        The layer.

    Returns
    -------
    dict of str to Spectrum
        Block name to its `Spectrum`, in gate order.

    Examples
    --------
    >>> from rnnrec import LSTM
    >>> spectra = recurrent_spectrum(LSTM(3, 5, seed=0, init="orthogonal"))
    >>> list(spectra), round(spectra["f"].spectral_norm, 12)
    (['i', 'f', 'g', 'o'], 1.0)
    """
    spectra = {}
    for name, W in gate_blocks(layer).items():
        s = np.linalg.svd(W.astype(np.float64), compute_uv=False)
        spectra[name] = Spectrum(singular_values=s, spectral_radius=spectral_radius(W))
    return spectra


def set_spectral_radius(layer, radius, *, gates=None):
    """Rescale gate blocks of ``weight_hh`` in place to a chosen spectral radius.

    Each chosen block becomes ``W <- (radius / rho(W)) W``, so its eigenvalues
    keep their directions and the largest reaches magnitude ``radius``. Applied
    right after construction, this is an initialisation with a set radius:
    with ``init="orthogonal"`` the blocks become ``radius * Q``, whose spectral
    norm is ``radius`` too; with ``init="pytorch"`` or ``"glorot"`` the spectral
    norm is larger than the radius (about twice, for large H).

    Parameters
    ----------
    layer : RNN, LSTM or GRU
        The layer, modified in place.
    radius : float
        The spectral radius wanted, >= 0.
    gates : sequence of str, optional
        Blocks to rescale (names in the module docstring); all by default.

    Returns
    -------
    RNN, LSTM or GRU
        The same layer, so that construction and rescaling chain.

    Examples
    --------
    >>> from rnnrec import RNN
    >>> layer = set_spectral_radius(RNN(2, 6, seed=0), 1.5)
    >>> round(recurrent_spectrum(layer)["h"].spectral_radius, 12)
    1.5
    """
    names = _check_layer(layer)
    if isinstance(radius, bool) or not isinstance(radius, numbers.Real):
        raise TypeError(f"radius must be a number, got {radius!r}")
    if not (np.isfinite(radius) and radius >= 0):
        raise ValueError(f"radius must be a finite number >= 0, got {radius!r}")
    if gates is None:
        gates = names
    elif isinstance(gates, str) or not set(gates) <= set(names):
        raise ValueError(
            f"gates must be a list of {type(layer).__name__} blocks from "
            f"{list(names)}, got {gates!r}"
        )
    blocks = gate_blocks(layer)
    for name in gates:
        W = blocks[name]
        rho = spectral_radius(W)
        if rho == 0:
            raise ValueError(
                f"block {name!r} of weight_hh has spectral radius 0 (all "
                "eigenvalues zero), so no rescaling can give it a radius; "
                "initialise it with init='orthogonal' or 'pytorch' first"
            )
        W *= W.dtype.type(radius / rho)
    return layer

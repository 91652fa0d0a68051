"""Hypothesis strategies and helpers shared by the tests."""

import numpy as np
from hypothesis import strategies as st

from rnnrec import GRU, LSTM, RNN
from rnnrec.gradcheck import _random_state as random_state  # noqa: F401

# Every cell variant: (name, class, keyword arguments).
CELL_VARIANTS = [
    ("rnn-tanh", RNN, {"nonlinearity": "tanh"}),
    ("rnn-relu", RNN, {"nonlinearity": "relu"}),
    ("lstm", LSTM, {}),
    ("gru-torch", GRU, {"variant": "torch"}),
    ("gru-cho", GRU, {"variant": "cho"}),
]
CELL_IDS = [name for name, _, _ in CELL_VARIANTS]
BACKENDS = ["numpy", "numba"]


@st.composite
def shapes(draw, max_t=12, max_b=5, max_d=8, max_h=8):
    """Draw (T, B, D, H) within the issue's ranges."""
    return (
        draw(st.integers(1, max_t)),
        draw(st.integers(1, max_b)),
        draw(st.integers(1, max_d)),
        draw(st.integers(1, max_h)),
    )


seeds = st.integers(0, 2**32 - 1)


def make_layer(variant, D, H, *, backend="numpy", dtype=np.float64, seed=0):
    """Build the layer of one CELL_VARIANTS entry by name."""
    for name, cls, kwargs in CELL_VARIANTS:
        if name == variant:
            return cls(D, H, backend=backend, dtype=dtype, seed=seed, **kwargs)
    raise KeyError(variant)

"""rnnrec: recurrent networks with hand-written BPTT, for session recommendation."""

from rnnrec.cells import GRU, LSTM, RNN, RecurrentLayer

__version__ = "0.1.0"

__all__ = ["GRU", "LSTM", "RNN", "RecurrentLayer", "__version__"]

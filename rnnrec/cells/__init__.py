"""The readable NumPy reference of the three recurrent cells.

Each module holds, in this order: the step forward, the step backward, the cache,
the sequence forward, backpropagation through time, and the layer class.
"""

from rnnrec.cells.base import RecurrentLayer
from rnnrec.cells.gru import GRU
from rnnrec.cells.lstm import LSTM
from rnnrec.cells.rnn import RNN

__all__ = ["GRU", "LSTM", "RNN", "RecurrentLayer"]

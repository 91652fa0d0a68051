"""rnnrec: recurrent networks with hand-written BPTT, for session recommendation."""

from rnnrec.cells import GRU, LSTM, RNN, RecurrentLayer
from rnnrec.clipping import clip_grad_norm, clip_grad_value
from rnnrec.evaluation import evaluate_next_click as evaluate
from rnnrec.gradcheck import check_gradients, check_layer
from rnnrec.model import SessionRecommender
from rnnrec.torch_bridge import from_torch, to_torch

__version__ = "0.1.0"

__all__ = [
    "GRU",
    "LSTM",
    "RNN",
    "RecurrentLayer",
    "SessionRecommender",
    "__version__",
    "check_gradients",
    "check_layer",
    "clip_grad_norm",
    "clip_grad_value",
    "evaluate",
    "from_torch",
    "to_torch",
]

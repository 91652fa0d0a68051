"""Exercises for the teaching notebooks, checked against rnnrec's reference.

A student writes a piece of a recurrent network (the RNN's step backward, the
LSTM's or the GRU's gates, a finite-difference gradient) and a checker runs it
on a random problem and compares every tensor it returns with the verified
implementation. The feedback says which tensor is wrong, at which entries and
by how much, and recognises common mistakes (a flipped sign, a missing term of
the chain rule, a gate order mixed up):

>>> import numpy as np
>>> from rnnrec.cells.rnn import rnn_step_backward
>>> from rnnrec.exercises import check_rnn_step_backward
>>> check_rnn_step_backward(rnn_step_backward).passed
True
>>> def no_slope(dh_t, x_t, h_prev, h_t, W_ih, W_hh):
...     return rnn_step_backward(dh_t / (1 - h_t**2), x_t, h_prev, h_t, W_ih, W_hh)
>>> feedback = check_rnn_step_backward(no_slope)
>>> print(feedback.verdict("dW_hh").details[-1])
hint: it equals what you get when the tanh derivative (1 - h_t**2) is left out

`rnnrec.exercises.strip` removes the worked solutions from the notebooks:
``python -m rnnrec.exercises strip notebooks/0[123]_*.ipynb --out-dir student``.
"""

from rnnrec.exercises.checks import (
    check_gru_step_forward,
    check_lstm_step_forward,
    check_numeric_gradient,
    check_rnn_step_backward,
)
from rnnrec.exercises.feedback import Feedback, TensorVerdict, compare_tensor
from rnnrec.exercises.strip import strip_file, strip_notebook, strip_source

__all__ = [
    "Feedback",
    "TensorVerdict",
    "check_gru_step_forward",
    "check_lstm_step_forward",
    "check_numeric_gradient",
    "check_rnn_step_backward",
    "compare_tensor",
    "strip_file",
    "strip_notebook",
    "strip_source",
]

"""Gradient dynamics: watch gradients vanish and explode, and clipping tame them.

Why the LSTM and the GRU exist, and why clipping is standard practice, can be
measured here exactly, with rnnrec's own BPTT and no finite differences.

Measurements, in the order a lesson meets them:

* `rnnrec.dynamics.linearize`: `StepJacobians`, one step's Jacobian applied to
  vectors, backwards by the cells' step backward and forwards by its tangent;
* `rnnrec.dynamics.flow`: `gradient_flow` (``||dL/dh_t||`` for every t),
  `jacobian_norms` (``||dh_T/dh_t||_2`` by power iteration),
  `explicit_jacobians` (the matrices, for small H) and `saturation`;
* `rnnrec.dynamics.spectrum`: singular values and spectral radius of each gate's
  block of ``W_hh`` (`recurrent_spectrum`), and `set_spectral_radius`.

Tasks and training:

* `rnnrec.dynamics.tasks`: `AddingProblem`, `CopyTask`, `SessionTask`;
* `rnnrec.dynamics.training`: `SequenceToOne` (a layer and a readout, with
  hand-written MSE and cross-entropy) and `train`, whose `TrainingLog` keeps the
  loss, the gradient norm before clipping and the clipping of every update.

Studies: `rnnrec.dynamics.studies` runs what ``rnnrec study`` prints and writes;
`rnnrec.dynamics.plots` draws the figures (matplotlib, optional).

Examples
--------
The gradient of a loss on the last step, 20 steps back, for a tanh RNN:

>>> import numpy as np
>>> from rnnrec import RNN
>>> from rnnrec.dynamics import gradient_flow, set_spectral_radius
>>> layer = set_spectral_radius(RNN(2, 8, seed=0, init="orthogonal"), 0.5)
>>> flow = gradient_flow(layer, np.zeros((20, 1, 2)), seed=0)
>>> bool(flow.norm[0, 0] <= 0.5**20)
True
"""

from rnnrec.dynamics.flow import (
    GradientFlow,
    JacobianNorms,
    Saturation,
    explicit_jacobians,
    gradient_flow,
    jacobian_norms,
    saturation,
)
from rnnrec.dynamics.linearize import StepJacobians
from rnnrec.dynamics.spectrum import (
    Spectrum,
    gate_blocks,
    recurrent_spectrum,
    set_spectral_radius,
    spectral_radius,
)
from rnnrec.dynamics.tasks import AddingProblem, CopyTask, SessionTask, make_task
from rnnrec.dynamics.training import SequenceToOne, TrainingLog, train

__all__ = [
    "AddingProblem",
    "CopyTask",
    "GradientFlow",
    "JacobianNorms",
    "Saturation",
    "SequenceToOne",
    "SessionTask",
    "Spectrum",
    "StepJacobians",
    "TrainingLog",
    "explicit_jacobians",
    "gate_blocks",
    "gradient_flow",
    "jacobian_norms",
    "make_task",
    "recurrent_spectrum",
    "saturation",
    "set_spectral_radius",
    "spectral_radius",
    "train",
]

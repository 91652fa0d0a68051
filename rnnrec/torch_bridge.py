"""Copy weights between rnnrec layers and one-layer PyTorch modules.

rnnrec's ``params`` use PyTorch's names without the ``_l0`` suffix and the same
gate order, so copying is a rename. PyTorch is imported only when these functions
are called; it is an optional dependency (``pip install rnnrec[torch]``).
"""

from __future__ import annotations

import numpy as np

from rnnrec.cells import GRU, LSTM, RNN
from rnnrec.cells.base import PARAM_NAMES


def _torch():
    try:
        import torch
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError(
            "this needs PyTorch; install it with `pip install rnnrec[torch]`"
        ) from None
    return torch


def _check_module(module):
    torch = _torch()
    kinds = (torch.nn.RNN, torch.nn.LSTM, torch.nn.GRU)
    if not isinstance(module, kinds):
        raise TypeError(
            "module must be a torch.nn.RNN, torch.nn.LSTM or torch.nn.GRU, got "
            f"{type(module).__name__}"
        )
    problems = []
    if module.num_layers != 1:
        problems.append(f"num_layers={module.num_layers} (need 1)")
    if module.bidirectional:
        problems.append("bidirectional=True (need False)")
    if not module.bias:
        problems.append("bias=False (need True)")
    if getattr(module, "proj_size", 0):
        problems.append(f"proj_size={module.proj_size} (need 0)")
    if problems:
        raise ValueError("cannot copy this module: " + ", ".join(problems))
    return torch


def from_torch(module, *, backend="numba"):
    """Build an rnnrec layer holding a copy of a PyTorch module's weights.

    Parameters
    ----------
    module : torch.nn.RNN, torch.nn.LSTM or torch.nn.GRU
        One layer, unidirectional, with biases.
    backend : {"numba", "numpy"}, default "numba"
        Backend of the new layer.

    Returns
    -------
    RNN, LSTM or GRU
        A layer of the module's dtype (float32 or float64); a GRU gets
        ``variant="torch"``, the equations PyTorch uses.
    """
    torch = _check_module(module)
    weight_dtype = module.weight_hh_l0.dtype
    if weight_dtype not in (torch.float32, torch.float64):
        raise TypeError(
            f"module weights must be float32 or float64, got {weight_dtype}"
        )
    params = {
        name: getattr(module, f"{name}_l0").detach().cpu().numpy().copy()
        for name in PARAM_NAMES
    }
    dtype = params["weight_hh"].dtype
    sizes = (module.input_size, module.hidden_size)
    if isinstance(module, torch.nn.LSTM):
        layer = LSTM(*sizes, dtype=dtype, backend=backend)
    elif isinstance(module, torch.nn.GRU):
        layer = GRU(*sizes, dtype=dtype, backend=backend, variant="torch")
    else:
        layer = RNN(
            *sizes, dtype=dtype, backend=backend, nonlinearity=module.nonlinearity
        )
    layer.load_params(params)
    return layer


def to_torch(layer):
    """Build a PyTorch module holding a copy of an rnnrec layer's weights.

    Parameters
    ----------
    layer : RNN, LSTM or GRU
        The layer; a GRU must have ``variant="torch"`` (PyTorch has no Cho GRU).

    Returns
    -------
    torch.nn.RNN, torch.nn.LSTM or torch.nn.GRU
        A one-layer module of the layer's dtype, time-major
        (``batch_first=False``), as rnnrec is.
    """
    torch = _torch()
    if not isinstance(layer, (RNN, LSTM, GRU)):
        raise TypeError(
            f"layer must be an RNN, LSTM or GRU, got {type(layer).__name__}"
        )
    sizes = (layer.input_size, layer.hidden_size)
    if isinstance(layer, LSTM):
        module = torch.nn.LSTM(*sizes)
    elif isinstance(layer, GRU):
        if layer.variant != "torch":
            raise ValueError(
                f"PyTorch's GRU uses variant 'torch'; this layer is {layer.variant!r}"
            )
        module = torch.nn.GRU(*sizes)
    else:
        module = torch.nn.RNN(*sizes, nonlinearity=layer.nonlinearity)
    module = module.to(torch.float64 if layer.dtype == np.float64 else torch.float32)
    with torch.no_grad():
        for name in PARAM_NAMES:
            getattr(module, f"{name}_l0").copy_(torch.from_numpy(layer.params[name]))
    return module

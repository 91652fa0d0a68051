"""Measure how far float32 forward passes and gradients fall from rnnrec's float64.

For every cell and shape of `bench_cells.py` one rnnrec layer is built in
float64 (seed 0, PyTorch's initialisation), with random inputs ``x (T, B, D)``,
initial state ``h0`` (and ``c0``) ``(B, H)`` and output gradient ``G (T, B,
H)``. The weights and inputs are rounded to float32 first and held in float64,
so every implementation starts from exactly the same numbers and the errors
below are those of float32 arithmetic alone, not of rounding the inputs.

The reference is rnnrec's NumPy backend in float64: its forward pass and its
hand-written BPTT of the loss ``sum(out * G)``. Compared with it, on the same
weights and inputs:

- ``torch``: PyTorch's ``nn.RNN``, ``nn.LSTM``, ``nn.GRU`` in float32 (built by
  `rnnrec.torch_bridge.to_torch`), gradients by autograd; PyTorch has no Cho
  GRU, so ``gru-cho`` has no PyTorch row;
- ``jax``: the ``jax.lax.scan`` twin of `jax_cells.py` in float32, gradients by
  `jax.vjp`;
- ``rnnrec-numba`` and ``rnnrec-numpy``: rnnrec's own two backends in float32,
  for context;
- ``rnnrec-numba`` in float64: the two backends' agreement at full precision,
  which shows that the reference itself is not in doubt.

The error of one tensor ``a`` against its reference ``b`` is the normwise
relative error ``max|a - b| / max|b|`` (maxima over all entries). It is
reported for the forward tensors (``out``, and ``c_T`` for the LSTM) and for
the gradient tensors (``x``, ``h0``, ``c0``, ``weight_ih``, ``weight_hh``,
``bias_ih``, ``bias_hh``); each row gives the worst over the forward tensors and
the worst over the gradients, with the name of the worst tensor. The entrywise
relative error is not used: it is unbounded wherever the reference is near 0
(relu units, gradients that cancel), which says nothing about the arithmetic.

The relu RNN is not differentiable where a pre-activation is 0. Where one
lies within rounding of 0, float32 can switch the unit on while float64 keeps
it off (or the reverse); the derivative there is then 1 against 0, and the
gradients differ by a whole term, not by rounding. Each ``rnn-relu`` row counts
such units in ``relu_flips`` (entries of ``out`` that are zero in one run and
positive in the other); a row with flips is exempt from the gradient limit
below, since a flip says nothing against the implementation.

Each row also records the wall time of its run in seconds, first-call
compilation included; it shows where the run spends its time and is no speed
measurement (those are `bench_cells.py`'s).

Usage::

    python benchmarks/bench_accuracy.py --threads 1

``--quick`` runs the tiny shape only; ``--help`` lists the options. Results go
to ``benchmarks/results/framework_error.json``; ``report.py`` turns them into a
Markdown table. The script exits with status 1 if any error is not finite or
exceeds ``--max-error`` (gradients of rows with relu flips excepted), a sign
that two implementations compute different functions rather than round
differently.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)  # benchmarks/ is a folder of scripts: import a sibling
import bench_cells  # noqa: E402

DEFAULT_OUT = os.path.join(HERE, "results", "framework_error.json")
IMPLEMENTATIONS = (  # (name, dtype) in the order of the table's columns
    ("torch", "float32"),
    ("jax", "float32"),
    ("rnnrec-numba", "float32"),
    ("rnnrec-numpy", "float32"),
    ("rnnrec-numba", "float64"),
)
PARAM_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def relative_error(a, b):
    """Normwise relative error ``max|a - b| / max|b|`` of ``a`` against ``b``.

    Parameters
    ----------
    a : numpy.ndarray
        The tensor under test, any float dtype.
    b : numpy.ndarray
        The reference, same shape.

    Returns
    -------
    float
        The error, computed in float64; ``max|a - b|`` itself when ``b`` is
        all zeros, and infinity when ``a`` holds a NaN or an infinity.
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} against {b.shape}")
    if not np.all(np.isfinite(a)):
        return float("inf")
    scale = np.abs(b).max()
    diff = np.abs(a - b).max()
    return float(diff / scale) if scale > 0 else float(diff)


def make_problem(cell, shape_name, seed):
    """Build the float64 layer and the inputs of one comparison.

    Parameters
    ----------
    cell : str
        One of ``bench_cells.CELLS``.
    shape_name : str
        One of ``bench_cells.SHAPES``.
    seed : int
        Seeds the inputs, together with the cell and shape, so that a subset of
        cells or shapes draws the same numbers as the full run.

    Returns
    -------
    layer : rnnrec.RNN, rnnrec.LSTM or rnnrec.GRU
        Float64, NumPy backend, weights holding float32 values.
    x : numpy.ndarray
        ``(T, B, D)``, float64 holding float32 values.
    state0 : numpy.ndarray or tuple of numpy.ndarray
        ``h0 (B, H)``; for the LSTM ``(h0, c0)``; float64 holding float32 values.
    G : numpy.ndarray
        ``(T, B, H)``, the gradient of the loss with respect to ``out``.
    """
    B, T, D, H = bench_cells.SHAPES[shape_name]
    layer = bench_cells.make_layer(cell, D, H, np.float64, "numpy")
    layer.load_params({k: v.astype(np.float32) for k, v in layer.params.items()})
    cell_index = bench_cells.CELLS.index(cell)
    shape_index = list(bench_cells.SHAPES).index(shape_name)
    rng = np.random.default_rng([seed, shape_index, cell_index])

    def draw(shape, scale=1.0):
        return (scale * rng.standard_normal(shape)).astype(np.float32).astype(float)

    x = draw((T, B, D))  # (T, B, D)
    h0 = draw((B, H), 0.5)  # (B, H)
    state0 = (h0, draw((B, H), 0.5)) if cell == "lstm" else h0
    G = draw((T, B, H))  # (T, B, H)
    return layer, x, state0, G


def _named_tensors(final, grads_x, grads_state0, grads_params, has_cell_state):
    """Name the tensors of one run the way every implementation does."""
    forward = {}
    grads = {"x": grads_x}
    if has_cell_state:
        forward["c_T"] = final[1]
        grads["h0"], grads["c0"] = grads_state0
    else:
        grads["h0"] = grads_state0
    grads.update({name: grads_params[name] for name in PARAM_NAMES})
    return forward, grads


def run_rnnrec(cell, layer64, dtype, backend, x, state0, G):
    """Forward and BPTT with an rnnrec layer of ``dtype`` on the given backend.

    Parameters
    ----------
    cell : str
        One of ``bench_cells.CELLS``, the cell of ``layer64``.
    layer64 : rnnrec.RNN, rnnrec.LSTM or rnnrec.GRU
        Supplies the weights.
    dtype : {"float32", "float64"}
        Precision of the run.
    backend : {"numba", "numpy"}
        rnnrec's backend.
    x, state0, G : numpy.ndarray or tuple
        As returned by `make_problem`.

    Returns
    -------
    forward : dict of str to numpy.ndarray
        ``"out"`` (and ``"c_T"`` for the LSTM).
    grads : dict of str to numpy.ndarray
        ``"x"``, ``"h0"`` (``"c0"``) and the four parameters.
    """
    dtype = np.dtype(dtype)
    D, H = layer64.input_size, layer64.hidden_size
    layer = bench_cells.make_layer(cell, D, H, dtype, backend)
    layer.load_params(layer64.params)
    if layer64.has_cell_state:
        state = tuple(s.astype(dtype) for s in state0)
    else:
        state = state0.astype(dtype)
    out, final, cache = layer.forward(x.astype(dtype), state)
    dx, d_state0, d_params = layer.backward(G.astype(dtype), cache)
    forward, grads = _named_tensors(final, dx, d_state0, d_params, layer.has_cell_state)
    return {"out": out, **forward}, grads


def run_torch(cell, layer64, x, state0, G):
    """Forward and autograd in PyTorch float32 on the layer's weights.

    Parameters
    ----------
    cell : str
        One of ``bench_cells.CELLS`` but ``"gru-cho"`` (PyTorch has no Cho GRU).
    layer64 : rnnrec.RNN, rnnrec.LSTM or rnnrec.GRU
        Supplies the weights.
    x, state0, G : numpy.ndarray or tuple
        As returned by `make_problem`.

    Returns
    -------
    forward, grads : dict of str to numpy.ndarray
        As `run_rnnrec` returns them, float32.
    """
    import torch

    from rnnrec.torch_bridge import to_torch

    f32 = np.float32
    D, H = layer64.input_size, layer64.hidden_size
    layer32 = bench_cells.make_layer(cell, D, H, f32, "numpy")
    layer32.load_params(layer64.params)
    module = to_torch(layer32)

    def leaf(a):
        return torch.from_numpy(np.ascontiguousarray(a, dtype=f32)).requires_grad_()

    xt = leaf(x)
    if layer64.has_cell_state:
        state = (leaf(state0[0][None]), leaf(state0[1][None]))  # (1, B, H) each
    else:
        state = leaf(state0[None])  # (1, B, H)
    out, final = module(xt, state)
    out.backward(torch.from_numpy(G.astype(f32)))

    def numpy(t):
        return t.detach().numpy()

    if layer64.has_cell_state:
        final = (numpy(final[0][0]), numpy(final[1][0]))
        d_state0 = (numpy(state[0].grad[0]), numpy(state[1].grad[0]))
    else:
        final, d_state0 = numpy(final[0]), numpy(state.grad[0])
    d_params = {name: numpy(getattr(module, f"{name}_l0").grad) for name in PARAM_NAMES}
    forward, grads = _named_tensors(
        final, numpy(xt.grad), d_state0, d_params, layer64.has_cell_state
    )
    return {"out": numpy(out), **forward}, grads


def run_jax(layer64, x, state0, G):
    """Forward and `jax.vjp` of the ``jax.lax.scan`` twin in float32.

    Parameters
    ----------
    layer64 : rnnrec.RNN, rnnrec.LSTM or rnnrec.GRU
        Supplies the cell and the weights.
    x, state0, G : numpy.ndarray or tuple
        As returned by `make_problem`.

    Returns
    -------
    forward, grads : dict of str to numpy.ndarray
        As `run_rnnrec` returns them, float32.
    """
    import jax_cells

    out, final, grads = jax_cells.forward_and_grads(
        layer64, x, state0, G, dtype=np.float32
    )
    forward = {"out": out}
    if layer64.has_cell_state:
        forward["c_T"] = final[1]
    return forward, grads


def compare(tensors, reference):
    """Errors of every tensor against the reference, and the worst of them.

    Parameters
    ----------
    tensors, reference : dict of str to numpy.ndarray
        The same names in both.

    Returns
    -------
    worst : float
        The largest error.
    worst_name : str
        The tensor it belongs to.
    errors : dict of str to float
        The error of every tensor (see `relative_error`).
    """
    if set(tensors) != set(reference):
        raise ValueError(f"tensors {sorted(tensors)} against {sorted(reference)}")
    errors = {
        name: relative_error(tensors[name], reference[name]) for name in reference
    }
    worst_name = max(errors, key=errors.get)
    return errors[worst_name], worst_name, errors


def run_implementation(name, dtype, cell, layer64, x, state0, G):
    """Dispatch to `run_torch`, `run_jax` or `run_rnnrec` by implementation name.

    Parameters
    ----------
    name : str
        ``"torch"``, ``"jax"``, ``"rnnrec-numba"`` or ``"rnnrec-numpy"``.
    dtype : {"float32", "float64"}
        Precision (PyTorch and JAX run in float32 only).
    cell, layer64, x, state0, G
        As `run_rnnrec` takes them.

    Returns
    -------
    forward, grads : dict of str to numpy.ndarray
        As `run_rnnrec` returns them.
    """
    if name == "torch":
        return run_torch(cell, layer64, x, state0, G)
    if name == "jax":
        return run_jax(layer64, x, state0, G)
    backend = name.split("-")[1]
    return run_rnnrec(cell, layer64, dtype, backend, x, state0, G)


def relu_flips(out, ref_out):
    """Count the units active (``h > 0``) in one run and inactive in the other.

    Parameters
    ----------
    out, ref_out : numpy.ndarray
        The outputs ``(T, B, H)`` of a relu RNN in two precisions.

    Returns
    -------
    int
        The number of entries where exactly one of the two is positive.
    """
    return int(np.count_nonzero((out > 0) != (ref_out > 0)))


def measure(cells, shapes, implementations, seed):
    """Compare every implementation with the float64 reference; return the rows."""
    rows = []
    for shape_name in shapes:
        B, T, D, H = bench_cells.SHAPES[shape_name]
        for cell in cells:
            layer, x, state0, G = make_problem(cell, shape_name, seed)
            ref_forward, ref_grads = run_rnnrec(
                cell, layer, "float64", "numpy", x, state0, G
            )
            for name, dtype in implementations:
                if name == "torch" and cell == "gru-cho":
                    continue  # PyTorch has no Cho GRU
                start = time.perf_counter()
                forward, grads = run_implementation(
                    name, dtype, cell, layer, x, state0, G
                )
                seconds = time.perf_counter() - start

                dtypes = {str(a.dtype) for a in (*forward.values(), *grads.values())}
                if dtypes != {dtype}:
                    raise RuntimeError(f"{name} computed in {dtypes}, not {dtype}")
                fwd, fwd_name, fwd_errors = compare(forward, ref_forward)
                grad, grad_name, grad_errors = compare(grads, ref_grads)
                flips = None
                if cell == "rnn-relu":
                    flips = relu_flips(forward["out"], ref_forward["out"])
                row = {
                    "cell": cell,
                    "shape": shape_name,
                    "B": B,
                    "T": T,
                    "D": D,
                    "H": H,
                    "implementation": name,
                    "dtype": dtype,
                    "forward_error": fwd,
                    "forward_worst": fwd_name,
                    "gradient_error": grad,
                    "gradient_worst": grad_name,
                    "errors": {**fwd_errors, **grad_errors},
                    "relu_flips": flips,
                    "seconds": seconds,
                }
                rows.append(row)
                print(format_row(row), flush=True)
    return rows


HEADER = (
    f"{'cell':<10} {'shape':<9} {'implementation':<14} {'dtype':<8} "
    f"{'forward':>9} {'worst':<5} {'gradient':>9} {'worst':<9} {'seconds':>7}"
)


def format_row(row):
    return (
        f"{row['cell']:<10} {row['shape']:<9} {row['implementation']:<14} "
        f"{row['dtype']:<8} {row['forward_error']:9.2e} {row['forward_worst']:<5} "
        f"{row['gradient_error']:9.2e} {row['gradient_worst']:<9} "
        f"{row['seconds']:7.2f}"
        + ("" if row["relu_flips"] is None else f"  relu flips {row['relu_flips']}")
    )


def within(row, max_error):
    """Whether a row's errors are finite and at most ``max_error``.

    Parameters
    ----------
    row : dict
        A row of `measure`.
    max_error : float
        The limit.

    Returns
    -------
    bool
        False for a NaN, an infinity or an error above the limit; the gradient
        error of a row with relu flips need only be finite (see the module
        docstring).
    """
    if not row["forward_error"] <= max_error:  # also False for NaN
        return False
    if not np.isfinite(row["gradient_error"]):
        return False
    return bool(row["relu_flips"]) or row["gradient_error"] <= max_error


def limit_jax_threads(threads):
    """Ask XLA for ``threads`` CPU threads; effective only before JAX is imported.

    Parameters
    ----------
    threads : int
        Number of threads.

    Returns
    -------
    bool
        Whether the setting can take effect (JAX was not imported yet).
    """
    if "jax" in sys.modules:
        return False
    flags = (
        f"--xla_cpu_multi_thread_eigen={'true' if threads > 1 else 'false'} "
        f"intra_op_parallelism_threads={threads}"
    )
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {flags}".strip()
    return True


def machine_info(threads, jax_threads_set):
    """`bench_cells.machine_info` with the JAX and jaxlib versions added."""
    info = bench_cells.machine_info(threads)
    try:
        import jax
        import jaxlib

        info["jax"] = jax.__version__
        info["jaxlib"] = jaxlib.__version__
        info["jax_threads"] = threads if jax_threads_set else "default"
    except ImportError:
        pass
    return info


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--cells", nargs="+", choices=bench_cells.CELLS, default=list(bench_cells.CELLS)
    )
    parser.add_argument(
        "--shapes",
        nargs="+",
        choices=list(bench_cells.SHAPES),
        default=list(bench_cells.SHAPES),
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0, help="seeds the inputs")
    parser.add_argument(
        "--max-error",
        type=float,
        default=1e-3,
        help="exit with status 1 if any error exceeds this",
    )
    parser.add_argument("--quick", action="store_true", help="the tiny shape only")
    parser.add_argument("--out", default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if args.threads < 1:
        parser.error(f"--threads must be at least 1, got {args.threads}")
    if args.quick:
        args.shapes = ["tiny"]

    jax_threads_set = limit_jax_threads(args.threads)
    from threadpoolctl import threadpool_limits

    import rnnrec.kernels

    implementations = list(IMPLEMENTATIONS)
    try:
        import torch

        torch.set_num_threads(args.threads)
    except ImportError:
        print("PyTorch is not installed: no torch rows")
        implementations = [i for i in implementations if i[0] != "torch"]
    try:
        import jax_cells  # noqa: F401
    except ImportError:
        print("JAX is not installed (pip install .[jax]): no jax rows")
        implementations = [i for i in implementations if i[0] != "jax"]

    start = time.perf_counter()
    with threadpool_limits(limits=args.threads):
        rnnrec.kernels.set_blas_threads(args.threads)
        print(HEADER, flush=True)
        rows = measure(args.cells, args.shapes, implementations, args.seed)
    result = {
        "kind": "framework_error",
        "error": "max|a - b| / max|b| per tensor against rnnrec NumPy float64; "
        "worst over the forward tensors and over the gradient tensors",
        "reference": {"implementation": "rnnrec-numpy", "dtype": "float64"},
        "settings": {
            "seed": args.seed,
            "threads": args.threads,
            "loss": "sum(out * G)",
            "inputs": "weights and inputs rounded to float32 values",
        },
        "machine": machine_info(args.threads, jax_threads_set),
        "seconds": time.perf_counter() - start,
        "rows": rows,
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    from rnnrec.io import atomic_write_text

    atomic_write_text(args.out, json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")

    bad = [r for r in rows if not within(r, args.max_error)]
    for r in bad:
        print(f"error above {args.max_error:g}: {format_row(r)}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

"""Time the recurrent cells: rnnrec's NumPy and Numba backends against PyTorch.

For every cell, shape and dtype this measures forward and forward+backward of
the three implementations on the same weights and inputs, alternating between
them inside one process so that the machine's load affects all alike, and reports
the median time, the achieved GFLOP/s of the matrix products, and the ratio to
PyTorch measured in the same run.

Matrix-product FLOPs per call: forward ``2*B*T*(D+H)*G*H``, backward twice
that. PyTorch runs with autograd (``backward`` on ``sum(out * G)``), rnnrec with
its hand-written BPTT; all three use the same number of threads.

Run ``python benchmarks/bench_cells.py`` for the full table (several minutes),
``--quick`` for a smoke run; ``--help`` lists the options. Results go to
``benchmarks/results/bench_cells.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np

SHAPES = {  # name: (B, T, D, H)
    "tiny": (1, 20, 32, 32),
    "teaching": (32, 50, 64, 128),
    "medium": (128, 50, 128, 256),
    "large": (256, 100, 256, 512),
}
CELLS = ("rnn-tanh", "rnn-relu", "lstm", "gru-torch", "gru-cho")
TARGETS = {"tiny": 0.25, "teaching": 1.0, "medium": 0.9, "large": 0.9}
HERE = os.path.dirname(os.path.abspath(__file__))


def make_layer(cell, D, H, dtype, backend):
    import rnnrec

    if cell.startswith("rnn"):
        return rnnrec.RNN(
            D, H, nonlinearity=cell[4:], dtype=dtype, backend=backend, seed=0
        )
    if cell == "lstm":
        return rnnrec.LSTM(D, H, dtype=dtype, backend=backend, seed=0)
    return rnnrec.GRU(D, H, variant=cell[4:], dtype=dtype, backend=backend, seed=0)


def rnnrec_runner(layer, x, g):
    """Return (forward, forward+backward) closures for an rnnrec layer."""

    def forward():
        layer.forward(x)

    def forward_backward():
        out, _, cache = layer.forward(x)
        layer.backward(g, cache)

    return forward, forward_backward


def torch_runner(layer, x, g):
    """Return the same closures for the PyTorch module with the same weights."""
    import torch

    from rnnrec.torch_bridge import to_torch

    module = to_torch(layer)
    xt = torch.from_numpy(x)
    gt = torch.from_numpy(g)

    def forward():
        with torch.no_grad():
            module(xt)

    def forward_backward():
        module.zero_grad(set_to_none=True)
        xg = xt.detach().requires_grad_(True)
        out, _ = module(xg)
        out.backward(gt)

    return forward, forward_backward


def timed(fn, min_time):
    """Median seconds per call over repeats lasting at least ``min_time`` in all."""
    fn()  # warm-up (compilation, allocation)
    times, start = [], time.perf_counter()
    while len(times) < 3 or (
        time.perf_counter() - start < min_time and len(times) < 50
    ):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def bench(cells, shapes, dtypes, backends, rounds, min_time):
    rows = []
    for shape_name in shapes:
        B, T, D, H = SHAPES[shape_name]
        for dtype_name in dtypes:
            dtype = np.dtype(dtype_name)
            rng = np.random.default_rng(0)
            x = rng.standard_normal((T, B, D)).astype(dtype)
            g = rng.standard_normal((T, B, H)).astype(dtype)
            for cell in cells:
                runners = {}
                for backend in backends:
                    if backend == "torch":
                        if cell == "gru-cho":
                            continue  # PyTorch has no Cho GRU
                        base = make_layer(cell, D, H, dtype, "numpy")
                        runners[backend] = torch_runner(base, x, g)
                    else:
                        layer = make_layer(cell, D, H, dtype, backend)
                        runners[backend] = rnnrec_runner(layer, x, g)
                # Alternate implementations round by round; keep each one's best.
                best = {}
                for _ in range(rounds):
                    for backend, (fwd, fwdbwd) in runners.items():
                        t_f = timed(fwd, min_time)
                        t_fb = timed(fwdbwd, min_time)
                        old = best.get(backend, (np.inf, np.inf))
                        best[backend] = (min(old[0], t_f), min(old[1], t_fb))
                G = {"rnn": 1, "lst": 4, "gru": 3}[cell[:3]]
                flops = 2 * B * T * (D + H) * G * H
                torch_fb = best.get("torch", (None, None))[1]
                torch_f = best.get("torch", (None, None))[0]
                for backend, (t_f, t_fb) in best.items():
                    row = {
                        "cell": cell,
                        "shape": shape_name,
                        "B": B,
                        "T": T,
                        "D": D,
                        "H": H,
                        "dtype": dtype_name,
                        "backend": backend,
                        "forward_ms": 1e3 * t_f,
                        "forward_backward_ms": 1e3 * t_fb,
                        "forward_gflops": flops / t_f / 1e9,
                        "forward_backward_gflops": 3 * flops / t_fb / 1e9,
                        "forward_ratio_to_torch": t_f / torch_f if torch_f else None,
                        "ratio_to_torch": t_fb / torch_fb if torch_fb else None,
                    }
                    rows.append(row)
                    print(format_row(row), flush=True)
    return rows


HEADER = (
    f"{'cell':<10} {'shape':<9} {'dtype':<8} {'backend':<7} {'fwd ms':>9} "
    f"{'fwd+bwd ms':>11} {'GFLOP/s':>8} {'fwd/torch':>9} {'f+b/torch':>9} {'target':>6}"
)


def format_row(row):
    def ratio(v):
        return f"{v:9.2f}" if v is not None else f"{'-':>9}"

    target = TARGETS[row["shape"]] if row["backend"] == "numba" else None
    return (
        f"{row['cell']:<10} {row['shape']:<9} {row['dtype']:<8} {row['backend']:<7} "
        f"{row['forward_ms']:9.3f} {row['forward_backward_ms']:11.3f} "
        f"{row['forward_backward_gflops']:8.1f} {ratio(row['forward_ratio_to_torch'])} "
        f"{ratio(row['ratio_to_torch'])} {'' if target is None else target:>6}"
    )


def machine_info(threads):
    import numba

    import rnnrec.kernels

    info = {
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "numba": numba.__version__,
        "machine": platform.machine(),
        "processor": _cpu_name(),
        "threads": threads,
        "blas": _blas_description(rnnrec.kernels.BLAS),
    }
    try:
        import torch

        info["torch"] = torch.__version__
    except ImportError:
        pass
    return info


def _blas_description(kernels_blas):
    """Describe the BLAS the kernels call: its version and kernel family."""
    from threadpoolctl import threadpool_info

    for lib in threadpool_info():
        if lib.get("internal_api") == "openblas" and "numpy" in lib["filepath"]:
            return (
                f"{kernels_blas}, OpenBLAS {lib.get('version')} "
                f"{lib.get('architecture')} kernels"
            )
    return kernels_blas


def _cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", nargs="+", choices=CELLS, default=list(CELLS))
    parser.add_argument(
        "--shapes", nargs="+", choices=list(SHAPES), default=list(SHAPES)
    )
    parser.add_argument(
        "--dtypes",
        nargs="+",
        choices=("float32", "float64"),
        default=["float32", "float64"],
    )
    parser.add_argument(
        "--backends",
        nargs="+",
        choices=("numpy", "numba", "torch"),
        default=["numpy", "numba", "torch"],
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds")
    parser.add_argument(
        "--min-time", type=float, default=0.3, help="seconds per timing"
    )
    parser.add_argument(
        "--quick", action="store_true", help="tiny and teaching, 1 round"
    )
    parser.add_argument(
        "--out", default=os.path.join(HERE, "results", "bench_cells.json")
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.shapes = [s for s in args.shapes if s in ("tiny", "teaching")]
        args.rounds, args.min_time = 1, 0.05

    from threadpoolctl import threadpool_limits

    import rnnrec.kernels  # noqa: F401  (sets up the BLAS the kernels call)

    try:
        import torch

        torch.set_num_threads(args.threads)
    except ImportError:
        args.backends = [b for b in args.backends if b != "torch"]
    with threadpool_limits(limits=args.threads):
        rnnrec.kernels.set_blas_threads(args.threads)
        print(HEADER, flush=True)
        rows = bench(
            args.cells,
            args.shapes,
            args.dtypes,
            args.backends,
            args.rounds,
            args.min_time,
        )
    result = {"machine": machine_info(args.threads), "rows": rows}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    from rnnrec.io import atomic_write_text

    atomic_write_text(args.out, json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

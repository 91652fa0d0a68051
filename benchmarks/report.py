"""Turn ``benchmarks/results/bench_cells.json`` into the README's Markdown table.

Usage: ``python benchmarks/report.py [path/to/bench_cells.json]``; prints the
machine line and one table row per cell, shape and dtype (forward+backward).
"""

from __future__ import annotations

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TARGETS = {"tiny": 0.25, "teaching": 1.0, "medium": 0.9, "large": 0.9}


def table(result):
    rows = {}
    for row in result["rows"]:
        key = (row["cell"], row["shape"], row["dtype"])
        rows.setdefault(key, {})[row["backend"]] = row
    m = result["machine"]
    lines = [
        f"Machine: {m['processor']}, {m['threads']} thread(s); Python {m['python']}, "
        f"NumPy {m['numpy']}, Numba {m['numba']}, PyTorch {m.get('torch', '-')}; "
        f"BLAS: {m.get('blas', '-')}.",
        "",
        "| cell | shape (B, T, D, H) | dtype | NumPy ms | Numba ms | PyTorch ms "
        "| Numba GFLOP/s | Numba / PyTorch | target | met |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|:-:|",
    ]
    for (cell, shape, dtype), by in rows.items():
        any_row = next(iter(by.values()))
        dims = (
            f"{shape} ({any_row['B']}, {any_row['T']}, {any_row['D']}, {any_row['H']})"
        )

        def ms(backend, by=by):
            row = by.get(backend)
            return f"{row['forward_backward_ms']:.3f}" if row else "-"

        numba = by.get("numba")
        ratio = numba["ratio_to_torch"] if numba else None
        target = TARGETS[shape]
        met = "-" if ratio is None else ("yes" if ratio <= target else "**no**")
        lines.append(
            f"| {cell} | {dims} | {dtype} | {ms('numpy')} | {ms('numba')} | "
            f"{ms('torch')} | "
            f"{numba['forward_backward_gflops']:.1f} | "
            f"{'-' if ratio is None else f'{ratio:.2f}'} | {target} | {met} |"
            if numba
            else f"| {cell} | {dims} | {dtype} | {ms('numpy')} | - | {ms('torch')} "
            "| - | - | - | - |"
        )
    return "\n".join(lines)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    path = argv[0] if argv else os.path.join(HERE, "results", "bench_cells.json")
    with open(path, encoding="utf-8") as f:
        print(table(json.load(f)))


if __name__ == "__main__":
    main()

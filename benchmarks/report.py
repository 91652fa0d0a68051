"""Turn benchmark JSON into the README's Markdown tables.

Usage: ``python benchmarks/report.py [path/to/result.json ...]``. For
``bench_cells.json`` (the default) it prints the machine line and one row per
cell, shape and dtype (forward+backward); for the output of ``tune.py`` one row
per trial: its settings, Recall@20, MRR@20, seconds per epoch, events per
second and parameter count (several such files make one table).
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


def trials_table(result, k=20):
    """One Markdown row per trial of a ``tune.py`` result."""
    lines = [
        f"Scored on: {result.get('scored_on', '-')}; "
        f"BLAS threads: {result.get('threads') or 'default'}.",
        "",
        f"| settings | Recall@{k} | MRR@{k} | s / epoch | events / s | parameters |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for trial in result["trials"]:
        settings = ", ".join(f"{n}={v}" for n, v in trial["settings"].items())
        m = trial["metrics"]
        per_epoch = trial.get("seconds_per_epoch")
        n_params = trial.get("n_parameters")
        lines.append(
            f"| {settings} | {100 * m[f'recall@{k}']:.2f} | {100 * m[f'mrr@{k}']:.2f} "
            f"| {'-' if per_epoch is None else f'{per_epoch:.0f}'} "
            f"| {trial['events_per_second']:,.0f} "
            f"| {'-' if n_params is None else f'{n_params:,}'} |"
        )
    return "\n".join(lines)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    paths = argv or [os.path.join(HERE, "results", "bench_cells.json")]
    results = []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            results.append(json.load(f))
    if all("trials" in result for result in results):
        # Several tune.py files make one table (e.g. one file per core).
        merged = dict(results[0], trials=[t for r in results for t in r["trials"]])
        print(trials_table(merged))
    else:
        for result in results:
            print(table(result))


if __name__ == "__main__":
    main()

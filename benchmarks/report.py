"""Turn benchmark JSON into the README's Markdown tables.

Usage: ``python benchmarks/report.py [path/to/result.json ...]``. For
``bench_cells.json`` (the default) it prints the machine line and one row per
cell, shape and dtype (forward+backward); for the output of ``tune.py`` one row
per trial: its settings, Recall@20, MRR@20, seconds per epoch, events per
second and parameter count (several such files make one table); for
``bench_train.py`` and ``bench_eval.py`` results their summary tables; for
``bench_accuracy.py`` (``framework_error.json``) the float32 error of every
implementation against rnnrec's float64; for ``bench_threads.py`` and
``bench_commits.py`` rnnrec's speed per thread arrangement or per commit.
``--chart PATH`` also writes a PNG bar chart of rnnrec's speed relative to
PyTorch over all the files given.
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


def train_table(result):
    """Tabulate a ``bench_train.py`` summary: one row per data set and side."""
    threads = result.get("settings", {}).get("threads", "-")
    lines = [
        f"Threads: {threads}.",
        "",
        "| data set | implementation | epochs | s / epoch | events / s | vs PyTorch "
        "| Recall@20 | MRR@20 |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in result["summary"]:

        def pct(key, row=row):
            return "-" if row.get(key) is None else f"{100 * row[key]:.2f}"

        lines.append(
            f"| {row['dataset']} | {row['implementation']} | {row['epochs']} "
            f"| {row['seconds_per_epoch']:.1f} | {row['events_per_second']:,.0f} "
            f"| {row['speed_vs_torch']:.2f} | {pct('recall@20')} | {pct('mrr@20')} |"
        )
    return "\n".join(lines)


def best_eval_rows(result):
    """Pick the fastest round of every (data set, scorer) of ``bench_eval.py``."""
    best = {}
    for row in result["rows"]:
        key = (row["dataset"], row["scorer"])
        if key not in best or row["seconds"] < best[key]["seconds"]:
            best[key] = row
    return best


def eval_table(result):
    """One row per data set and scorer of a ``bench_eval.py`` result.

    Speeds are relative to PyTorch's own evaluation (``torch-e2e``, the target's
    comparison) and to the PyTorch scorer under rnnrec's evaluator (``torch``);
    "-" where a result lacks that scorer.
    """
    best = best_eval_rows(result)
    lines = [
        f"Threads: {result.get('threads', '-')}; best of the rounds.",
        "",
        "| data set | scorer | items | predictions | predictions / s "
        "| vs PyTorch end to end | vs PyTorch scorer |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for (name, scorer), row in best.items():
        speed = row["predictions_per_second"]
        ratios = [
            f"{speed / best[(name, other)]['predictions_per_second']:.2f}"
            if (name, other) in best
            else "-"
            for other in ("torch-e2e", "torch")
        ]
        lines.append(
            f"| {name} | {scorer} | {row['n_items']:,} | {row['predictions']:,} "
            f"| {speed:,.0f} | {ratios[0]} | {ratios[1]} |"
        )
    return "\n".join(lines)


ERROR_COLUMNS = (  # (implementation, dtype, heading)
    ("torch", "float32", "PyTorch f32"),
    ("jax", "float32", "JAX f32"),
    ("rnnrec-numba", "float32", "rnnrec Numba f32"),
    ("rnnrec-numpy", "float32", "rnnrec NumPy f32"),
    ("rnnrec-numba", "float64", "rnnrec Numba f64"),
)


def error_table(result):
    """One row per cell and shape of a ``bench_accuracy.py`` result.

    Every implementation gets two columns: the worst normwise relative error of
    the forward tensors and of the gradients, the latter with the name of the
    worst tensor.
    """
    rows = {}
    for row in result["rows"]:
        key = (row["cell"], row["shape"])
        rows.setdefault(key, {})[(row["implementation"], row["dtype"])] = row
    m = result["machine"]
    present = [c for c in ERROR_COLUMNS if any(c[:2] in by for by in rows.values())]
    heads = " | ".join(f"{h} fwd | {h} grad (worst)" for _, _, h in present)
    lines = [
        f"Error: {result['error']}. Machine: {m['processor']}, "
        f"{m['threads']} thread(s); NumPy {m['numpy']}, Numba {m['numba']}, "
        f"PyTorch {m.get('torch', '-')}, JAX {m.get('jax', '-')}.",
        "",
        f"| cell | shape (B, T, D, H) | {heads} |",
        "|---|---|" + "---:|---:|" * len(present),
    ]
    for (cell, shape), by in rows.items():
        any_row = next(iter(by.values()))
        dims = (
            f"{shape} ({any_row['B']}, {any_row['T']}, {any_row['D']}, {any_row['H']})"
        )
        cells = []
        for implementation, dtype, _ in present:
            row = by.get((implementation, dtype))
            if row is None:
                cells += ["-", "-"]
            else:
                cells.append(f"{row['forward_error']:.1e}")
                cells.append(f"{row['gradient_error']:.1e} ({row['gradient_worst']})")
        lines.append(f"| {cell} | {dims} | " + " | ".join(cells) + " |")
    headings = {c[:2]: c[2] for c in ERROR_COLUMNS}
    flipped = [r for r in result["rows"] if r.get("relu_flips")]
    if flipped:
        lines.append("")
    for r in flipped:
        name = headings.get((r["implementation"], r["dtype"]), r["implementation"])
        lines.append(
            f"{r['cell']} {r['shape']}, {name}: {r['relu_flips']} relu unit(s) "
            "switched on in one precision and off in the other, so the gradient "
            "differs there by a whole term (a kink, not an error of the code)."
        )
    return "\n".join(lines)


def threads_table(result):
    """Tabulate the best round of each arrangement of a ``bench_threads.py`` result."""
    best = {}
    for row in result["rows"]:
        old = best.get(row["arrangement"])
        if old is None or row["events_per_second"] > old["events_per_second"]:
            best[row["arrangement"]] = row
    base = best["one"]["events_per_second"] if "one" in best else None
    settings = result["settings"]
    lines = [
        f"{settings['dataset']}, {settings['config']}, "
        f"{settings['train_sessions']:,} sessions, {settings['threads']} threads; "
        "best of the rounds.",
        "",
        "| arrangement | events / s | vs one thread |",
        "|---|---:|---:|",
    ]
    for which, row in best.items():
        speed = row["events_per_second"]
        ratio = f"{speed / base:.2f}" if base else "-"
        lines.append(f"| {which} | {speed:,.0f} | {ratio} |")
    return "\n".join(lines)


def commits_table(result):
    """Tabulate the best round of each commit of a ``bench_commits.py`` result."""
    s = result["settings"]
    lines = [
        f"{s['dataset']}, {s['config']}, {s['max_sessions']:,} sessions, "
        f"{s['threads']} threads; best of {s['rounds']} rounds.",
        "",
        "| commit | change | events / s | vs first |",
        "|---|---|---:|---:|",
    ]
    best = {}
    for row in result["rows"]:
        best[row["commit"]] = max(best.get(row["commit"], 0), row["events_per_second"])
    first = best[result["commits"][0]["sha"]]
    for k, c in enumerate(result["commits"]):
        rate = best[c["sha"]]
        subject = c["subject"].split(":")[0][:48]
        subject = subject if k else f"(baseline) {subject}"
        lines.append(
            f"| `{c['sha'][:7]}` | {subject} | {rate:,.0f} | {rate / first:.2f} |"
        )
    return "\n".join(lines)


def speed_ratios(result):
    """``(label, rnnrec speed / PyTorch speed)`` pairs of any benchmark result."""
    if result.get("kind") in ("framework_error", "threads", "commits"):
        return []  # errors, or rnnrec against itself
    if "summary" in result:
        threads = result.get("settings", {}).get("threads", "?")
        pairs = []
        for r in result["summary"]:
            if r["implementation"] == "rnnrec":
                config = result.get("datasets", {}).get(r["dataset"], {}).get("config")
                units = "x".join(map(str, config["layers"])) if config else "?"
                label = f"train {r['dataset']}, {units} units, {threads} thread(s)"
                pairs.append((label, r["speed_vs_torch"]))
        return pairs
    if "rows" in result and result["rows"] and "scorer" in result["rows"][0]:
        # Against PyTorch's own evaluation where the result has it.
        best = best_eval_rows(result)
        pairs = []
        for (name, scorer), row in best.items():
            if scorer != "rnnrec":
                continue
            other = "torch-e2e" if (name, "torch-e2e") in best else "torch"
            speed = row["predictions_per_second"]
            pairs.append(
                (
                    f"evaluate {name}",
                    speed / best[(name, other)]["predictions_per_second"],
                )
            )
        return pairs
    if "rows" in result:
        return [
            (f"{r['cell']} {r['shape']} {r['dtype']}", 1 / r["ratio_to_torch"])
            for r in result["rows"]
            if r["backend"] == "numba" and r.get("ratio_to_torch")
        ]
    return []


def bar_chart(results, path):
    """Write a PNG of rnnrec's speed relative to PyTorch (1 = as fast)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pairs = [pair for result in results for pair in speed_ratios(result)]
    if not pairs:
        raise ValueError("no result with a PyTorch comparison to chart")
    labels, ratios = zip(*pairs, strict=True)
    fig, ax = plt.subplots(figsize=(8, 0.3 * len(pairs) + 1.2), layout="constrained")
    ax.barh(range(len(pairs)), ratios, color=["C0" if r >= 1 else "C3" for r in ratios])
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_yticks(range(len(pairs)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("rnnrec speed / PyTorch speed (higher is faster; log scale)")
    ax.set_title("rnnrec against PyTorch (each ratio from one side-by-side run)")
    from rnnrec.io import atomic_write

    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=110))
    plt.close(fig)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    chart = None
    if "--chart" in argv:
        at = argv.index("--chart")
        chart, argv = argv[at + 1], argv[:at] + argv[at + 2 :]
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
            if result.get("kind") == "framework_error":
                print(error_table(result))
            elif result.get("kind") == "threads":
                print(threads_table(result))
            elif result.get("kind") == "commits":
                print(commits_table(result))
            elif "summary" in result:
                print(train_table(result))
            elif result.get("rows") and "scorer" in result["rows"][0]:
                print(eval_table(result))
            else:
                print(table(result))
            print()
    if chart:
        bar_chart(results, chart)
        print(f"wrote {chart}")


if __name__ == "__main__":
    main()

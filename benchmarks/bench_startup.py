"""Time start-up: ``import rnnrec``, and the first calls with a cold and a warm cache.

Numba compiles rnnrec's kernels on their first call and caches the machine code
on disk (``cache=True``), so a user pays compilation once per machine and a
cache load in every later process. Each measurement here runs in a fresh Python
process whose ``NUMBA_CACHE_DIR`` points at a new, empty folder:

- ``import``: ``import rnnrec`` (wall time inside the process, median of runs);
- ``cold``: the first forward+backward of every cell (RNN, LSTM, GRU) and a
  one-epoch fit of the recommender on a small synthetic set, with the cache
  folder empty: compilation;
- ``warm``: the same in a second process on the folder the first one filled:
  loading from the cache;
- ``hot``: the same calls repeated in that second process: the run time
  itself, which the two above include.

Usage::

    python benchmarks/bench_startup.py [--runs 5] [--out]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, "results", "bench_startup.json")

IMPORT = """
import time
start = time.perf_counter()
import rnnrec
print(time.perf_counter() - start)
"""

FIRST_CALLS = """
import json, time
import numpy as np
import rnnrec
from rnnrec.data import make_synthetic

def calls():
    times = {}
    x = np.random.default_rng(0).standard_normal((5, 4, 8))  # float64, the default
    for cls in (rnnrec.RNN, rnnrec.LSTM, rnnrec.GRU):
        start = time.perf_counter()
        layer = cls(8, 16, seed=0)
        out, _, cache = layer.forward(x)
        layer.backward(np.ones_like(out), cache)
        times[cls.__name__] = time.perf_counter() - start
    train, _ = make_synthetic(n_items=50, n_train_sessions=200, n_test_sessions=10)
    start = time.perf_counter()
    rnnrec.SessionRecommender(layers=(16,), n_sample=16, n_epochs=1, seed=0).fit(train)
    times["SessionRecommender.fit"] = time.perf_counter() - start
    return times

first = calls()
again = calls()
print(json.dumps({"first": first, "again": again}))
"""


def run(code, cache_dir):
    """Run ``code`` in a fresh interpreter with its own Numba cache folder."""
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True
    )
    if result.returncode != 0:
        raise RuntimeError(f"the timed process failed:\n{result.stderr}")
    return result.stdout.strip().splitlines()[-1]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of the import")
    parser.add_argument(
        "--out",
        nargs="?",
        const=DEFAULT_OUT,
        help="write JSON (to benchmarks/results/bench_startup.json if no path)",
    )
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as cache:
        imports = [float(run(IMPORT, cache)) for _ in range(args.runs)]
    with tempfile.TemporaryDirectory() as cache:
        cold = json.loads(run(FIRST_CALLS, cache))["first"]
        warm_run = json.loads(run(FIRST_CALLS, cache))
    warm, hot = warm_run["first"], warm_run["again"]

    print(f"import rnnrec: {statistics.median(imports):.3f} s (median of {args.runs})")
    print(f"{'first call':<24} {'cold cache s':>12} {'warm cache s':>12} {'hot s':>8}")
    for name in cold:
        print(f"{name:<24} {cold[name]:12.2f} {warm[name]:12.3f} {hot[name]:8.3f}")
    total = {k: sum(d.values()) for k, d in (("cold", cold), ("warm", warm))}
    print(f"{'all':<24} {total['cold']:12.2f} {total['warm']:12.3f}")
    if args.out:
        from rnnrec.io import atomic_write_text

        result = {"import_seconds": imports, "cold": cold, "warm": warm, "hot": hot}
        atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

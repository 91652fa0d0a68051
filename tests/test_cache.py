"""Every compiled kernel is cached: a second process loads it, compiling nothing."""

import json
import os
import subprocess
import sys

import pytest

from rnnrec.kernels import HAVE_BLAS

# Runs the training step's kernels, on one thread and on two (the threaded
# twins), then prints each kernel's cache hits and misses.
PROGRAM = """
import json
import numpy as np
import numba
from rnnrec.data import make_synthetic
from rnnrec.kernels import _jit, gru, set_threads, sparse
from rnnrec.model import SessionRecommender

_jit.ROW_WORK = 0  # every row loop large enough for threads
_jit.PARALLEL_PRODUCT = 0  # every product split
train, _ = make_synthetic(n_items=40, n_train_sessions=60, n_test_sessions=5, seed=0)
for n in sorted({1, min(2, numba.config.NUMBA_NUM_THREADS)}):
    set_threads(n)
    model = SessionRecommender(layers=(8,), n_sample=8, batch_size=4, n_epochs=1)
    model.fit(train)
kernels = {
    "gru_forward_loop": gru.gru_forward_loop,
    "gru_backward_loop": gru.gru_backward_loop,
    "segment_sum": sparse.segment_sum,
    "adagrad_rows": sparse.adagrad_rows,
    "row_squares": sparse.row_squares,
    "product_blocks": _jit._product_blocks,
}
report = {}
for name, run in kernels.items():
    for which in ("serial", "threaded"):
        stats = getattr(run, which).stats
        report[f"{name}.{which}"] = [
            sum(stats.cache_hits.values()), sum(stats.cache_misses.values())
        ]
print(json.dumps(report))
"""


@pytest.mark.skipif(not HAVE_BLAS, reason="without the BLAS nothing is cached")
def test_a_second_process_loads_every_kernel_from_the_cache(tmp_path):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    env.pop("NUMBA_DISABLE_JIT", None)
    runs = []
    for _ in range(2):
        done = subprocess.run(
            [sys.executable, "-c", PROGRAM],
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr
        assert "Cannot cache" not in done.stderr, done.stderr
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    first, second = runs
    # Not vacuous: the GRU's loops compiled in the first process, and on a
    # machine with two threads the threaded twins too.
    expected = ["gru_forward_loop.serial", "gru_backward_loop.serial"]
    if two_threads():
        expected += ["gru_forward_loop.threaded", "adagrad_rows.threaded"]
    for name in expected:
        assert first[name][1] > 0, f"{name} did not run: {first}"
    for name, (hits, misses) in second.items():
        if first[name][1]:  # compiled in the first process: loaded in the second
            assert misses == 0 and hits > 0, f"{name} compiled again: {second}"


def two_threads():
    import numba

    return numba.config.NUMBA_NUM_THREADS >= 2

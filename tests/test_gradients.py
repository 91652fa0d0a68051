"""BPTT of every cell against central finite differences, in float64."""

import itertools
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnnrec.gradcheck import check_layer, compare_with_float64_twin
from tests.strategies import BACKENDS, CELL_IDS, make_layer, seeds, shapes

OPTIONS = list(itertools.product([False, True], repeat=3))


def assert_report(report):
    assert report.checks, "nothing was checked"
    assert report.passed, "\n" + str(report)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("variant", CELL_IDS)
@pytest.mark.parametrize(
    "with_state, with_reset, with_d_state",
    OPTIONS,
    ids=[f"state{int(a)}-reset{int(b)}-dstate{int(c)}" for a, b, c in OPTIONS],
)
def test_every_option_matches_finite_differences(
    variant, backend, with_state, with_reset, with_d_state
):
    layer = make_layer(variant, 3, 4, backend=backend, seed=7)
    report = check_layer(
        layer,
        T=5,
        B=3,
        with_state=with_state,
        with_reset=with_reset,
        with_d_state=with_d_state,
        seed=11,
    )
    names = {c.name for c in report.checks}
    assert {"x", "weight_ih", "weight_hh", "bias_ih", "bias_hh"} <= names
    assert ("h0" in names) == with_state
    assert_report(report)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("variant", CELL_IDS)
@settings(
    max_examples=int(os.environ.get("RNNREC_EXAMPLES", 12)),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    shape=shapes(),
    seed=seeds,
    options=st.tuples(st.booleans(), st.booleans(), st.booleans()),
)
def test_random_shapes_match_finite_differences(variant, backend, shape, seed, options):
    T, B, D, H = shape
    layer = make_layer(variant, D, H, backend=backend, seed=seed)
    with_state, with_reset, with_d_state = options
    report = check_layer(
        layer,
        T,
        B,
        with_state=with_state,
        with_reset=with_reset,
        with_d_state=with_d_state,
        seed=seed,
    )
    assert_report(report)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("variant", CELL_IDS)
@settings(max_examples=10, deadline=None)
@given(shape=shapes(), seed=seeds)
def test_float32_layer_matches_float64_twin(variant, backend, shape, seed):
    T, B, D, H = shape
    layer = make_layer(variant, D, H, backend=backend, dtype=np.float32, seed=seed)
    report = compare_with_float64_twin(layer, T, B, seed=seed)
    assert len(report.checks) >= 7
    assert_report(report)


@pytest.mark.parametrize("variant", CELL_IDS)
def test_large_tensors_are_checked_along_directions(variant):
    layer = make_layer(variant, 16, 12, backend="numpy", seed=3)
    report = check_layer(layer, T=3, B=2, seed=5, max_entries=100, n_directions=6)
    modes = {c.name: c.mode for c in report.checks}
    assert modes["weight_hh"] == "directions"
    assert modes["bias_hh"] == "entries"
    assert_report(report)

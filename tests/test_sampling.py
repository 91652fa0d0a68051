"""The popularity sampler: frequencies, determinism, zero counts, errors."""

import math

import numpy as np
import pytest
from scipy import stats

from rnnrec.sampling import PopularitySampler

COUNTS = np.array([5, 0, 120, 3, 40, 0, 1, 17, 60, 8, 2, 0])


def expected_probabilities(counts, alpha):
    w = np.asarray(counts, dtype=np.float64) ** alpha
    return w / w.sum()


# -- frequencies --------------------------------------------------------------------


@pytest.mark.parametrize("alpha", [0.0, 0.5, 0.75, 1.0, 2.0])
def test_frequencies_match_the_distribution(alpha):
    n = 400_000
    sampler = PopularitySampler(COUNTS, alpha, seed=2024, buffer_size=50_000)
    p = expected_probabilities(COUNTS, alpha)
    np.testing.assert_allclose(sampler.probabilities, p, rtol=1e-12, atol=0)

    observed = np.bincount(sampler.sample(n), minlength=len(COUNTS))
    drawn = p > 0
    assert observed[~drawn].sum() == 0  # zero-count items, alpha > 0

    # Pearson's chi-square over the items that can be drawn.
    expected = n * p[drawn]
    chi2 = np.sum((observed[drawn] - expected) ** 2 / expected)
    p_value = stats.chi2.sf(chi2, df=drawn.sum() - 1)
    assert p_value > 1e-3, (chi2, p_value)

    # And no single frequency off by more than five standard errors.
    se = np.sqrt(p * (1 - p) / n)
    assert np.all(np.abs(observed / n - p) <= 5 * se + 1e-12)


def test_alpha_zero_is_uniform_over_the_whole_catalogue():
    sampler = PopularitySampler(COUNTS, 0.0, seed=1)
    V = len(COUNTS)
    np.testing.assert_array_equal(sampler.probabilities, np.full(V, 1 / V))
    np.testing.assert_array_equal(sampler.log_probability(np.arange(V)), -math.log(V))
    # Items never clicked are drawn too: 0^0 = 1.
    drawn = np.unique(sampler.sample(5_000))
    np.testing.assert_array_equal(drawn, np.arange(V))


@pytest.mark.parametrize("alpha", [1e-3, 0.5, 1.0])
def test_zero_count_items_are_never_drawn(alpha):
    # Zeros first, last and in runs: the cumulative distribution's flat steps.
    counts = np.array([0, 0, 3, 0, 1, 0, 0, 7, 0, 0])
    sampler = PopularitySampler(counts, alpha, seed=5, buffer_size=10_000)
    items = sampler.sample(200_000)
    assert set(np.unique(items)) == {2, 4, 7}
    assert np.all(np.isneginf(sampler.log_probability(np.flatnonzero(counts == 0))))


def test_a_single_item_with_popularity():
    sampler = PopularitySampler([0, 0, 9, 0], 0.75, seed=0)
    np.testing.assert_array_equal(sampler.sample(50), 2)
    assert sampler.log_probability(2) == 0.0


def test_buffer_is_one_vectorised_draw_from_the_cumulative_distribution():
    # Like GRU4Rec's sample cache: one uniform draw per buffer entry, looked up in
    # the cumulative distribution.
    sampler = PopularitySampler(COUNTS, 0.75, seed=11, buffer_size=64)
    u = np.random.default_rng(11).random(64)
    cdf = np.cumsum(expected_probabilities(COUNTS, 0.75))
    expected = np.searchsorted(cdf / cdf[-1], u, side="right")
    np.testing.assert_array_equal(sampler.sample(64), expected)


# -- the stream ---------------------------------------------------------------------


def test_same_seed_same_stream_different_seed_different_stream():
    a = PopularitySampler(COUNTS, 0.75, seed=7, buffer_size=100)
    b = PopularitySampler(COUNTS, 0.75, seed=7, buffer_size=100)
    c = PopularitySampler(COUNTS, 0.75, seed=8, buffer_size=100)
    first = [a.sample(64) for _ in range(5)]
    second = [b.sample(64) for _ in range(5)]
    for x, y in zip(first, second, strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(np.concatenate(first), c.sample(320))


@pytest.mark.parametrize("buffer_size", [1, 7, 64, 1000])
def test_the_stream_does_not_depend_on_how_requests_are_cut(buffer_size):
    whole = PopularitySampler(COUNTS, 1.0, seed=3, buffer_size=buffer_size).sample(150)
    cut = PopularitySampler(COUNTS, 1.0, seed=3, buffer_size=buffer_size)
    pieces = [cut.sample(n) for n in (3, 0, 10, 1, 64, 72)]
    np.testing.assert_array_equal(np.concatenate(pieces), whole)


def test_a_generator_seed_is_used_as_given():
    rng = np.random.default_rng(42)
    sampler = PopularitySampler(COUNTS, 0.5, seed=rng, buffer_size=10)
    reference = PopularitySampler(COUNTS, 0.5, seed=42, buffer_size=10)
    np.testing.assert_array_equal(sampler.sample(25), reference.sample(25))


def test_requests_larger_than_the_catalogue_and_the_buffer():
    sampler = PopularitySampler([1, 2, 3], 1.0, seed=0, buffer_size=5)
    items = sampler.sample(1000)  # with replacement, across 200 buffers
    assert items.shape == (1000,) and items.dtype == np.int64
    assert items.min() >= 0 and items.max() <= 2


def test_samples_are_fresh_arrays():
    sampler = PopularitySampler(COUNTS, 1.0, seed=9, buffer_size=100)
    reference = PopularitySampler(COUNTS, 1.0, seed=9, buffer_size=100)
    first = sampler.sample(10)
    first[:] = -1  # scribbling on a result cannot change later draws
    reference.sample(10)
    np.testing.assert_array_equal(sampler.sample(90), reference.sample(90))


def test_sample_zero():
    out = PopularitySampler(COUNTS, 1.0, seed=0).sample(0)
    assert out.shape == (0,) and out.dtype == np.int64


# -- log-probabilities --------------------------------------------------------------


@pytest.mark.parametrize("alpha", [0.25, 1.0])
def test_log_probability_matches_log_p(alpha):
    sampler = PopularitySampler(COUNTS, alpha)
    items = np.array([[2, 0], [7, 6]])
    got = sampler.log_probability(items)
    assert got.shape == (2, 2) and got.dtype == np.float64
    p = expected_probabilities(COUNTS, alpha)
    np.testing.assert_allclose(got, np.log(p[items]), rtol=1e-13)


def test_log_probability_survives_huge_counts_and_alpha():
    # counts^alpha overflows float64 (1e200^3); log p must not.
    counts = np.array([1e200, 1e199, 1.0])
    sampler = PopularitySampler(counts, 3.0)
    logp = sampler.log_probability([0, 1, 2])
    assert np.all(np.isfinite(logp))
    expected_01 = 3 * math.log(10)  # log p0 - log p1 = alpha log(count0 / count1)
    assert logp[0] - logp[1] == pytest.approx(expected_01, rel=1e-12)
    assert logp[2] == pytest.approx(-600 * math.log(10) - math.log(1.001), rel=1e-12)
    assert sampler.probabilities.sum() == pytest.approx(1.0, rel=1e-15)


def test_float_counts_are_accepted():
    sampler = PopularitySampler([0.5, 1.5, 2.0], 1.0)
    np.testing.assert_allclose(sampler.probabilities, [0.125, 0.375, 0.5], rtol=1e-15)


def test_repr():
    sampler = PopularitySampler([1, 2], 0.5, buffer_size=10)
    assert repr(sampler) == "PopularitySampler(n_items=2, alpha=0.5, buffer_size=10)"


# -- errors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "counts, error, message",
    [
        ([0, 0, 0], ValueError, "counts are all zero"),
        (np.zeros(4, np.int64), ValueError, "counts are all zero"),
        ([3, -1, 2], ValueError, r"non-negative, got counts\[1\] = -1"),
        ([1.0, np.nan], ValueError, "NaN or infinite"),
        ([1.0, np.inf], ValueError, "NaN or infinite"),
        ([], ValueError, "at least one item"),
        ([[1, 2], [3, 4]], TypeError, r"1-D array .* shape \(2, 2\)"),
        (["a", "b"], TypeError, "1-D array of non-negative numbers"),
        (np.array([True, False]), TypeError, "dtype bool"),
        (5, TypeError, "1-D array"),
    ],
)
def test_bad_counts(counts, error, message):
    with pytest.raises(error, match=message):
        PopularitySampler(counts, 1.0)


@pytest.mark.parametrize(
    "alpha, error",
    [
        (-0.5, ValueError),
        (math.nan, ValueError),
        (math.inf, ValueError),
        ("1", TypeError),
        (None, TypeError),
        (True, TypeError),
    ],
)
def test_bad_alpha(alpha, error):
    with pytest.raises(error, match="alpha must be a"):
        PopularitySampler([1, 2], alpha)


@pytest.mark.parametrize("size, error", [(0, ValueError), (2.5, TypeError)])
def test_bad_buffer_size(size, error):
    with pytest.raises(error, match="buffer_size must be a positive integer"):
        PopularitySampler([1, 2], 1.0, buffer_size=size)


@pytest.mark.parametrize(
    "n, error", [(-1, ValueError), (2.0, TypeError), (True, TypeError)]
)
def test_bad_n(n, error):
    with pytest.raises(error, match="n must be a non-negative integer"):
        PopularitySampler([1, 2], 1.0).sample(n)


def test_numpy_integer_n_is_accepted():
    assert PopularitySampler([1, 2], 1.0).sample(np.int64(4)).shape == (4,)


def test_bad_items_for_log_probability():
    sampler = PopularitySampler([1, 2, 3], 1.0)
    with pytest.raises(ValueError, match=r"items must be in \[0, 3\), got 3"):
        sampler.log_probability([0, 3])
    with pytest.raises(ValueError, match=r"got -1"):
        sampler.log_probability(np.array([-1]))
    with pytest.raises(TypeError, match="integer item indices, got dtype float64"):
        sampler.log_probability([0.0, 1.0])


def test_pending_draws_restore_the_stream_exactly():
    a = PopularitySampler([5, 1, 0, 9, 3], alpha=0.7, seed=3, buffer_size=64)
    a.sample(10)
    saved, state = a.pending(), a._rng.bit_generator.state
    expected = a.sample(200)  # crosses into new buffers
    b = PopularitySampler([5, 1, 0, 9, 3], alpha=0.7, seed=99, buffer_size=64)
    b._rng.bit_generator.state = state
    b.set_pending(saved)
    np.testing.assert_array_equal(b.sample(200), expected)
    assert len(saved) == 54 and saved.dtype == np.int64


@pytest.mark.parametrize(
    "draws, message",
    [
        (np.zeros((2, 2), dtype=np.int64), "1-D array of item indices"),
        (np.array([0.5]), "1-D array of item indices"),
        (np.array([0, 5]), r"item indices in \[0, 5\), got values from 0 to 5"),
        (np.array([-1]), r"in \[0, 5\)"),
    ],
)
def test_set_pending_refuses_what_is_not_an_item_index(draws, message):
    sampler = PopularitySampler([1, 1, 1, 1, 1], alpha=1.0, seed=0)
    with pytest.raises(ValueError, match=message):
        sampler.set_pending(draws)


# -- the compiled search --------------------------------------------------------------


@pytest.mark.parametrize("guide_size", [1, 3, None])
def test_guided_search_finds_the_binary_searchs_item_for_every_draw(guide_size):
    from rnnrec.kernels.sampling import guide_table, guided_search

    counts = np.random.default_rng(4).zipf(1.3, 500).astype(float)
    counts[::7] = 0  # runs of equal cdf values, which the search must pass over
    cdf = np.cumsum(counts) / counts.sum()
    guide = guide_table(cdf, guide_size or cdf.size)
    # Random draws, the cdf's own values (ties: "right" means strictly above),
    # the guide's boundaries k/K and their neighbours, and the ends of [0, 1).
    K = guide.size
    edges = np.arange(K) / K
    u = np.concatenate([
        np.random.default_rng(5).random(20_000), cdf[:-1], edges,
        np.nextafter(edges, 1.0), np.nextafter(edges[1:], 0.0),
        [0.0, np.nextafter(1.0, 0.0)],
    ])  # fmt: skip
    want = np.searchsorted(cdf, u, side="right")
    for kernel in (guided_search.serial, guided_search.threaded):
        out = np.full(u.size, -1, dtype=np.int64)
        kernel(cdf, guide, u, out)
        np.testing.assert_array_equal(out, want)
    assert np.all(counts[want] > 0)  # never an item of probability 0

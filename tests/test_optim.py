"""The optimizers against torch.optim, against hand sums, dense against sparse.

PyTorch is the reference where the rules are the same: SGD, Adam, Adagrad
(rnnrec's AdagradM without momentum; PyTorch adds ``eps`` after the square root
and rnnrec under it, so the comparisons use an ``eps`` too small to matter),
SparseAdam (same rule up to where ``eps`` enters, likewise), and sparse SGD and
Adagrad. AdagradM with momentum has no PyTorch twin; it is checked by hand and
against a scalar loop.
"""

import math

import numpy as np
import pytest
import torch

from rnnrec.optim import SGD, AdagradM, Adam, RowSparse, coalesce_rows

DTYPES = [np.float64, np.float32]
RTOL = {np.dtype(np.float64): 1e-12, np.dtype(np.float32): 1e-5}
TINY_EPS = 1e-30  # below every ulp of the sums of squares it meets
SHAPES = {"weight": (6, 3), "bias": (4,), "scale": ()}


def random_params(dtype, seed=0):
    rng = np.random.default_rng(seed)
    return {k: rng.standard_normal(s).astype(dtype) for k, s in SHAPES.items()}


def random_grads(dtype, step, seed=100):
    rng = np.random.default_rng(seed + step)
    return {k: rng.standard_normal(s).astype(dtype) for k, s in SHAPES.items()}


def run_torch(make_opt, params, grad_list):
    """Step a torch optimizer over copies of ``params``; return the arrays."""
    tensors = {
        k: torch.nn.Parameter(torch.from_numpy(v.copy())) for k, v in params.items()
    }
    opt = make_opt(list(tensors.values()))
    # Sparse tensors are checked (and PyTorch then does not warn that they are not).
    with torch.sparse.check_sparse_tensor_invariants(enable=True):
        _step_torch(opt, tensors, grad_list)
    return {k: t.detach().numpy() for k, t in tensors.items()}


def _step_torch(opt, tensors, grad_list):
    for grads in grad_list:
        for k, t in tensors.items():
            g = grads[k]
            if isinstance(g, RowSparse):
                t.grad = torch.sparse_coo_tensor(
                    torch.from_numpy(g.rows)[None],
                    torch.from_numpy(g.values),
                    t.shape,
                )
            else:
                t.grad = torch.from_numpy(g.copy())
        opt.step()


def run_ours(opt_class, params, grad_list, **kwargs):
    params = {k: v.copy() for k, v in params.items()}
    objects = {k: id(v) for k, v in params.items()}
    opt = opt_class(params, **kwargs)
    for grads in grad_list:
        opt.step(grads)
    assert {k: id(v) for k, v in opt.params.items()} == objects  # updated in place
    return params, opt


def assert_same(ours, theirs, dtype):
    for k in ours:
        assert ours[k].dtype == dtype and ours[k].shape == theirs[k].shape
        np.testing.assert_allclose(
            ours[k],
            theirs[k],
            rtol=RTOL[np.dtype(dtype)],
            atol=1e-6 * RTOL[np.dtype(dtype)],
        )


# -- dense, against PyTorch -------------------------------------------------------

N_STEPS = 6


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weight_decay", [0.0, 0.05])
@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_sgd_matches_torch(momentum, weight_decay, dtype):
    params = random_params(dtype)
    grads = [random_grads(dtype, t) for t in range(N_STEPS)]
    kwargs = dict(lr=0.1, momentum=momentum, weight_decay=weight_decay)
    ours, _ = run_ours(SGD, params, grads, **kwargs)
    theirs = run_torch(lambda p: torch.optim.SGD(p, **kwargs), params, grads)
    assert_same(ours, theirs, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weight_decay", [0.0, 0.05])
@pytest.mark.parametrize("betas", [(0.9, 0.999), (0.5, 0.9)])
def test_adam_matches_torch(betas, weight_decay, dtype):
    params = random_params(dtype)
    grads = [random_grads(dtype, t) for t in range(N_STEPS)]
    kwargs = dict(lr=0.01, betas=betas, eps=1e-8, weight_decay=weight_decay)
    ours, opt = run_ours(Adam, params, grads, **kwargs)
    theirs = run_torch(lambda p: torch.optim.Adam(p, **kwargs), params, grads)
    assert_same(ours, theirs, dtype)
    assert all(opt.state[k]["step"] == N_STEPS for k in SHAPES)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weight_decay", [0.0, 0.05])
def test_adagradm_without_momentum_matches_torch_adagrad(weight_decay, dtype):
    params = random_params(dtype)
    grads = [random_grads(dtype, t) for t in range(N_STEPS)]
    ours, _ = run_ours(
        AdagradM, params, grads, lr=0.1, eps=TINY_EPS, weight_decay=weight_decay
    )
    theirs = run_torch(
        lambda p: torch.optim.Adagrad(
            p, lr=0.1, eps=TINY_EPS, weight_decay=weight_decay
        ),
        params,
        grads,
    )
    assert_same(ours, theirs, dtype)


# -- sparse, against PyTorch ------------------------------------------------------


def sparse_steps(dtype, n_rows=10, width=3, n_steps=N_STEPS, seed=7):
    """Random row-sparse gradients of a (n_rows, width) matrix, rows overlapping."""
    rng = np.random.default_rng(seed)
    steps = []
    for _ in range(n_steps):
        rows = rng.choice(n_rows, size=rng.integers(1, n_rows // 2), replace=False)
        values = rng.standard_normal((rows.size, width)).astype(dtype)
        steps.append({"items": RowSparse(rows.astype(np.int64), values)})
    return steps


def item_params(dtype, n_rows=10, width=3):
    rng = np.random.default_rng(3)
    return {"items": rng.standard_normal((n_rows, width)).astype(dtype)}


def test_sparse_adam_matches_torch_sparse_adam():
    params, grads = item_params(np.float64), sparse_steps(np.float64)
    kwargs = dict(lr=0.05, betas=(0.8, 0.99), eps=TINY_EPS)
    ours, _ = run_ours(Adam, params, grads, **kwargs)
    theirs = run_torch(lambda p: torch.optim.SparseAdam(p, **kwargs), params, grads)
    assert_same(ours, theirs, np.float64)


def test_sparse_adagradm_matches_torch_sparse_adagrad():
    params, grads = item_params(np.float64), sparse_steps(np.float64)
    ours, _ = run_ours(AdagradM, params, grads, lr=0.1, eps=TINY_EPS)
    theirs = run_torch(
        lambda p: torch.optim.Adagrad(p, lr=0.1, eps=TINY_EPS), params, grads
    )
    assert_same(ours, theirs, np.float64)


def test_sparse_sgd_matches_torch_sparse_sgd():
    params, grads = item_params(np.float64), sparse_steps(np.float64)
    ours, _ = run_ours(SGD, params, grads, lr=0.3)
    theirs = run_torch(lambda p: torch.optim.SGD(p, lr=0.3), params, grads)
    assert_same(ours, theirs, np.float64)


# -- sparse against dense ---------------------------------------------------------

CONFIGS = [
    (SGD, dict(lr=0.1)),
    (SGD, dict(lr=0.1, momentum=0.9, weight_decay=0.1)),
    (Adam, dict(lr=0.01)),
    (Adam, dict(lr=0.01, weight_decay=0.1)),
    (AdagradM, dict(lr=0.1)),
    (AdagradM, dict(lr=0.1, momentum=0.7, weight_decay=0.1)),
]
CONFIG_IDS = [
    f"{c.__name__}-{'-'.join(f'{k}={v}' for k, v in kw.items())}" for c, kw in CONFIGS
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("opt_class, kwargs", CONFIGS, ids=CONFIG_IDS)
def test_a_first_sparse_step_is_the_dense_step_on_its_rows(opt_class, kwargs, dtype):
    params = item_params(dtype)
    g = sparse_steps(dtype, n_steps=1)[0]["items"]
    dense, _ = run_ours(opt_class, params, [{"items": g.to_dense((10, 3))}], **kwargs)
    sparse, opt = run_ours(opt_class, params, [{"items": g}], **kwargs)
    untouched = np.setdiff1d(np.arange(10), g.rows)
    # The touched rows: the same formula on the same numbers, bit for bit.
    np.testing.assert_array_equal(sparse["items"][g.rows], dense["items"][g.rows])
    # The others: unchanged, state included.
    np.testing.assert_array_equal(
        sparse["items"][untouched], params["items"][untouched]
    )
    for value in opt.state["items"].values():
        if isinstance(value, np.ndarray):
            assert value.dtype == dtype
            np.testing.assert_array_equal(value[untouched], 0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "opt_class, kwargs",
    [c for c in CONFIGS if c[0] is not Adam],
    ids=[i for i, c in zip(CONFIG_IDS, CONFIGS, strict=True) if c[0] is not Adam],
)
def test_sparse_steps_are_dense_steps_of_each_row_when_touched(
    opt_class, kwargs, dtype
):
    # SGD's and AdagradM's rules are row-local with no global clock: a lazy sparse
    # run equals, for every row, a dense run of that row alone over the steps
    # that touched it.
    params = item_params(dtype)
    grads = sparse_steps(dtype, n_steps=8, seed=12)
    sparse, _ = run_ours(opt_class, params, grads, **kwargs)
    for row in range(10):
        steps = []
        for g in grads:
            hit = np.flatnonzero(g["items"].rows == row)
            if hit.size:
                steps.append({"items": g["items"].values[hit]})
        alone, _ = run_ours(
            opt_class, {"items": params["items"][row : row + 1]}, steps, **kwargs
        )
        np.testing.assert_allclose(
            sparse["items"][row],
            alone["items"][0],
            rtol=1e-15 if dtype == np.float64 else 1e-7,
        )


def test_sparse_adam_uses_the_parameter_step_count():
    # A row touched for the first time at step 3 is bias-corrected with t = 3.
    params = {"items": np.zeros((2, 1))}
    opt = Adam(params, lr=0.1, betas=(0.5, 0.75), eps=1e-8)
    for _ in range(2):
        opt.step({"items": RowSparse(np.array([0]), np.array([[1.0]]))})
    opt.step({"items": RowSparse(np.array([1]), np.array([[2.0]]))})
    m, v, t = 0.5 * 2.0, 0.25 * 4.0, 3
    expected = -0.1 * (m / (1 - 0.5**t)) / (math.sqrt(v / (1 - 0.75**t)) + 1e-8)
    assert params["items"][1, 0] == pytest.approx(expected, rel=1e-15)
    assert opt.state["items"]["step"] == 3


@pytest.mark.parametrize(
    "opt_class, kwargs, buffer, carried",
    [
        (SGD, dict(lr=0.2, momentum=0.5), "momentum_buffer", 3.0),
        (AdagradM, dict(lr=0.2, momentum=0.5, eps=7.0), "velocity", 0.15),
    ],
    ids=["SGD", "AdagradM"],
)
def test_dense_zero_gradient_rows_keep_moving_sparse_untouched_rows_do_not(
    opt_class, kwargs, buffer, carried
):
    params_dense = {"w": np.ones((2, 1))}
    params_sparse = {"w": np.ones((2, 1))}
    dense = opt_class(params_dense, **kwargs)
    sparse = opt_class(params_sparse, **kwargs)
    first = np.array([[3.0], [3.0]])
    dense.step({"w": first})
    sparse.step({"w": first.copy()})
    dense.step({"w": np.array([[3.0], [0.0]])})
    sparse.step({"w": RowSparse(np.array([0]), np.array([[3.0]]))})
    assert params_sparse["w"][0, 0] == params_dense["w"][0, 0]
    assert params_dense["w"][1, 0] < params_sparse["w"][1, 0]  # momentum carried it
    # The untouched row's buffer is what step 1 left, neither decayed nor spent.
    assert sparse.state["w"][buffer][1, 0] == pytest.approx(carried, rel=1e-15)
    assert dense.state["w"][buffer][1, 0] == pytest.approx(0.5 * carried, rel=1e-15)


# -- AdagradM by hand -------------------------------------------------------------
# lr = 0.2, eps = 7 and gradients of 3 keep the roots whole: sqrt(9 + 7) = 4,
# sqrt(18 + 7) = 5.


@pytest.mark.parametrize("dtype", DTYPES)
def test_adagradm_with_momentum_by_hand(dtype):
    params = {"w": np.array([1.0], dtype)}
    opt = AdagradM(params, lr=0.2, momentum=0.5, eps=7.0)
    rtol = 1e-15 if dtype == np.float64 else 1e-7

    opt.step({"w": np.array([3.0], dtype)})  # G = 9, u = 0.2*3/4 = 0.15, v = 0.15
    assert params["w"][0] == pytest.approx(0.85, rel=rtol)
    opt.step({"w": np.array([3.0], dtype)})  # G = 18, u = 0.12, v = 0.075 + 0.12
    assert params["w"][0] == pytest.approx(0.655, rel=rtol)
    opt.step({"w": np.array([0.0], dtype)})  # G = 18, u = 0, v = 0.0975
    assert params["w"][0] == pytest.approx(0.5575, rel=rtol)

    state = opt.state["w"]
    assert state["sum_sq"].dtype == dtype and state["velocity"].dtype == dtype
    assert state["sum_sq"][0] == 18.0
    assert state["velocity"][0] == pytest.approx(0.0975, rel=rtol)
    assert params["w"].dtype == dtype


def test_adagradm_without_momentum_by_hand():
    params = {"w": np.array([1.0])}
    opt = AdagradM(params, lr=0.2, eps=7.0)
    opt.step({"w": np.array([3.0])})  # 1 - 0.2*3/4
    opt.step({"w": np.array([3.0])})  # 0.85 - 0.2*3/5
    assert params["w"][0] == pytest.approx(0.73, rel=1e-15)
    assert "velocity" not in opt.state["w"]


def test_sparse_adagradm_by_hand():
    # Two rows, both hit at step 1, then one at a time with a gradient of 3.
    params = {"w": np.ones((2, 1))}
    opt = AdagradM(params, lr=0.2, momentum=0.5, eps=7.0)
    opt.step({"w": np.full((2, 1), 3.0)})  # both: G = 9, v = 0.15, p = 0.85
    opt.step({"w": RowSparse(np.array([0]), np.array([[3.0]]))})
    np.testing.assert_allclose(params["w"][:, 0], [0.655, 0.85], rtol=1e-15)
    np.testing.assert_allclose(opt.state["w"]["velocity"][:, 0], [0.195, 0.15])
    # Row 1 resumes from its undecayed velocity 0.15: v = 0.075 + 0.12.
    opt.step({"w": RowSparse(np.array([1]), np.array([[3.0]]))})
    np.testing.assert_allclose(params["w"][:, 0], [0.655, 0.655], rtol=1e-15)
    # Dense, row 1's zero gradient at step 2 would have decayed and spent its
    # velocity: 0.85 - 0.075 = 0.775, then 0.775 - (0.0375 + 0.12) = 0.6175.
    dense = {"w": np.ones((2, 1))}
    opt = AdagradM(dense, lr=0.2, momentum=0.5, eps=7.0)
    for g in ([3.0, 3.0], [3.0, 0.0], [0.0, 3.0]):
        opt.step({"w": np.array(g)[:, None]})
    assert dense["w"][1, 0] == pytest.approx(0.6175, rel=1e-15)


def loop_adagradm(p, grads, lr, momentum, eps, weight_decay):
    """Scalar loop reference of AdagradM, one entry at a time."""
    p = [float(x) for x in p.ravel()]
    G = [0.0] * len(p)
    v = [0.0] * len(p)
    for g in grads:
        for k, gk in enumerate(g.ravel()):
            gk = float(gk) + weight_decay * p[k]
            G[k] += gk * gk
            v[k] = momentum * v[k] + lr * gk / math.sqrt(G[k] + eps)
            p[k] -= v[k]
    return np.array(p)


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
@pytest.mark.parametrize("momentum", [0.0, 0.3, 0.9])
def test_adagradm_matches_a_scalar_loop(momentum, weight_decay):
    params = random_params(np.float64)
    grads = [random_grads(np.float64, t) for t in range(N_STEPS)]
    kwargs = dict(lr=0.05, momentum=momentum, eps=1e-6, weight_decay=weight_decay)
    ours, _ = run_ours(AdagradM, params, grads, **kwargs)
    for k in SHAPES:
        expected = loop_adagradm(params[k], [g[k] for g in grads], **kwargs)
        np.testing.assert_allclose(ours[k].ravel(), expected, rtol=1e-13)


# -- behaviour --------------------------------------------------------------------


@pytest.mark.parametrize("opt_class", [SGD, Adam, AdagradM])
def test_missing_and_none_gradients_leave_parameters_alone(opt_class):
    params = random_params(np.float32)
    before = {k: v.copy() for k, v in params.items()}
    opt = opt_class(params, lr=0.1)
    opt.step({"weight": random_grads(np.float32, 0)["weight"], "bias": None})
    assert not np.array_equal(params["weight"], before["weight"])
    np.testing.assert_array_equal(params["bias"], before["bias"])
    np.testing.assert_array_equal(params["scale"], before["scale"])
    if opt_class is Adam:
        assert opt.state["weight"]["step"] == 1 and opt.state["bias"]["step"] == 0


@pytest.mark.parametrize("opt_class", [SGD, Adam, AdagradM])
def test_float32_state_and_updates_stay_float32(opt_class):
    params = random_params(np.float32)
    opt = opt_class(params, lr=0.1)
    opt.step(random_grads(np.float32, 0))
    opt.step({"weight": RowSparse(np.array([1, 4]), np.ones((2, 3), np.float32))})
    for k, p in params.items():
        assert p.dtype == np.float32
        for value in opt.state[k].values():
            if isinstance(value, np.ndarray):
                assert value.dtype == np.float32


def test_the_learning_rate_may_change_between_steps():
    params = {"w": np.zeros(1)}
    opt = SGD(params, lr=1.0)
    opt.step({"w": np.ones(1)})
    opt.lr = 0.5
    opt.step({"w": np.ones(1)})
    assert params["w"][0] == -1.5


def test_a_bad_gradient_stops_the_step_before_anything_changes():
    params = random_params(np.float64)
    before = {k: v.copy() for k, v in params.items()}
    opt = AdagradM(params, lr=0.1, momentum=0.5)
    grads = random_grads(np.float64, 0)
    grads["scale"] = np.zeros(3)  # wrong shape, checked after weight and bias
    with pytest.raises(ValueError, match=r"grads\['scale'\] must have shape \(\)"):
        opt.step(grads)
    for k in params:
        np.testing.assert_array_equal(params[k], before[k])
        np.testing.assert_array_equal(opt.state[k]["sum_sq"], 0)


def test_row_sparse_gradient_of_a_vector():
    params = {"bias": np.zeros(5)}
    SGD(params, lr=1.0).step(
        {"bias": RowSparse(np.array([3, 0]), np.array([2.0, 1.0]))}
    )
    np.testing.assert_array_equal(params["bias"], [-1.0, 0, 0, -2.0, 0])


# -- coalesce_rows and RowSparse --------------------------------------------------


def test_coalesce_rows_sums_repeats():
    rng = np.random.default_rng(0)
    rows = rng.integers(0, 6, size=20)
    values = rng.standard_normal((20, 3))
    g = coalesce_rows(rows, values)
    assert g.rows.dtype == np.int64
    np.testing.assert_array_equal(g.rows, np.unique(rows))
    expected = np.zeros((6, 3))
    np.add.at(expected, rows, values)
    np.testing.assert_allclose(g.to_dense((6, 3)), expected, rtol=1e-15)


def test_coalesce_rows_of_nothing():
    g = coalesce_rows(np.array([], dtype=np.int64), np.zeros((0, 4), np.float32))
    assert g.rows.shape == (0,) and g.values.shape == (0, 4)
    assert g.values.dtype == np.float32


def test_coalesce_rows_errors():
    with pytest.raises(TypeError, match="rows must be a 1-D integer array"):
        coalesce_rows(np.array([0.0, 1.0]), np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"one row per entry of rows \(3\)"):
        coalesce_rows(np.array([0, 1, 1]), np.zeros((2, 2)))


# -- errors -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "make, error, message",
    [
        (lambda p: SGD(p, lr=-0.1), ValueError, r"lr must be in \[0, inf\), got -0.1"),
        (lambda p: SGD(p, lr=math.nan), ValueError, "lr must be in"),
        (lambda p: SGD(p, lr="0.1"), TypeError, "lr must be a real number"),
        (
            lambda p: SGD(p, lr=0.1, momentum=1.0),
            ValueError,
            r"momentum must be in \[0, 1\)",
        ),
        (lambda p: SGD(p, lr=0.1, momentum=-0.5), ValueError, "momentum must be in"),
        (lambda p: SGD(p, lr=0.1, weight_decay=-1), ValueError, "weight_decay must be"),
        (
            lambda p: Adam(p, betas=(0.9, 1.0)),
            ValueError,
            r"betas\[1\] must be in \[0, 1\)",
        ),
        (lambda p: Adam(p, betas=0.9), TypeError, "betas must be a pair"),
        (lambda p: Adam(p, eps=0.0), ValueError, r"eps must be in \(0, inf\)"),
        (
            lambda p: AdagradM(p, lr=0.1, eps=0),
            ValueError,
            r"eps must be in \(0, inf\)",
        ),
        (
            lambda p: AdagradM(p, lr=0.1, momentum=1.5),
            ValueError,
            "momentum must be in",
        ),
    ],
)
def test_bad_hyperparameters(make, error, message):
    with pytest.raises(error, match=message):
        make({"w": np.zeros(2)})


def test_bad_params():
    with pytest.raises(
        TypeError, match="params must be a dict of str to numpy arrays, got list"
    ):
        SGD([np.zeros(2)], lr=0.1)
    with pytest.raises(
        TypeError,
        match=r"params\['w'\] must be a float32 or float64 numpy array, got int64",
    ):
        SGD({"w": np.zeros(2, np.int64)}, lr=0.1)
    with pytest.raises(TypeError, match=r"params\['w'\] .* got list"):
        SGD({"w": [0.0, 1.0]}, lr=0.1)
    frozen = np.zeros(2)
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match=r"params\['w'\] is read-only"):
        SGD({"w": frozen}, lr=0.1)


@pytest.mark.parametrize(
    "grad, error, message",
    [
        (
            np.zeros((4, 2)),
            ValueError,
            r"grads\['w'\] must have shape \(4, 3\), got \(4, 2\)",
        ),
        (
            np.zeros((4, 3), np.float32),
            TypeError,
            "parameter's dtype float64, got float32",
        ),
        ([[0.0] * 3] * 4, TypeError, "a numpy array or a RowSparse, got list"),
        (
            RowSparse(np.array([0, 0]), np.zeros((2, 3))),
            ValueError,
            "rows must be unique",
        ),
        (
            RowSparse(np.array([4]), np.zeros((1, 3))),
            ValueError,
            r"rows must be in \[0, 4\)",
        ),
        (
            RowSparse(np.array([-1]), np.zeros((1, 3))),
            ValueError,
            r"rows must be in \[0, 4\)",
        ),
        (
            RowSparse(np.array([0.0]), np.zeros((1, 3))),
            TypeError,
            "rows must be a 1-D integer array",
        ),
        (
            RowSparse([0], np.zeros((1, 3))),
            TypeError,
            "rows must be a 1-D integer array",
        ),
        (
            RowSparse(np.array([0]), np.zeros((2, 3))),
            ValueError,
            r"values must have shape \(1, 3\)",
        ),
        (
            RowSparse(np.array([0]), np.zeros((1, 3), np.float32)),
            TypeError,
            "values must have the parameter's dtype",
        ),
    ],
)
def test_bad_gradients(grad, error, message):
    opt = SGD({"w": np.zeros((4, 3))}, lr=0.1)
    with pytest.raises(error, match=message):
        opt.step({"w": grad})


def test_gradient_without_a_parameter_and_non_dict_grads():
    opt = SGD({"w": np.zeros(2)}, lr=0.1)
    with pytest.raises(
        KeyError, match=r"grads\['v'\] has no parameter; params are 'w'"
    ):
        opt.step({"v": np.zeros(2)})
    with pytest.raises(TypeError, match="grads must be a dict, got list"):
        opt.step([np.zeros(2)])


def test_row_sparse_gradient_of_a_scalar_parameter():
    opt = SGD({"s": np.zeros(())}, lr=0.1)
    with pytest.raises(ValueError, match="row-sparse, but the parameter is 0-D"):
        opt.step({"s": RowSparse(np.array([0]), np.zeros(1))})

"""The PyTorch twin of benchmarks/ computes what rnnrec computes, in float64."""

import importlib.util
import json
import os

import numpy as np
import pytest

from rnnrec.data import (
    Sessions,
    index_test_like_train,
    make_synthetic,
    session_parallel_batches,
)
from rnnrec.evaluation import evaluate_next_click
from rnnrec.losses import get_loss
from rnnrec.model import SessionRecommender
from rnnrec.optim import RowSparse

torch = pytest.importorskip("torch", reason="the PyTorch twin needs torch")

HERE = os.path.dirname(os.path.abspath(__file__))
BENCHMARKS = os.path.join(os.path.dirname(HERE), "benchmarks")
RTOL = 1e-10


def _script(name):
    spec = importlib.util.spec_from_file_location(
        name, os.path.join(BENCHMARKS, f"{name}.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def twin():
    return _script("torch_twin")


@pytest.fixture(scope="module")
def data():
    train, test = make_synthetic(
        n_items=25, n_train_sessions=40, n_test_sessions=12, mean_length=5, seed=3
    )
    return train, test


BASE = {
    "dtype": np.float64,
    "n_sample": 7,
    "batch_size": 4,
    "sample_alpha": 0.5,
    "seed": 0,
}


def built_model(train, **config):
    """An rnnrec model with its parameters drawn, and its loss object."""
    model = SessionRecommender(**{**BASE, **config})
    model._check_config()
    model._build(train.n_items, np.random.default_rng(0))
    model.item_ids_ = train.item_ids
    final_act = model.final_act or ("elu-1" if model.loss == "bpr-max" else "linear")
    params = {"bpreg": model.bpreg} if model.loss == "bpr-max" else {}
    return model, get_loss(model.loss, final_activation=final_act, **params)


def pick_block(train, batch_size, steps, kind):
    """A block with a reset (after its first step if it has more), or a padded one."""
    blocks = list(session_parallel_batches(train, batch_size, steps=steps))
    for block in blocks[1:]:
        inside = block.reset[1:] if steps > 1 else block.reset
        if (kind == "padded" and not block.valid.all()) or (
            kind == "inner" and inside.any()
        ):
            return block
    raise AssertionError(f"no {kind} block")


def dense(grads, params):
    return {
        name: g.to_dense(params[name].shape) if isinstance(g, RowSparse) else g
        for name, g in grads.items()
    }


def assert_close(actual, desired, what):
    scale = np.abs(desired).max() if np.size(desired) else 0.0
    np.testing.assert_allclose(
        actual, desired, rtol=RTOL, atol=RTOL * 1e-3 * scale, err_msg=what
    )


CASES = {
    "ce-tied-bptt1": ({"loss": "cross-entropy", "logq": 1.0, "layers": (8,)}, 1),
    "ce-embed-bptt3": (
        {"loss": "cross-entropy", "logq": 0.7, "embedding": 6, "layers": (8,)},
        3,
    ),
    "ce-onehot-bptt3": ({"loss": "cross-entropy", "embedding": 0, "layers": (5,)}, 3),
    "bprmax-tied-2layers-bptt3": (
        {"loss": "bpr-max", "bpreg": 0.9, "embedding": "tied", "layers": (6, 8)},
        3,
    ),
    "bprmax-embed-2layers-bptt1": (
        {"loss": "bpr-max", "bpreg": 0.5, "embedding": 5, "layers": (8, 6)},
        1,
    ),
    "bprmax-onehot-bptt1": ({"loss": "bpr-max", "embedding": 0, "layers": (6,)}, 1),
    "top1max-tied-bptt2": ({"loss": "top1-max", "embedding": "tied"}, 2),
    "bpr-embed-elu": ({"loss": "bpr", "embedding": 4, "final_act": "elu-0.5"}, 2),
    "top1-tied-tanh": ({"loss": "top1", "embedding": "tied", "final_act": "tanh"}, 1),
}


# Blocks of one step are never padded (every slot left has a pair at that step).
BLOCKS = [
    (case, kind)
    for case, (_, steps) in CASES.items()
    for kind in ("inner", "padded")
    if kind == "inner" or steps > 1
]


@pytest.mark.parametrize(("case", "block_kind"), BLOCKS)
def test_loss_gradients_and_states_equal_rnnrec(twin, data, case, block_kind):
    config, steps = CASES[case]
    config = {"layers": (7,), **config, "bptt": steps}
    train, _ = data
    model, loss_fn = built_model(train, **config)
    torch_model = twin.TorchRecommender.from_rnnrec(model)
    batch = pick_block(train, BASE["batch_size"], steps, block_kind)

    rng = np.random.default_rng(1)
    B = batch.inputs.shape[1]
    states = [rng.standard_normal((B, H)) * 0.5 for H in config["layers"]]
    negatives = rng.integers(0, train.n_items, BASE["n_sample"])
    log_p0 = np.log(np.maximum(train.item_counts(), 1e-3))

    loss, grads, finals = model._train_block(
        batch, [s.copy() for s in states], negatives, loss_fn, None, log_p0
    )
    loss_t, finals_t = torch_model.train_block(
        batch, [torch.tensor(s) for s in states], negatives, log_p0, rng=None
    )

    assert_close(loss_t, loss, "loss")
    ours = dense(grads, model._param_dict())
    theirs = torch_model.numpy_grads()
    assert set(theirs) == set(ours)
    for name in ours:
        assert_close(theirs[name], ours[name], f"gradient of {name}")
    for i, (h_t, h) in enumerate(zip(finals_t, finals, strict=True)):
        assert_close(h_t.numpy(), h, f"final state of layer {i}")


@pytest.mark.parametrize(
    "config",
    [
        {"embedding": "tied", "loss": "bpr-max", "layers": (6, 8)},
        {"embedding": 5, "loss": "cross-entropy", "logq": 1.0, "layers": (8,)},
        {"embedding": 0, "loss": "cross-entropy", "layers": (6,)},
    ],
    ids=["tied", "embed", "onehot"],
)
def test_optimizer_steps_equal_rnnrec(twin, data, config):
    config = {
        **config,
        "bptt": 2,
        "learning_rate": 0.1,
        "momentum": 0.3,
        "l2": 0.01,
    }
    train, _ = data
    model, loss_fn = built_model(train, **config)
    torch_model = twin.TorchRecommender.from_rnnrec(model)
    optimizer = model._make_optimizer()
    optimizer_t = torch_model.make_optimizer()
    rng = np.random.default_rng(2)
    log_p0 = np.log(np.maximum(train.item_counts(), 1e-3))

    # A whole pass, so that padded blocks at the end of the data are included:
    # their padding must not count as touching the padding item's rows.
    states = states_t = None
    for batch in session_parallel_batches(train, BASE["batch_size"], steps=2):
        states = model._carry(states, batch)
        states_t = torch_model.carry_state(states_t, batch.carry)
        negatives = rng.integers(0, train.n_items, BASE["n_sample"])
        _, grads, states = model._train_block(
            batch, states, negatives, loss_fn, None, log_p0
        )
        model._apply(grads, optimizer)
        _, states_t = torch_model.train_block(batch, states_t, negatives, log_p0)
        optimizer_t.step()

        theirs = torch_model.numpy_params()
        for name, value in model._param_dict().items():
            assert_close(theirs[name], value, f"{name} after a step")


@pytest.mark.parametrize("embedding", ["tied", 4, 0])
def test_build_draws_rnnrec_initial_weights(twin, data, embedding):
    train, _ = data
    config = {"embedding": embedding, "layers": (5, 6)}
    model, _ = built_model(train, **config)
    torch_model = twin.TorchRecommender(**{**BASE, **config})
    torch_model.build(train.n_items, np.random.default_rng(0))
    theirs = torch_model.numpy_params()
    ours = model._param_dict()
    assert set(theirs) == set(ours)
    for name, value in ours.items():
        np.testing.assert_array_equal(theirs[name], value, err_msg=name)


def test_gru_forward_is_torch_gru_cell(twin):
    T, B, D, H = 3, 4, 5, 6
    cell = torch.nn.GRUCell(D, H, dtype=torch.float64)
    params = {f"l.{name}": p for name, p in cell.named_parameters()}
    x = torch.randn(T, B, D, dtype=torch.float64)
    h0 = torch.randn(B, H, dtype=torch.float64)
    keep = torch.ones(T, B, 1, dtype=torch.float64)
    keep[1, 2] = 0
    out, h_T = twin.gru_forward(x, h0, keep, params, "l.")
    with torch.no_grad():
        h = h0
        for t in range(T):
            h = cell(x[t], h * keep[t])
            torch.testing.assert_close(out[t], h, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(h_T, h, rtol=1e-12, atol=1e-14)


def test_fit_follows_rnnrec_with_dropout(twin, data):
    """Seeded alike, both train on the same batches, negatives and masks."""
    train, test = data
    config = {
        **BASE,
        "layers": (8,),
        "embedding": "tied",
        "loss": "bpr-max",
        "dropout_p_embed": 0.2,
        "dropout_p_hidden": 0.3,
        "momentum": 0.2,
        "n_epochs": 2,
        "bptt": 2,
    }
    model = SessionRecommender(**config).fit(train)
    torch_model = twin.TorchRecommender(**config).fit(train)
    theirs = torch_model.numpy_params()
    for name, value in model._param_dict().items():
        np.testing.assert_allclose(theirs[name], value, rtol=1e-8, atol=1e-12)
    for ours, their in zip(model.history_, torch_model.history_, strict=True):
        assert their["loss"] == pytest.approx(ours["loss"], rel=1e-8)

    # The scorer protocol: the evaluator gives the same metrics.
    assert evaluate_next_click(torch_model, test) == pytest.approx(
        evaluate_next_click(model, test), rel=1e-12
    )


# -- the twin's own evaluation --------------------------------------------------------


@pytest.fixture(scope="module")
def tied_split():
    """A small split whose test sessions click items unknown to training.

    Training clicks items 0-11; the test sessions also click 90 and 91, which
    `index_test_like_train` drops (some sessions then have too few clicks left).
    """
    rng = np.random.default_rng(5)
    train = Sessions.from_lists(
        [list(rng.integers(0, 12, rng.integers(2, 7))) for _ in range(30)]
    )
    test_lists = [[3, 90, 4, 5, 3], [91, 2], [90, 91, 6], [7, 91, 7, 0, 11, 2]]
    test_lists += [list(rng.integers(0, 12, rng.integers(1, 7))) for _ in range(9)]
    split = index_test_like_train(train, Sessions.from_lists(test_lists))
    assert split.train.n_items == 12
    assert split.n_unknown_clicks == 5 and split.n_dropped_test_sessions >= 1
    return split


def tied_model(train, embedding="tied"):
    """A float64 model whose scores tie exactly: 0 and 1 copy 2, 3-6 score 0."""
    model, _ = built_model(train, layers=(6,), embedding=embedding)
    model.W_y_[:2] = model.W_y_[2]
    model.W_y_[3:7] = 0.0
    model.b_y_[:] = 0.0
    model.b_y_[7] = 0.25
    return model


def brute_force_metrics(model, test, ties, cutoffs):
    """Score each prefix alone and rank its target with plain loops."""
    ranks, n_tied = [], 0
    for s in range(test.n_sessions):
        session = test.session(s)
        state = model.init_state(1)
        for i in range(len(session) - 1):
            reset = np.array([i == 0])
            scores, state = model.score_next(state, session[i : i + 1], reset)
            row, target = scores[0], session[i + 1]
            above = sum(1 for j in range(len(row)) if row[j] > row[target])
            tied = sum(
                1 for j in range(len(row)) if j != target and row[j] == row[target]
            )
            n_tied += tied > 0
            extra = {"standard": 0.0, "conservative": tied, "median": tied / 2}[ties]
            ranks.append(1 + above + extra)
    out = {}
    for k in cutoffs:
        inside = [r for r in ranks if r <= k]
        out[f"recall@{k}"] = len(inside) / len(ranks)
        out[f"mrr@{k}"] = sum(1 / r for r in inside) / len(ranks)
        out[f"ndcg@{k}"] = sum(1 / np.log2(r + 1) for r in inside) / len(ranks)
    out["n"] = len(ranks)
    return out, n_tied


@pytest.mark.parametrize("ties", ["standard", "conservative", "median"])
def test_twin_evaluation_equals_brute_force_and_rnnrec(twin, tied_split, ties):
    test, cutoffs = tied_split.test, (1, 2, 3, 5)
    model = tied_model(tied_split.train)
    torch_model = twin.TorchRecommender.from_rnnrec(model)
    expected, n_tied = brute_force_metrics(model, test, ties, cutoffs)
    assert n_tied >= 5  # the tie rule is exercised
    assert expected["n"] == tied_split.n_test_pairs

    # One slot, three slots (slots refilled and dropped), every session at once.
    for batch_size in (1, 3, 256):
        theirs = torch_model.evaluate(
            test, cutoffs=cutoffs, ties=ties, batch_size=batch_size
        )
        assert theirs == pytest.approx(expected, rel=1e-12, abs=1e-15)
        ours = evaluate_next_click(
            model, test, cutoffs=cutoffs, ties=ties, batch_size=batch_size
        )
        assert theirs == pytest.approx(ours, rel=1e-12, abs=1e-15)


def test_twin_evaluation_tie_rules_differ_and_budget_lowers_slots(twin, tied_split):
    model = tied_model(tied_split.train, embedding=4)
    torch_model = twin.TorchRecommender.from_rnnrec(model)
    test = tied_split.test
    results = {t: torch_model.evaluate(test, cutoffs=3, ties=t) for t in twin.TIES}
    mrr = [results[t]["mrr@3"] for t in ("standard", "median", "conservative")]
    assert mrr[0] > mrr[1] > mrr[2]  # ties in the target's favour, middle, against
    # A budget of one slot's scores, comparisons and counts (V * (8 + 1 + 4) bytes).
    one_slot = torch_model.evaluate(test, cutoffs=3, max_score_bytes=12 * 13)
    assert one_slot == pytest.approx(results["standard"], rel=1e-12)
    assert one_slot == pytest.approx(evaluate_next_click(model, test, cutoffs=3))


def test_twin_target_ranks_equal_rnnrec_on_integer_scores(twin):
    from rnnrec.metrics import target_ranks

    rng = np.random.default_rng(7)
    scores = rng.integers(0, 4, (50, 9)).astype(np.float64)  # many exact ties
    targets = rng.integers(0, 9, 50)
    for ties in twin.TIES:
        theirs = twin.target_ranks(
            torch.from_numpy(scores), torch.from_numpy(targets), ties
        )
        np.testing.assert_array_equal(
            theirs.numpy(), target_ranks(scores, targets, ties), err_msg=ties
        )


def test_twin_evaluation_refuses_unknown_items_and_nan(twin, tied_split):
    torch_model = twin.TorchRecommender.from_rnnrec(tied_model(tied_split.train))
    V = tied_split.train.n_items
    unknown = Sessions.from_lists([[0, 1, V]])
    with pytest.raises(ValueError, match="1 click"):
        torch_model.evaluate(unknown)
    with torch.no_grad():
        torch_model.params["layer0.bias_hh"][0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        torch_model.evaluate(tied_split.test)


def test_bench_train_quick_mode_runs_and_writes_json(tmp_path):
    bench = _script("bench_train")
    train, test = make_synthetic(
        n_items=30, n_train_sessions=300, n_test_sessions=40, seed=4
    )
    folder = tmp_path / "data" / "synthetic"
    folder.mkdir(parents=True)
    for sessions, name in ((train, "train"), (test, "test")):
        lines = [" ".join(map(str, s)) for s in sessions.to_lists(raw=True)]
        (folder / f"{name}_sessions.txt").write_text("\n".join(lines) + "\n")
    configs = tmp_path / "configs"
    configs.mkdir()
    config = {
        "layers": [8],
        "embedding": "tied",
        "loss": "cross-entropy",
        "logq": 1.0,
        "n_sample": 16,
        "dropout_p_hidden": 0.2,
        "batch_size": 8,
        "seed": 0,
    }
    (configs / "synthetic.json").write_text(json.dumps(config))
    out = tmp_path / "bench.json"
    argv = ["--datasets", "synthetic", "--data-dir", str(tmp_path / "data")]
    argv += ["--config-dir", str(configs), "--quick", "--out", str(out)]
    assert bench.main(argv) == 0
    result = json.loads(out.read_text())
    summary = {row["implementation"]: row for row in result["summary"]}
    assert set(summary) == {"rnnrec", "torch"}
    assert summary["torch"]["speed_vs_torch"] == 1.0
    ratio = (
        summary["rnnrec"]["events_per_second"] / summary["torch"]["events_per_second"]
    )
    assert summary["rnnrec"]["speed_vs_torch"] == pytest.approx(ratio, rel=1e-12)
    # Same weights, batches and negatives: one epoch ends at nearly the same loss.
    losses = [r["final_loss"] for r in result["rows"]]
    assert losses[0] == pytest.approx(losses[1], rel=1e-3)
    for row in summary.values():
        assert row["epochs"] == 1 and row["events_per_second"] > 0
        assert 0 < row["recall@20"] <= 1

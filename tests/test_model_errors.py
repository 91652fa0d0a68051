"""The recommender on bad input: arguments, arrays, saved files, and a NaN gradient.

Every mistake gets an error that names what was wrong and what is allowed;
nothing is silently repaired. The last part fuzzes `recommend` with Hypothesis.
"""

import math
import pickle
import re
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnrec.data import Sessions, make_synthetic
from rnnrec.model import SessionRecommender
from rnnrec.optim import RowSparse

SMALL = dict(layers=(6,), n_sample=8, batch_size=4, n_epochs=1, seed=0)


@pytest.fixture(scope="module")
def data():
    return make_synthetic(n_items=30, n_train_sessions=60, n_test_sessions=10, seed=1)


@pytest.fixture(scope="module")
def fitted(data):
    return SessionRecommender(**SMALL).fit(data[0])


# -- a NaN or an infinity in a gradient -------------------------------------------


def poison_gradient(monkeypatch, at, name="W_y", value=np.nan):
    """Put ``value`` into gradient ``name`` of the ``at``-th block; record norms."""
    train_block = SessionRecommender._train_block
    clip = SessionRecommender._clip
    calls, norms = [], []

    def poisoned(self, *args, **kwargs):
        loss, grads, states = train_block(self, *args, **kwargs)
        calls.append(1)
        if len(calls) == at:
            g = grads[name]
            target = g.values if isinstance(g, RowSparse) else g
            target.flat[0] = value
        return loss, grads, states

    def measured(self, grads):
        norms.append(clip(self, grads))
        return norms[-1]

    monkeypatch.setattr(SessionRecommender, "_train_block", poisoned)
    monkeypatch.setattr(SessionRecommender, "_clip", measured)
    return norms


@pytest.mark.parametrize(
    "name, value", [("W_y", np.nan), ("layer0.weight_hh", np.inf), ("E", -np.inf)]
)
def test_a_non_finite_gradient_stops_training_and_says_where(
    data, monkeypatch, name, value
):
    norms = poison_gradient(monkeypatch, 5, name, value)
    model = SessionRecommender(**SMALL)
    with pytest.raises(FloatingPointError) as info:
        model.fit(data[0])
    message = str(info.value)
    assert f"the gradient norm became {abs(value)} at epoch 1, step 5; " in message
    assert "lower learning_rate (now 0.05), set clip_grad_norm" in message
    assert "or train in float64" in message
    largest = max(norms[:4])
    step = norms.index(largest) + 1
    assert (
        f"the largest gradient norm before was {largest:.4g} (epoch 1, step {step})"
        in message
    )
    assert "\n" not in message
    # The bad step was not taken: the parameters stay finite.
    assert all(np.isfinite(p).all() for p in model._param_dict().values())


def test_a_nan_on_the_first_step_with_clipping_and_a_checkpoint(
    data, monkeypatch, tmp_path
):
    poison_gradient(monkeypatch, 1)
    model = SessionRecommender(**{**SMALL, "clip_grad_norm": 2.0})
    path = tmp_path / "c.npz"
    with pytest.raises(FloatingPointError) as info:
        model.fit(data[0], checkpoint=path, checkpoint_every=3)
    message = str(info.value)
    assert "epoch 1, step 1; lower learning_rate" in message
    assert "lower clip_grad_norm (now 2.0)" in message
    assert "it was the first step" in message
    assert "checkpoint" not in message  # none was written yet


def test_the_message_points_at_the_last_checkpoint(data, monkeypatch, tmp_path):
    poison_gradient(monkeypatch, 8)
    path = tmp_path / "c.npz"
    with pytest.raises(FloatingPointError) as info:
        SessionRecommender(**SMALL).fit(data[0], checkpoint=path, checkpoint_every=3)
    assert (
        f"the checkpoint {path}, written at epoch 1, step 6, can be resumed from "
        "with a lower learning_rate" in str(info.value)
    )


def test_a_nan_loss_names_the_largest_gradient_norm_too(data, monkeypatch):
    import rnnrec.losses

    forward = rnnrec.losses.Loss.forward
    calls = []

    def nan_at_step_3(self, scores, log_q=None):
        loss, cache = forward(self, scores, log_q)
        calls.append(1)
        return (math.nan if len(calls) == 3 else loss), cache

    monkeypatch.setattr(rnnrec.losses.Loss, "forward", nan_at_step_3)
    with pytest.raises(FloatingPointError) as info:
        SessionRecommender(**SMALL).fit(data[0])
    assert "the loss became nan at epoch 1, step 3; lower learning_rate" in str(
        info.value
    )
    assert re.search(r"before was [0-9.e+-]+ \(epoch 1, step [12]\)", str(info.value))


# -- arguments --------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"layers": (-3,)}, ValueError, "every entry of layers must be a positive"),
        ({"layers": (4, 0)}, ValueError, "every entry of layers must be a positive"),
        ({"layers": 8}, ValueError, "layers must be a non-empty sequence"),
        ({"n_epochs": 0}, ValueError, "n_epochs must be a positive integer, got 0"),
        ({"n_epochs": -2}, ValueError, "n_epochs must be a positive integer"),
        ({"batch_size": -1}, ValueError, "batch_size must be a positive integer"),
        ({"bptt": 0}, ValueError, "bptt must be a positive integer, got 0"),
        ({"bptt": 1.5}, TypeError, "bptt must be a positive integer, got 1.5"),
        ({"embedding": -4}, ValueError, "embedding must be 0, a positive int or"),
        (
            {"cell": "gruu"},
            ValueError,
            "cell must be one of 'gru', 'lstm', 'rnn', got 'gruu'",
        ),
        (
            {"loss": "softmax"},
            ValueError,
            "loss must be one of 'cross-entropy', 'bpr-max', 'top1-max', 'bpr', "
            "'top1', got 'softmax'",
        ),
        (
            {"optimizer": "rmsprop"},
            ValueError,
            "optimizer must be one of 'adagrad', 'adam', 'sgd', got 'rmsprop'",
        ),
        ({"gru_variant": "x"}, ValueError, "gru_variant must be one of 'torch', 'cho'"),
        ({"backend": "cuda"}, ValueError, "backend must be one of 'numba', 'numpy'"),
        ({"dtype": np.float16}, TypeError, "dtype must be np.float32 or np.float64"),
        ({"final_act": "softmax"}, ValueError, "activation must be one of 'linear'"),
        ({"n_sample": 2.5}, TypeError, "n_sample must be a non-negative int"),
        ({"seed": -1}, ValueError, "seed must be a non-negative integer"),
        ({"momentum": math.nan}, ValueError, "momentum must be a non-negative"),
    ],
)
def test_bad_settings_are_named_with_what_is_allowed(data, kwargs, error, match):
    with pytest.raises(error, match=re.escape(match)):
        SessionRecommender(**{**SMALL, **kwargs}).fit(data[0])


def test_n_sample_larger_than_the_catalogue_warns_and_trains(data):
    train = data[0]
    with pytest.warns(UserWarning, match="n_sample=100 is more than the 30 items"):
        model = SessionRecommender(**{**SMALL, "n_sample": 100}).fit(train)
    assert np.isfinite(model.history_[0]["loss"])


def test_batch_size_larger_than_the_sessions_warns_and_trains():
    train = Sessions.from_lists([[0, 1, 2], [2, 3], [3, 1, 0, 2]])
    model = SessionRecommender(**{**SMALL, "batch_size": 10, "n_sample": 2})
    with pytest.warns(UserWarning, match=r"batch_size=10 .*\(3\); using 3 slots"):
        model.fit(train)
    assert np.isfinite(model.history_[0]["loss"])


def test_fit_checks_its_data(data):
    model = SessionRecommender(**SMALL)
    with pytest.raises(TypeError, match="train must be a rnnrec.data.Sessions, got"):
        model.fit([[0, 1], [1, 2]])
    singles = Sessions.from_lists([[0], [1], [2]])
    with pytest.raises(ValueError, match="every one of its 3 sessions has at most"):
        model.fit(singles)
    other = Sessions.from_lists([[0, 1]], item_ids=np.arange(5))
    with pytest.raises(ValueError, match="valid must share train's item index"):
        model.fit(data[0], valid=other)


def test_refitting_on_other_items_recommends_those(data):
    train = data[0]
    shifted = Sessions(
        items=train.items, offsets=train.offsets, item_ids=train.item_ids + 1000
    )
    model = SessionRecommender(**SMALL).fit(train)
    model.recommend([1, 2])
    model.fit(shifted)  # the id lookup must follow the new items
    items, _ = model.recommend([1001, 1002], k=3)
    assert set(items.tolist()) <= set(shifted.item_ids.tolist())


# -- arrays given to the public methods -----------------------------------------


def test_score_next_checks_its_arrays(fitted):
    state = fitted.init_state(2)
    reset = np.zeros(2, dtype=bool)
    good = np.array([1, 2])
    scores, _ = fitted.score_next(state, good, reset)
    assert scores.shape == (2, 30)
    cases = [
        ((state, good.astype(float), reset), TypeError, "items must be a numpy int"),
        ((state, [1, 2], reset), TypeError, "items must be a numpy integer array"),
        ((state, np.array([1]), reset), ValueError, "items must have shape (2,)"),
        ((state, np.array([1, 30]), reset), ValueError, "in [0, 30), got values"),
        ((state, np.array([-1, 0]), reset), ValueError, "in [0, 30)"),
        ((state, good, np.zeros(2)), TypeError, "reset must have dtype bool"),
        ((state, good, np.zeros(3, bool)), ValueError, "reset must have shape (2,)"),
        ((state[0], good, reset), TypeError, "state must be the list of 1 layer"),
        (([np.zeros((2, 6))], good, reset), TypeError, "dtype float32"),
        (([np.full((2, 6), np.nan, np.float32)], good, reset), ValueError, "NaN"),
    ]
    for args, error, match in cases:
        with pytest.raises(error, match=re.escape(match)):
            fitted.score_next(*args)


def test_init_and_carry_state_check_their_arguments(fitted):
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        fitted.init_state(0)
    state = fitted.init_state(3)
    with pytest.raises(ValueError, match=re.escape("old slot numbers in [0, 3)")):
        fitted.carry_state(state, np.array([0, 3]))
    with pytest.raises(TypeError, match="carry must be a 1-D integer numpy array"):
        fitted.carry_state(state, np.array([0.0]))
    assert fitted.carry_state(state, np.array([2, 0]))[0].shape == (2, 6)


# -- saved files -------------------------------------------------------------------


class _Payload:
    """Unpickling this object would create a file: a stand-in for running code."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_loading_never_runs_code_from_the_file(fitted, tmp_path):
    path = tmp_path / "model.npz"
    fitted.save(path)
    marker = tmp_path / "code-ran"
    with np.load(path, allow_pickle=False) as stored:
        arrays = {k: stored[k] for k in stored.files}
    # An object array is stored pickled: loading it would call open(marker).
    arrays["item_ids"] = np.array([_Payload(str(marker))], dtype=object)
    np.savez(tmp_path / "evil.npz", **arrays)
    assert b"code-ran" in (tmp_path / "evil.npz").read_bytes()
    with pytest.raises(ValueError, match="not an rnnrec model file"):
        SessionRecommender.load(tmp_path / "evil.npz")
    assert not marker.exists()
    raw = pickle.dumps(_Payload(str(marker)))
    (tmp_path / "pickle.npz").write_bytes(raw)
    with pytest.raises(ValueError, match="not an rnnrec model file"):
        SessionRecommender.load(tmp_path / "pickle.npz")
    assert not marker.exists()


def _with_meta(fitted, tmp_path, meta):
    path = tmp_path / "model.npz"
    fitted.save(path)
    with np.load(path, allow_pickle=False) as stored:
        arrays = {k: stored[k] for k in stored.files}
    arrays["meta"] = np.array(meta)
    np.savez(tmp_path / "edited.npz", **arrays)
    return tmp_path / "edited.npz"


@pytest.mark.parametrize(
    "meta, match",
    [
        ("[1, 2]", "the metadata is not an rnnrec model's"),
        ('{"format_version": 1, "config": [1]}', "configuration is not a JSON obj"),
        ('{"format_version": 1, "kind": "x", "config": {}}', "metadata is not an"),
        ('{"format_version": 1, "config": {"cell": "gru", "hack": 1}}', "unknown se"),
        ('{"format_version": 1, "config": {"cell": "transformer"}}', "cell must be"),
        ('{"format_version": 1, "config": {"dtype": "int8"}}', "dtype must be np.f"),
        ("not json", "unreadable metadata"),
    ],
)
def test_bad_metadata_is_refused(fitted, tmp_path, meta, match):
    with pytest.raises(ValueError, match=match):
        SessionRecommender.load(_with_meta(fitted, tmp_path, meta))


def test_missing_file_and_two_dimensional_ids(fitted, tmp_path):
    with pytest.raises(FileNotFoundError):
        SessionRecommender.load(tmp_path / "nothing.npz")
    path = tmp_path / "model.npz"
    fitted.save(path)
    with np.load(path, allow_pickle=False) as stored:
        arrays = {k: stored[k] for k in stored.files}
    arrays["item_ids"] = arrays["item_ids"].reshape(2, -1)
    np.savez(tmp_path / "ids.npz", **arrays)
    with pytest.raises(ValueError, match="item_ids must be 1-D"):
        SessionRecommender.load(tmp_path / "ids.npz")


def test_a_model_seeded_with_a_generator_saves(data, tmp_path):
    model = SessionRecommender(**{**SMALL, "seed": np.random.default_rng(3)})
    model.fit(data[0]).save(tmp_path / "m.npz")
    assert SessionRecommender.load(tmp_path / "m.npz").get_config()["seed"] is None


# -- recommend, fuzzed -----------------------------------------------------------

ids = st.one_of(
    st.integers(-3, 40),  # known ids are 0..29
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=3),
    st.none(),
    st.booleans(),
    st.lists(st.integers(0, 3), max_size=2),
    st.dictionaries(st.text(max_size=1), st.integers(), max_size=1),
)
sessions = st.one_of(
    st.lists(ids, max_size=6),
    st.tuples(ids, ids),
    st.lists(st.integers(0, 29), max_size=6).map(np.array),
    st.lists(st.integers(0, 29), min_size=2, max_size=6).map(
        lambda s: np.array(s[: 2 * (len(s) // 2)]).reshape(2, -1)
    ),
    st.text(max_size=4),
    st.integers(),
    st.none(),
    st.sets(st.integers(0, 29), max_size=3),
)


@settings(max_examples=300, deadline=None)
@given(session=sessions, k=st.integers(-2, 34), exclude_seen=st.booleans())
def test_recommend_raises_only_the_documented_errors(fitted, session, k, exclude_seen):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning may escape either
        try:
            items, scores = fitted.recommend(session, k=k, exclude_seen=exclude_seen)
        except (ValueError, TypeError) as err:
            message = str(err)
            assert message and "\n" not in message
            assert any(
                word in message for word in ("session", "k must", "item id", "unknown")
            ), message
            return
    assert items.shape == scores.shape == (k,)
    assert set(items.tolist()) <= set(range(30))
    assert np.all(scores[:-1] >= scores[1:])  # best first (-inf last)
    seen = {int(i) for i in np.asarray(session, dtype=object).ravel().tolist()}
    if exclude_seen and k <= 30 - len(seen):
        assert not seen & set(items.tolist())
        assert np.isfinite(scores).all()


def test_recommend_batch_rejects_a_bare_string(fitted):
    with pytest.raises(TypeError, match="sessions must be a list of sessions"):
        fitted.recommend_batch("1 2 3")
    with pytest.raises(TypeError, match="session 1 must be a list, tuple or 1-D"):
        fitted.recommend_batch([[1], {2, 3}])

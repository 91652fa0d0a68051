"""The session recommender: training, recommending, saving, and bad input."""

import json

import numpy as np
import pytest

from rnnrec.baselines import Popularity
from rnnrec.data import make_synthetic
from rnnrec.evaluation import evaluate_next_click
from rnnrec.model import SessionRecommender

SMALL = dict(n_items=60, n_train_sessions=1500, n_test_sessions=200, seed=0)


@pytest.fixture(scope="module")
def data():
    return make_synthetic(**SMALL)


@pytest.fixture(scope="module")
def fitted(data):
    train, _ = data
    model = SessionRecommender(
        layers=(24,), n_sample=32, batch_size=16, n_epochs=3, learning_rate=0.1,
        momentum=0.1, seed=0,
    )  # fmt: skip
    return model.fit(train)


def test_training_lowers_the_loss_and_beats_popularity(data, fitted):
    train, test = data
    losses = [record["loss"] for record in fitted.history_]
    assert losses[-1] < losses[0]
    model = evaluate_next_click(fitted, test, cutoffs=(20,))
    popularity = evaluate_next_click(Popularity().fit(train), test, cutoffs=(20,))
    assert model["recall@20"] > popularity["recall@20"] + 0.1


@pytest.mark.parametrize("cell", ["gru", "lstm", "rnn"])
@pytest.mark.parametrize(
    "loss", ["cross-entropy", "bpr-max", "top1-max", "bpr", "top1"]
)
def test_every_cell_and_loss_trains(data, cell, loss):
    train, _ = data
    model = SessionRecommender(
        cell=cell, loss=loss, layers=(8,), n_sample=8, batch_size=8, n_epochs=1,
        embedding="tied", seed=1,
    )  # fmt: skip
    model.fit(train)
    assert np.isfinite(model.history_[0]["loss"])


def test_same_seed_same_model(data):
    train, _ = data
    kwargs = dict(layers=(8,), n_sample=8, n_epochs=1, dropout_p_hidden=0.2, seed=5)
    a = SessionRecommender(**kwargs).fit(train)
    b = SessionRecommender(**kwargs).fit(train)
    np.testing.assert_array_equal(a.W_y_, b.W_y_)
    assert a.history_[0]["loss"] == b.history_[0]["loss"]


def test_fit_with_valid_records_the_metrics_of_every_epoch(data):
    train, test = data
    model = SessionRecommender(
        layers=(16,), n_sample=16, batch_size=16, n_epochs=2, seed=3
    ).fit(train, valid=test)
    assert [r["epoch"] for r in model.history_] == [1, 2]
    for record in model.history_:
        assert 0 <= record["mrr@20"] <= record["recall@20"] <= 1
        assert record["events_per_second"] > 0
    # the last epoch's numbers are the trained model's on the same sessions
    final = evaluate_next_click(model, test, cutoffs=(20,))
    assert model.history_[-1]["recall@20"] == final["recall@20"]
    assert model.history_[-1]["mrr@20"] == final["mrr@20"]
    # and validating does not change training: same seed, same weights
    plain = SessionRecommender(
        layers=(16,), n_sample=16, batch_size=16, n_epochs=2, seed=3
    ).fit(train)
    np.testing.assert_array_equal(plain.W_y_, model.W_y_)


def test_recommend_returns_user_ids_best_first(fitted):
    items, scores = fitted.recommend([3, 7], k=5)
    assert items.shape == (5,) and scores.shape == (5,)
    assert np.all(np.diff(scores) <= 0)
    assert set(items) <= set(fitted.item_ids_.tolist())
    seen, _ = fitted.recommend([3, 7], k=fitted.n_items, exclude_seen=True)
    assert 3 not in seen[: fitted.n_items - 2] and 7 not in seen[: fitted.n_items - 2]


def test_recommend_batch_matches_single_sessions(fitted):
    sessions = [[1, 2, 3], [4], [5, 6]]
    items, scores = fitted.recommend_batch(sessions, k=4)
    for n, session in enumerate(sessions):
        one, s = fitted.recommend(session, k=4)
        np.testing.assert_array_equal(items[n], one)
        np.testing.assert_allclose(scores[n], s)


@pytest.mark.parametrize(
    "session, k, match",
    [([], 5, "session 0 is empty"), ([9999], 5, "unknown to the model"),
     ([1], 0, "k must be a positive integer"), ([1], 10**6, "at most the number")],
)  # fmt: skip
def test_recommend_bad_input(fitted, session, k, match):
    with pytest.raises((ValueError, TypeError), match=match):
        fitted.recommend(session, k=k)


def test_save_and_load_give_the_same_scores(fitted, tmp_path):
    path = tmp_path / "model.npz"
    fitted.save(path)
    loaded = SessionRecommender.load(path)
    a = fitted.recommend([1, 2, 3], k=10)
    b = loaded.recommend([1, 2, 3], k=10)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert loaded.get_config() == fitted.get_config()


def _rewrite(path, out, change):
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    change(arrays)
    np.savez(out, **arrays)


def test_load_rejects_damaged_files(fitted, tmp_path):
    path = tmp_path / "model.npz"
    fitted.save(path)
    raw = path.read_bytes()
    (tmp_path / "cut.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="not an rnnrec model file"):
        SessionRecommender.load(tmp_path / "cut.npz")
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(ValueError, match="not an rnnrec model file"):
        SessionRecommender.load(tmp_path / "text.npz")

    def version(arrays):
        meta = json.loads(str(arrays["meta"]))
        meta["format_version"] = 99
        arrays["meta"] = np.array(json.dumps(meta))

    _rewrite(path, tmp_path / "v.npz", version)
    with pytest.raises(ValueError, match="format version 99"):
        SessionRecommender.load(tmp_path / "v.npz")
    _rewrite(path, tmp_path / "m.npz", lambda a: a.pop("param/W_y"))
    with pytest.raises(ValueError, match=r"missing \['W_y'\]"):
        SessionRecommender.load(tmp_path / "m.npz")

    def shape(arrays):
        arrays["param/b_y"] = arrays["param/b_y"][:-1]

    _rewrite(path, tmp_path / "s.npz", shape)
    with pytest.raises(ValueError, match="array b_y has shape"):
        SessionRecommender.load(tmp_path / "s.npz")
    _rewrite(path, tmp_path / "p.npz", lambda a: a.update(meta=np.array([{}])))
    with pytest.raises(ValueError, match="not an rnnrec model file|unreadable"):
        SessionRecommender.load(tmp_path / "p.npz")


def test_saving_never_leaves_a_half_written_file(fitted, tmp_path, monkeypatch):
    path = tmp_path / "model.npz"
    fitted.save(path)
    before = path.read_bytes()

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", fail)
    with pytest.raises(OSError, match="disk full"):
        fitted.save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (
            {"cell": "transformer"},
            ValueError,
            "cell must be one of 'gru', 'lstm', 'rnn'",
        ),
        ({"loss": "mse"}, ValueError, "loss must be one of"),
        ({"optimizer": "lbfgs"}, ValueError, "optimizer must be one of"),
        ({"layers": ()}, ValueError, "layers must be a non-empty sequence"),
        ({"layers": (0,)}, ValueError, "positive integer"),
        ({"embedding": -1}, ValueError, "embedding must be 0"),
        ({"embedding": "big"}, TypeError, "embedding must be 0"),
        ({"bptt": 0}, ValueError, "bptt must be a positive integer"),
        ({"batch_size": 0}, ValueError, "batch_size must be a positive integer"),
        ({"n_sample": -1}, ValueError, "n_sample must be a non-negative int"),
        (
            {"dropout_p_hidden": 1.0},
            ValueError,
            r"dropout_p_hidden must be in \[0, 1\)",
        ),
        ({"learning_rate": 0}, ValueError, "learning_rate must be a positive number"),
    ],
)
def test_bad_configuration_is_refused_by_fit(data, kwargs, error, match):
    with pytest.raises(error, match=match):
        SessionRecommender(**kwargs).fit(data[0])


def test_a_non_finite_loss_stops_training_with_advice(data, monkeypatch):
    import rnnrec.losses

    original = rnnrec.losses.Loss.forward
    calls = []

    def forward(self, scores, log_q=None):
        loss, cache = original(self, scores, log_q)
        calls.append(1)
        return (float("nan") if len(calls) == 3 else loss), cache

    monkeypatch.setattr(rnnrec.losses.Loss, "forward", forward)
    model = SessionRecommender(layers=(8,), n_sample=8, n_epochs=1, seed=0)
    with pytest.raises(
        FloatingPointError, match="epoch 1, step 3; lower learning_rate"
    ):
        model.fit(data[0])


def test_methods_need_a_fitted_model():
    with pytest.raises(RuntimeError, match="not fitted"):
        SessionRecommender().recommend([1])


@pytest.mark.parametrize(
    "cell, embedding, expected",
    [
        # V=60 items, H=16: output W_y (V, H) and b_y (V,), then the layer.
        ("gru", "tied", 60 * 16 + 60 + 2 * 48 * 16 + 2 * 48),
        ("gru", 0, 60 * 16 + 60 + 60 * 48 + 48 * 16 + 2 * 48),  # E is (V, 3H)
        ("lstm", 8, 60 * 16 + 60 + 60 * 8 + 64 * 8 + 64 * 16 + 2 * 64),
        ("rnn", "tied", 60 * 16 + 60 + 2 * 16 * 16 + 2 * 16),
    ],
)
def test_n_parameters_counts_every_trainable_scalar_once(cell, embedding, expected):
    train, _ = make_synthetic(n_items=60, n_train_sessions=300, n_test_sessions=20)
    model = SessionRecommender(
        cell=cell, layers=(16,), embedding=embedding, n_epochs=1, n_sample=10, seed=0
    ).fit(train)
    assert model.n_items == 60
    assert model.n_parameters == expected

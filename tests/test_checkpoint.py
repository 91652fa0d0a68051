"""Checkpoints: writing them changes nothing, resuming is bit-identical, crashes lose
nothing, and every damaged or mismatched checkpoint is refused with a clear error.

Bit-identity is claimed for float64 on one BLAS thread; the tests run under
`threadpoolctl` with one thread when it is installed (and are meant to run with
``OPENBLAS_NUM_THREADS=1`` otherwise).
"""

import contextlib
import io
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from rnnrec.cli import main
from rnnrec.data import make_synthetic
from rnnrec.model import SessionRecommender
from rnnrec.model.checkpoint import read_checkpoint, read_checkpoint_config

try:
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover - threadpoolctl is a bench extra
    threadpool_limits = None

CONFIGS = {
    # one-hot input, Adagrad with momentum, both dropouts: every random draw
    "gru-onehot-adagrad": dict(
        cell="gru", layers=(8,), embedding=0, momentum=0.3, dropout_p_embed=0.1,
        dropout_p_hidden=0.2, n_sample=12, batch_size=6,
    ),
    # two LSTM layers, tied embedding, Adam, blocks of 3 steps
    "lstm-tied-adam": dict(
        cell="lstm", layers=(6, 5), embedding="tied", optimizer="adam",
        learning_rate=0.01, bptt=3, n_sample=8, batch_size=5,
    ),
    # an embedding, SGD with momentum, clipping, BPR-max
    "rnn-embedding-sgd": dict(
        cell="rnn", layers=(7,), embedding=4, optimizer="sgd", momentum=0.5,
        clip_grad_norm=0.5, loss="bpr-max", n_sample=10, batch_size=4,
    ),
}  # fmt: skip
COMMON = dict(n_epochs=2, dtype=np.float64, seed=11)


@pytest.fixture(autouse=True)
def one_thread():
    limits = threadpool_limits(1) if threadpool_limits else contextlib.nullcontext()
    with limits:
        yield


@pytest.fixture(scope="module")
def data():
    # 60 sessions, 440 predictions, in 4-6 slots: 75-110 steps per epoch.
    return make_synthetic(n_items=40, n_train_sessions=60, n_test_sessions=20, seed=4)


def arrays_of(path):
    """Every array of a checkpoint, and its metadata without the timings."""
    saved = read_checkpoint(path)
    meta = dict(saved.meta)
    meta["history"] = [
        {k: v for k, v in r.items() if k not in ("seconds", "events_per_second")}
        for r in meta["history"]
    ]
    meta["run"] = {k: v for k, v in meta["run"].items() if k != "seconds"}
    return saved.arrays, meta


def assert_same_checkpoint(a, b):
    arrays_a, meta_a = arrays_of(a)
    arrays_b, meta_b = arrays_of(b)
    assert sorted(arrays_a) == sorted(arrays_b)
    for name in arrays_a:
        np.testing.assert_array_equal(arrays_a[name], arrays_b[name], err_msg=name)
    assert meta_a == meta_b


def assert_same_model(a, b):
    params_a, params_b = a._param_dict(), b._param_dict()
    assert list(params_a) == list(params_b)
    for name in params_a:
        np.testing.assert_array_equal(params_a[name], params_b[name], err_msg=name)
    assert [r["loss"] for r in a.history_] == [r["loss"] for r in b.history_]


def interrupt_at(monkeypatch, call):
    """Make the ``call``-th block of training raise KeyboardInterrupt (Ctrl-C)."""
    original = SessionRecommender._train_block
    calls = []

    def train_block(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == call:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(SessionRecommender, "_train_block", train_block)


def test_checkpointing_changes_nothing(data, tmp_path):
    train, test = data
    config = {**CONFIGS["gru-onehot-adagrad"], **COMMON, "dtype": np.float32}
    plain = SessionRecommender(**config).fit(train, valid=test)
    checked = SessionRecommender(**config).fit(
        train, valid=test, checkpoint=tmp_path / "c.npz", checkpoint_every=5
    )
    assert_same_model(plain, checked)
    assert plain.history_[-1]["recall@20"] == checked.history_[-1]["recall@20"]
    assert [p.name for p in tmp_path.iterdir()] == ["c.npz"]


@pytest.mark.parametrize("name", list(CONFIGS))
@pytest.mark.parametrize("stop", [23, "epoch"], ids=["mid-epoch", "epoch-border"])
def test_resuming_is_bit_identical_to_the_uninterrupted_run(
    data, tmp_path, monkeypatch, name, stop
):
    train, test = data
    config = {**CONFIGS[name], **COMMON}
    whole = tmp_path / "whole.npz"
    uninterrupted = SessionRecommender(**config).fit(
        train, valid=test, checkpoint=whole, checkpoint_every=7
    )

    # A crash at step 23 finds the checkpoint of step 21; a crash right after
    # the first epoch finds that epoch's checkpoint.
    path = tmp_path / "run.npz"
    with monkeypatch.context() as patch:
        steps_per_epoch = read_checkpoint(whole).meta["run"]["total_steps"] // 2
        interrupt_at(patch, 23 if stop == 23 else steps_per_epoch + 1)
        with pytest.raises(KeyboardInterrupt):
            SessionRecommender(**config).fit(
                train, valid=test, checkpoint=path, checkpoint_every=7
            )
    run = read_checkpoint(path).meta["run"]
    if stop == 23:
        assert (run["epochs_done"], run["steps_done"]) == (0, 21)
    else:
        assert (run["epochs_done"], run["steps_done"]) == (1, 0)

    resumed = SessionRecommender(**config).fit(
        train, valid=test, checkpoint=path, checkpoint_every=7, resume=path
    )
    assert_same_model(uninterrupted, resumed)
    recalls = [r["recall@20"] for r in uninterrupted.history_]
    assert [r["recall@20"] for r in resumed.history_] == recalls
    # Parameters, optimizer state, generator and sampler, all alike.
    assert_same_checkpoint(whole, path)


def test_resuming_with_more_epochs_is_the_longer_run(data, tmp_path):
    train, _ = data
    config = {**CONFIGS["lstm-tied-adam"], **COMMON}
    longer = SessionRecommender(**config).fit(train)
    path = tmp_path / "c.npz"
    SessionRecommender(**{**config, "n_epochs": 1}).fit(train, checkpoint=path)
    resumed = SessionRecommender(**config).fit(train, resume=path)
    assert_same_model(longer, resumed)
    # resuming a finished run trains nothing more
    again = SessionRecommender(**{**config, "n_epochs": 1}).fit(train, resume=path)
    assert len(again.history_) == 1


def test_a_checkpoint_reads_as_a_model(data, tmp_path):
    train, _ = data
    config = {**CONFIGS["gru-onehot-adagrad"], **COMMON}
    model = SessionRecommender(**config).fit(train, checkpoint=tmp_path / "c.npz")
    loaded = SessionRecommender.load(tmp_path / "c.npz")
    items, scores = model.recommend([1, 2], k=5)
    np.testing.assert_array_equal(loaded.recommend([1, 2], k=5)[0], items)
    np.testing.assert_array_equal(loaded.recommend([1, 2], k=5)[1], scores)
    stored = read_checkpoint_config(tmp_path / "c.npz")
    assert SessionRecommender(**stored).get_config() == model.get_config()


# -- a write that fails half-way --------------------------------------------------


def test_a_write_failing_half_way_leaves_the_previous_checkpoint(
    data, tmp_path, monkeypatch
):
    train, _ = data
    config = {**CONFIGS["rnn-embedding-sgd"], **COMMON}
    path = tmp_path / "c.npz"
    savez = np.savez
    writes = []

    def fail_on_the_second_write(f, *args, **kwargs):
        writes.append(1)
        if len(writes) < 2:
            return savez(f, *args, **kwargs)
        whole = io.BytesIO()
        savez(whole, *args, **kwargs)
        f.write(whole.getvalue()[: len(whole.getvalue()) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", fail_on_the_second_write)
    with pytest.raises(OSError, match="No space left"):
        SessionRecommender(**config).fit(train, checkpoint=path, checkpoint_every=10)
    monkeypatch.undo()

    # The first checkpoint (step 10) is whole, and nothing else is left behind.
    assert [p.name for p in tmp_path.iterdir()] == ["c.npz"]
    assert read_checkpoint(path).meta["run"]["steps_done"] == 10
    resumed = SessionRecommender(**config).fit(train, resume=path)
    assert_same_model(SessionRecommender(**config).fit(train), resumed)


CRASHING_RUN = """
import io, os, sys
import numpy as np
from rnnrec.data import make_synthetic
from rnnrec.model import SessionRecommender

savez, writes = np.savez, []

def savez_then_crash(f, *args, **kwargs):
    writes.append(1)
    if len(writes) < 3:
        return savez(f, *args, **kwargs)
    whole = io.BytesIO()
    savez(whole, *args, **kwargs)
    f.write(whole.getvalue()[: len(whole.getvalue()) // 2])
    f.flush()
    os._exit(3)  # the process dies: no cleanup, no exception handling

np.savez = savez_then_crash
train, _ = make_synthetic(n_items=40, n_train_sessions=60, n_test_sessions=20, seed=4)
config = {config}
SessionRecommender(**config).fit(train, checkpoint=sys.argv[1], checkpoint_every=8)
"""


def test_a_process_killed_while_writing_keeps_the_previous_checkpoint(data, tmp_path):
    train, _ = data
    config = {**CONFIGS["gru-onehot-adagrad"], **COMMON}
    path = tmp_path / "c.npz"
    script = CRASHING_RUN.format(config={**config, "dtype": "float64"})
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert result.returncode == 3, result.stderr
    # The half-written temporary file stays behind; the checkpoint is the
    # second one, whole.
    names = sorted(p.name for p in tmp_path.iterdir())
    assert len(names) == 2 and names[0].startswith(".tmp-") and names[1] == "c.npz"
    assert read_checkpoint(path).meta["run"]["total_steps"] == 16
    resumed = SessionRecommender(**config).fit(train, resume=path)
    assert_same_model(SessionRecommender(**config).fit(train), resumed)


# -- what cannot be resumed ---------------------------------------------------------


@pytest.fixture(scope="module")
def checkpoint(data, tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "c.npz"
    config = {**CONFIGS["gru-onehot-adagrad"], **COMMON, "n_epochs": 1}
    SessionRecommender(**config).fit(data[0], checkpoint=path)
    return path, config


def rewrite(path, out, change):
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    change(arrays)
    np.savez(out, **arrays)
    return out


def edit_meta(change):
    def apply(arrays):
        meta = json.loads(str(arrays["meta"]))
        change(meta)
        arrays["meta"] = np.array(json.dumps(meta))

    return apply


@pytest.mark.parametrize(
    "overrides, match",
    [
        ({"layers": (9,)}, r"another configuration: layers \(checkpoint \[8\], model"),
        ({"momentum": 0.0, "seed": 2}, r"momentum .*; seed \(checkpoint 11, model 2"),
        ({"backend": "numpy"}, r"backend \(checkpoint 'numba', model 'numpy'\)"),
    ],
)
def test_resuming_with_another_configuration_is_refused(
    data, checkpoint, overrides, match
):
    path, config = checkpoint
    with pytest.raises(ValueError, match=match):
        SessionRecommender(**{**config, **overrides}).fit(data[0], resume=path)


def test_resuming_may_lower_the_learning_rate_and_clip(data, checkpoint):
    path, config = checkpoint
    changed = {**config, "n_epochs": 2, "learning_rate": 0.01, "clip_grad_norm": 1.0}
    model = SessionRecommender(**changed).fit(data[0], resume=path)
    assert len(model.history_) == 2


def test_resuming_on_other_data_is_refused(checkpoint):
    path, config = checkpoint
    other, _ = make_synthetic(n_items=40, n_train_sessions=121, seed=4)
    with pytest.raises(ValueError, match="while training on other data"):
        SessionRecommender(**config).fit(other, resume=path)


def test_resuming_past_the_last_epoch_is_refused(data, checkpoint, tmp_path):
    path, config = checkpoint
    SessionRecommender(**{**config, "n_epochs": 2}).fit(
        data[0], checkpoint=tmp_path / "two.npz"
    )
    with pytest.raises(ValueError, match="trained 2 epochs already, more than n_ep"):
        SessionRecommender(**config).fit(data[0], resume=tmp_path / "two.npz")


def test_damaged_checkpoints_are_refused(data, checkpoint, tmp_path):
    path, config = checkpoint
    model = SessionRecommender(**config)
    train = data[0]

    def refused(file, match):
        with pytest.raises(ValueError, match=match):
            model.fit(train, resume=file)

    raw = path.read_bytes()
    (tmp_path / "cut.npz").write_bytes(raw[: len(raw) // 2])
    refused(tmp_path / "cut.npz", "is not an rnnrec checkpoint")
    (tmp_path / "text.npz").write_text("not a zip file")
    refused(tmp_path / "text.npz", "is not an rnnrec checkpoint")
    saved_model = tmp_path / "model.npz"
    SessionRecommender.load(path).save(saved_model)
    refused(saved_model, "a model saved by save.. holds no training state")

    def version(meta):
        meta["format_version"] = 7

    refused(rewrite(path, tmp_path / "v.npz", edit_meta(version)), "version 7")
    refused(
        rewrite(path, tmp_path / "m.npz", edit_meta(lambda m: m.pop("rng"))),
        "metadata lacks 'rng'",
    )

    def shrink(arrays):
        arrays["optim/W_y/sum_sq"] = arrays["optim/W_y/sum_sq"][:-1]

    refused(rewrite(path, tmp_path / "s.npz", shrink), "optim/W_y/sum_sq has shape")
    refused(
        rewrite(path, tmp_path / "p.npz", lambda a: a.pop("param/b_y")),
        "lacks the array param/b_y",
    )

    def poison(arrays):
        arrays["param/W_y"] = np.full_like(arrays["param/W_y"], np.nan)

    refused(rewrite(path, tmp_path / "n.npz", poison), "NaN or infinity")

    def bad_draws(arrays):
        arrays["sampler/unused"] = np.array([10**6])

    refused(rewrite(path, tmp_path / "d.npz", bad_draws), "sampler's draws")
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        model.fit(train, resume=tmp_path / "nowhere.npz")


def test_checkpoint_arguments_are_checked_before_training(data, tmp_path):
    model = SessionRecommender(n_sample=8, layers=(4,), n_epochs=1)
    with pytest.raises(ValueError, match="checkpoint_every needs a checkpoint"):
        model.fit(data[0], checkpoint_every=5)
    with pytest.raises(ValueError, match="checkpoint_every must be a positive int"):
        model.fit(data[0], checkpoint=tmp_path / "c.npz", checkpoint_every=0)
    with pytest.raises(ValueError, match="cannot write the checkpoint .*no folder"):
        model.fit(data[0], checkpoint=tmp_path / "missing" / "c.npz")
    assert not hasattr(model, "layers_")


# -- the command line ------------------------------------------------------------


def test_the_command_line_resumes(data, tmp_path, monkeypatch, capsys):
    train, test = data
    for name, part in (("train.txt", train), ("test.txt", test)):
        lines = [" ".join(map(str, s)) for s in part.to_lists(raw=True)]
        (tmp_path / name).write_text("\n".join(lines) + "\n")
    argv = [
        "train", str(tmp_path / "train.txt"), "--test", str(tmp_path / "test.txt"),
        "--layers", "6", "--n-sample", "8", "--batch-size", "5", "--n-epochs", "2",
        "--dtype", "float64", "--dropout-p-hidden", "0.2", "--quiet",
        "--baselines",
    ]  # fmt: skip
    whole = tmp_path / "whole.json"
    assert main([*argv, "--metrics-json", str(whole)]) == 0

    ckpt = tmp_path / "run.npz"
    with monkeypatch.context() as patch:
        interrupt_at(patch, 30)
        status = main([*argv, "--checkpoint", str(ckpt), "--checkpoint-every", "8"])
    assert status == 130
    err = capsys.readouterr().err
    assert f"interrupted; carry on with the same command and --resume {ckpt}" in err

    resumed = tmp_path / "resumed.json"
    status = main(["train", str(tmp_path / "train.txt"), "--test",
                   str(tmp_path / "test.txt"), "--quiet", "--baselines",
                   "--resume", str(ckpt), "--metrics-json", str(resumed)])  # fmt: skip
    assert status == 0
    assert f"resuming from {ckpt}" in capsys.readouterr().out
    a, b = json.loads(whole.read_text()), json.loads(resumed.read_text())
    assert a["mrr@20"] == b["mrr@20"] and a["recall@20"] == b["recall@20"]
    losses = [[r["loss"] for r in m["run"]["history"]] for m in (a, b)]
    assert losses[0] == losses[1]
    assert read_checkpoint(ckpt).meta["run"]["epochs_done"] == 2

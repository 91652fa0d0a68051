"""Every recommender subcommand on bad arguments: one line, status 2, no traceback.

Usage mistakes caught by argparse print the usage and one ``error:`` line;
mistakes found later (a missing file, a bad setting, data that does not fit)
print only the ``rnnrec CMD: error: ...`` line. A training run that diverges
is not a usage mistake: one line again, with status 1.
"""

import math

import pytest

from rnnrec.cli import main

TINY = ["--layers", "4", "--n-sample", "4", "--n-epochs", "1", "--batch-size", "8"]
TINY += ["--quiet"]


def run(argv, capsys):
    """Run the command in-process; return (status, stdout, stderr)."""
    try:
        status = main(argv)
    except SystemExit as exit_:
        status = exit_.code
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    train = "\n".join(f"{i} {i + 1} {i + 2}" for i in range(1, 30)) + "\n"
    (folder / "train.txt").write_text(train)
    (folder / "test.txt").write_text("2 3 4\n5 6\n")
    (folder / "text.npz").write_text("not a model")
    (folder / "list.json").write_text("[1, 2]")
    (folder / "broken.json").write_text("{")
    (folder / "unknown.json").write_text('{"hidden": 5}')
    (folder / "views.csv").write_text("a;b\n1;2\n")
    model = folder / "model.npz"
    argv = ["train", str(folder / "train.txt"), "--test", str(folder / "test.txt")]
    assert main([*argv, *TINY, "--baselines", "--save", str(model)]) == 0
    return folder


DATA = ["train", "{dir}/train.txt", "--test", "{dir}/test.txt", *TINY]
MODEL = "{dir}/model.npz"
CASES = [
    # train
    ([*DATA, "--n-epochs", "0"], "n_epochs must be a positive integer, got 0"),
    ([*DATA, "--n-epochs", "x"], "argument --n-epochs: invalid int value: 'x'"),
    ([*DATA, "--dtype", "float16"], "dtype must be np.float32 or np.float64"),
    ([*DATA, "--cell", "transformer"], "cell must be one of 'gru', 'lstm', 'rnn'"),
    ([*DATA, "--optimizer", "lbfgs"], "optimizer must be one of 'adagrad', 'adam'"),
    ([*DATA, "--embedding", "big"], "--embedding must be 0, a size or tied"),
    ([*DATA, "--bptt", "0"], "bptt must be a positive integer, got 0"),
    ([*DATA, "--config", "{dir}/none.json"], "No such file"),
    ([*DATA, "--config", "{dir}/list.json"], "must hold a JSON object"),
    ([*DATA, "--config", "{dir}/broken.json"], "not valid JSON"),
    ([*DATA, "--config", "{dir}/unknown.json"], "unknown settings ['hidden']"),
    ([*DATA, "--format", "events"], "lacks the column(s) ['SessionId', 'ItemId'"),
    ([*DATA, "--save", "{dir}/no/m.npz"], "cannot write"),
    ([*DATA, "--checkpoint-every", "5"], "checkpoint_every needs a checkpoint"),
    (
        [*DATA, "--checkpoint", "{dir}/c.npz", "--checkpoint-every", "0"],
        "argument --checkpoint-every: must be at least 1, got 0",
    ),
    ([*DATA, "--threads", "0"], "argument --threads: must be at least 1, got 0"),
    ([*DATA, "--resume", "{dir}/none.npz"], "checkpoint not found"),
    ([*DATA, "--resume", MODEL], "holds no training state to resume from"),
    (["train", "{dir}/train.txt", *TINY], "no times to split by; give --test TEST"),
    (["train", "--cutoffs", "-1"], "--cutoffs must be positive integers"),
    # evaluate
    (["evaluate", "{dir}/none.npz", "{dir}/test.txt"], "none.npz"),
    (["evaluate", "{dir}/text.npz", "{dir}/test.txt"], "not an rnnrec model file"),
    (["evaluate", MODEL, "{dir}/none.txt"], "session file not found"),
    (["evaluate", MODEL], "the following arguments are required: TEST"),
    (["evaluate", MODEL, "{dir}/test.txt", "--cutoffs", "0"], "--cutoffs must be"),
    (["evaluate", MODEL, "{dir}/test.txt", "--format", "xml"], "invalid choice"),
    (["evaluate", MODEL, "{dir}/views.csv", "--format", "events"], "lacks the col"),
    # recommend
    (["recommend", MODEL, "3", "-k", "0"], "k must be a positive integer"),
    (["recommend", MODEL, "3", "-k", "1000"], "k must be at most the number"),
    (["recommend", MODEL, "3", "-k", "two"], "argument -k: invalid int value"),
    (["recommend", MODEL, "999"], "unknown to the model: [999]"),
    (["recommend", MODEL, "abc"], "the model's item ids are integers"),
    (["recommend", MODEL], "the following arguments are required: ITEM"),
    (["recommend", "{dir}/text.npz", "3"], "not an rnnrec model file"),
    # baselines
    (["baselines"], "the following arguments are required: DATA"),
    (["baselines", "{dir}/train.txt"], "no times to split by; give --test TEST"),
    (["baselines", "{dir}/none.txt", "--test", "{dir}/test.txt"], "not found"),
    (["baselines", "{dir}/train.txt", "--test-days", "x"], "invalid float value"),
]


@pytest.mark.parametrize(
    "template, message", CASES, ids=[" ".join(c[0][:1] + c[0][-2:]) for c in CASES]
)
def test_bad_arguments_give_one_line_and_status_2(files, template, message, capsys):
    argv = [part.format(dir=files) for part in template]
    status, out, err = run(argv, capsys)
    assert status == 2, (argv, out, err)
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    errors = [line for line in lines if "error:" in line]
    assert len(errors) == 1 and lines[-1] == errors[0], err
    assert message in errors[0], errors[0]
    if not lines[0].startswith("usage:"):  # found after parsing: one line only
        assert len(lines) == 1 and lines[0].startswith(f"rnnrec {argv[0]}: error: ")


def test_divergence_is_one_line_and_status_1(files, monkeypatch, capsys):
    import rnnrec.losses

    forward = rnnrec.losses.Loss.forward

    def nan(self, scores, log_q=None):
        return math.nan, forward(self, scores, log_q)[1]

    monkeypatch.setattr(rnnrec.losses.Loss, "forward", nan)
    argv = ["train", str(files / "train.txt"), "--test", str(files / "test.txt")]
    status, _, err = run([*argv, *TINY], capsys)
    assert status == 1
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("rnnrec train: error: the loss became nan at epoch 1, step 1")


def test_library_warnings_print_on_one_line(files, capsys):
    argv = ["train", str(files / "train.txt"), "--test", str(files / "test.txt")]
    status, _, err = run([*argv, *TINY, "--n-sample", "500"], capsys)
    assert status == 0
    assert err.strip().splitlines() == [
        "rnnrec train: warning: n_sample=500 is more than the 31 items of the "
        "catalogue; negatives are drawn with replacement, so most of them repeat: "
        "a smaller n_sample trains as well, and faster"
    ]

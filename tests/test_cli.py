"""The ``rnnrec gradcheck`` command, run in-process and as a program."""

import json
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

import rnnrec.cells.rnn
from rnnrec.cli import main

FAST = ["gradcheck", "--cell", "rnn", "--backend", "numpy", "--trials", "1"]
# Two RNN variants x two dtypes x one trial. A float64 problem checks x, the four
# parameters and h0 against finite differences; a float32 problem compares out, x,
# the four parameters, h_T and h0 with its float64 twin.
N_PROBLEMS = 4
TENSORS_64 = {"x", "weight_ih", "weight_hh", "bias_ih", "bias_hh", "h0"}
TENSORS_32 = TENSORS_64 | {"out", "h_T"}
N_ROWS = 2 * len(TENSORS_64) + 2 * len(TENSORS_32)


def table_rows(out):
    """Return the rows of the printed table, without header and verdict."""
    lines = out.strip().splitlines()
    assert lines[0].split()[:2] == ["check", "tensor"]
    return lines[1:-1], lines[-1]


def test_gradcheck_prints_one_ok_row_per_tensor(capsys):
    assert main(FAST) == 0
    captured = capsys.readouterr()
    rows, verdict = table_rows(captured.out)

    assert len(rows) == N_ROWS
    assert all(row.endswith("  OK") for row in rows)
    assert "NOT OK" not in captured.out
    assert verdict == f"{N_ROWS} tensors checked in {N_PROBLEMS} problems: all OK"
    for label in ["rnn-tanh numpy 64", "rnn-relu numpy 64", "rnn-tanh numpy 32"]:
        assert any(row.startswith(label) for row in rows), label
    assert not any(" lstm" in row or "gru" in row or "numba" in row for row in rows)
    assert captured.err == ""


def test_gradcheck_json_to_stdout(capsys):
    assert main([*FAST, "--json"]) == 0
    out = capsys.readouterr().out
    data = json.loads(out)  # nothing but the JSON document

    assert data["passed"] is True
    rows = data["checks"]
    assert len(rows) == N_ROWS
    by_label = {}
    for row in rows:
        assert row["passed"] is True
        assert 0 <= row["max_rel_error"] <= row["rtol"]
        assert row["n_checked"] >= 1
        assert isinstance(row["index"], list)
        by_label.setdefault(row["label"], set()).add(row["name"])
    assert len(by_label) == N_PROBLEMS
    for label, names in by_label.items():
        assert names == (TENSORS_64 if " 64 " in label else TENSORS_32), label
    modes = {row["mode"] for row in rows}
    assert modes == {"entries", "float64 twin"}


def test_gradcheck_json_dash_is_the_same_as_no_path(capsys):
    assert main([*FAST, "--json", "-"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["passed"] is True and len(data["checks"]) == N_ROWS


def test_gradcheck_json_to_a_file(tmp_path, capsys):
    path = tmp_path / "report.json"
    assert main([*FAST, "--json", str(path)]) == 0

    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["passed"] is True and len(data["checks"]) == N_ROWS
    # The table still goes to the terminal, and no temporary file is left behind.
    rows, verdict = table_rows(capsys.readouterr().out)
    assert len(rows) == N_ROWS and verdict.endswith("all OK")
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_gradcheck_with_the_same_seed_repeats_itself(capsys):
    main([*FAST, "--seed", "5", "--json"])
    first = capsys.readouterr().out
    main([*FAST, "--seed", "5", "--json"])
    assert capsys.readouterr().out == first
    main([*FAST, "--seed", "6", "--json"])
    assert capsys.readouterr().out != first


def test_gradcheck_reports_a_wrong_gradient(monkeypatch, capsys):
    # Break the RNN's step backward: dW_hh 1% too large. The command must notice.
    step_backward = rnnrec.cells.rnn.rnn_step_backward

    def broken(*args, **kwargs):
        dx_t, dh_prev, dW_ih, dW_hh, db_ih, db_hh = step_backward(*args, **kwargs)
        return dx_t, dh_prev, dW_ih, 1.01 * dW_hh, db_ih, db_hh

    monkeypatch.setattr(rnnrec.cells.rnn, "rnn_step_backward", broken)
    argv = [*FAST, "--dtype", "float64"]
    assert main(argv) == 1
    rows, verdict = table_rows(capsys.readouterr().out)
    bad = [row for row in rows if row.endswith("NOT OK")]
    assert {row.split()[4] for row in bad} == {"weight_hh"}
    assert len(bad) == 2  # one per RNN variant
    assert verdict == f"{len(rows)} tensors checked in 2 problems: 2 NOT OK"

    assert main([*argv, "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["passed"] is False
    failed = [row for row in data["checks"] if not row["passed"]]
    assert [row["name"] for row in failed] == ["weight_hh", "weight_hh"]
    assert all(row["max_rel_error"] > 1e-3 for row in failed)


@pytest.mark.parametrize(
    "argv, pattern",
    [
        (["gradcheck", "--cell", "foo"], r"argument --cell: invalid choice: 'foo'"),
        (["gradcheck", "--backend", "cuda"], r"argument --backend: invalid choice"),
        (["gradcheck", "--dtype", "float16"], r"argument --dtype: invalid choice"),
        (["gradcheck", "--trials", "0"], r"--trials.* at least 1"),
        (["gradcheck", "--trials", "-2"], r"--trials.* at least 1"),
        (["gradcheck", "--trials", "two"], r"argument --trials: .*'two'"),
        (["gradcheck", "--seed", "-1"], r"--seed.* -1"),
        (["gradcheck", "--bogus"], r"unrecognized arguments: --bogus"),
        (["frobnicate"], r"invalid choice: 'frobnicate'"),
        ([], r"required: command"),
    ],
    ids=[
        "cell",
        "backend",
        "dtype",
        "trials-0",
        "trials-negative",
        "trials-text",
        "seed-negative",
        "unknown-option",
        "unknown-command",
        "no-command",
    ],
)
def test_bad_arguments_exit_with_status_2_and_one_error_line(argv, pattern, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "Traceback" not in captured.err
    errors = [line for line in captured.err.splitlines() if "error:" in line]
    assert len(errors) == 1, captured.err
    assert re.search(pattern, errors[0]), errors[0]
    assert captured.err.rstrip("\n").splitlines()[-1] == errors[0]


def test_trials_error_says_what_was_given(capsys):
    with pytest.raises(SystemExit):
        main(["gradcheck", "--trials", "0"])
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--trials" in error and "at least 1" in error and "got 0" in error


def test_json_into_a_missing_folder_is_a_usage_error(tmp_path, capsys):
    path = tmp_path / "no-such-folder" / "report.json"
    with pytest.raises(SystemExit) as exit_info:
        main([*FAST, "--dtype", "float32", "--json", str(path)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert "error:" in last and "--json" in last and "no-such-folder" in last
    assert not path.parent.exists()


def test_console_script_points_at_main():
    (entry,) = metadata.entry_points(group="console_scripts", name="rnnrec")
    assert entry.value == "rnnrec.cli:main"
    assert entry.load() is main


def test_command_runs_as_a_program():
    argv = ["gradcheck", "--cell", "gru", "--backend", "numpy"]
    argv += ["--dtype", "float32", "--trials", "1"]
    result = subprocess.run(
        [sys.executable, "-m", "rnnrec", *argv],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stdout.strip().splitlines()
    # gru-torch and gru-cho, each: out, x, 4 parameters, h_T, h0.
    assert len(lines) == 1 + 16 + 1
    assert lines[-1] == "16 tensors checked in 2 problems: all OK"
    assert {line.split()[0] for line in lines[1:-1]} == {"gru-torch", "gru-cho"}


def test_command_fails_as_a_program_with_status_2():
    result = subprocess.run(
        [sys.executable, "-m", "rnnrec", "gradcheck", "--cell", "foo"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert "invalid choice: 'foo'" in result.stderr.strip().splitlines()[-1]


def test_table_and_json_report_the_same_numbers(capsys):
    main([*FAST, "--seed", "3"])
    rows, _ = table_rows(capsys.readouterr().out)
    main([*FAST, "--seed", "3", "--json"])
    checks = json.loads(capsys.readouterr().out)["checks"]
    assert len(rows) == len(checks)
    for row, check in zip(rows, checks, strict=True):
        # label (4 words), tensor, mode (1 or 2 words), n, max rel err, at, ...
        fields = row.split()
        assert " ".join(fields[:4]) == check["label"]
        assert fields[4] == check["name"]
        at = 5 + len(check["mode"].split())
        assert int(fields[at]) == check["n_checked"]
        assert float(fields[at + 1]) == pytest.approx(check["max_rel_error"], rel=1e-2)
        assert float(fields[-3]) == pytest.approx(check["analytic"], rel=1e-4)
        assert float(fields[-2]) == pytest.approx(check["numeric"], rel=1e-4)


# -- the recommender's subcommands ---------------------------------------------------


def _write_sessions(path, sessions):
    path.write_text("\n".join(" ".join(str(i) for i in s) for s in sessions) + "\n")


@pytest.fixture(scope="module")
def session_files(tmp_path_factory):
    from rnnrec.data import make_synthetic

    folder = tmp_path_factory.mktemp("data")
    train, test = make_synthetic(
        n_items=40, n_train_sessions=600, n_test_sessions=60, seed=2
    )
    _write_sessions(folder / "train.txt", [train.session(s) + 100 for s in range(600)])
    _write_sessions(folder / "test.txt", [test.session(s) + 100 for s in range(60)])
    return folder


def test_train_evaluate_recommend_round_trip(session_files, tmp_path, capsys):
    model_path = tmp_path / "model.npz"
    metrics_path = tmp_path / "metrics.json"
    status = main(
        [
            "train", str(session_files / "train.txt"),
            "--test", str(session_files / "test.txt"),
            "--layers", "16", "--n-sample", "16", "--n-epochs", "2", "--quiet",
            "--save", str(model_path), "--metrics-json", str(metrics_path),
            "--cutoffs", "5", "20",
        ]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert status == 0
    assert "recall@20" in out and "markov" in out and "popularity" in out
    metrics = json.loads(metrics_path.read_text())
    assert 0 <= metrics["recall@20"] <= 1 and metrics["n"] > 0
    assert metrics["run"]["config"]["layers"] == [16]

    assert main(["evaluate", str(model_path), str(session_files / "test.txt")]) == 0
    out = capsys.readouterr().out
    assert f"{metrics['n']} predictions" in out
    assert f"{metrics['recall@20']:.4f}" in out

    assert main(["recommend", str(model_path), "101", "102", "-k", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and lines[0].split()[0] == "1"


def test_train_without_a_seed_is_reproducible(session_files, tmp_path, capsys):
    # The command line seeds with 0 unless told otherwise: the same command
    # trains the same model; another seed trains another.
    runs = []
    for n, extra in enumerate([[], [], ["--seed", "1"]]):
        path = tmp_path / f"metrics{n}.json"
        argv = [
            "train", str(session_files / "train.txt"),
            "--test", str(session_files / "test.txt"),
            "--layers", "8", "--n-sample", "8", "--n-epochs", "1", "--quiet",
            "--metrics-json", str(path), *extra,
        ]  # fmt: skip
        assert main(argv) == 0
        runs.append(json.loads(path.read_text()))
    capsys.readouterr()
    assert runs[0]["run"]["config"]["seed"] == 0
    assert runs[0]["mrr@20"] == runs[1]["mrr@20"]
    loss = [run["run"]["history"][-1]["loss"] for run in runs]
    assert loss[0] == loss[1] and loss[2] != loss[0]


def test_train_on_two_threads_trains_the_same_model(session_files, tmp_path, capsys):
    import numba

    from rnnrec.kernels import set_threads

    runs = []
    for threads in ("1", "2"):
        path = tmp_path / f"metrics{threads}.json"
        argv = [
            "train", str(session_files / "train.txt"),
            "--test", str(session_files / "test.txt"),
            "--layers", "8", "--n-sample", "8", "--n-epochs", "1", "--quiet",
            "--metrics-json", str(path), "--threads", threads,
        ]  # fmt: skip
        try:
            assert main(argv) == 0
            expected = min(int(threads), numba.config.NUMBA_NUM_THREADS)
            assert numba.get_num_threads() == expected
        finally:
            set_threads(1)
        runs.append(json.loads(path.read_text()))
    capsys.readouterr()
    # Small products, row loops bit-identical on threads: the same numbers.
    losses = [[h["loss"] for h in run["run"]["history"]] for run in runs]
    assert losses[0] == losses[1]
    assert runs[0]["mrr@20"] == runs[1]["mrr@20"]


def test_baselines_command(session_files, capsys):
    status = main(
        ["baselines", str(session_files / "train.txt"), "--test",
         str(session_files / "test.txt")]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert status == 0
    for name in ("popularity", "session-popularity", "item-knn", "markov"):
        assert name in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "missing.txt", "--test", "also-missing.txt"], "missing.txt"),
        (["train", "--loss", "mse", "--quiet"], "loss must be one of"),
        (["train", "--layers", "0", "--quiet"], "positive integer"),
        (["recommend", "nofile.npz", "1"], "nofile.npz"),
        (["train", "--cutoffs", "0"], "--cutoffs must be positive"),
    ],
)
def test_recommender_commands_report_bad_input_on_one_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


# -- real data: the raw DIGINETICA sample, as raw views and as a GRU4Rec log -------

RAW = Path(__file__).resolve().parents[2] / "shared" / "data" / "diginetica_sample"
needs_raw = pytest.mark.skipif(
    not (RAW / "train-item-views.csv").exists(),
    reason=f"the real DIGINETICA sample is not at {RAW} (see ../shared/data/README.md)",
)
TINY = ["--layers", "16", "--n-sample", "16", "--n-epochs", "1", "--quiet"]


def _as_event_log(raw, out):
    """Write the raw views as a GRU4Rec log: SessionId, ItemId, Time in seconds."""
    import calendar
    import time

    lines = ["SessionId\tItemId\tTime"]
    with open(raw, encoding="utf-8") as f:
        next(f)
        for line in f:
            session, _, item, timeframe, date = line.strip().split(";")
            day = calendar.timegm(time.strptime(date, "%Y-%m-%d"))
            lines.append(f"{session}\t{item}\t{day + int(timeframe) / 1000}")
    out.write_text("\n".join(lines) + "\n")


@needs_raw
def test_train_on_raw_views_and_on_the_same_clicks_as_an_event_log(tmp_path, capsys):
    log = tmp_path / "events.tsv"
    _as_event_log(RAW / "train-item-views.csv", log)
    runs = {}
    for fmt, path in [("diginetica", RAW / "train-item-views.csv"), ("events", log)]:
        metrics = tmp_path / f"{fmt}.json"
        argv = ["train", str(path), "--format", fmt, "--test-days", "7", *TINY]
        assert main([*argv, "--metrics-json", str(metrics)]) == 0
        out = capsys.readouterr().out
        runs[fmt] = out.splitlines()[0], json.loads(metrics.read_text())
    described, metrics = runs["diginetica"]
    # 12,391 raw views of 2,986 sessions; filtering (items with 5+ clicks,
    # sessions of 2+) and the 7-day time split leave a few hundred sessions
    pattern = r"train: (\d+) sessions, (\d+) clicks, (\d+) items; test: (\d+) sessions"
    counts = re.match(pattern, described)
    assert counts, described
    train_sessions, train_clicks, n_items, test_sessions = map(int, counts.groups())
    assert 100 < train_sessions < 2986 and train_clicks < 12391 and test_sessions > 0
    assert train_clicks >= 2 * train_sessions and metrics["n"] > 0
    # the same clicks read from the other format give the same split and model
    assert runs["events"][0] == described
    for key in ("recall@20", "mrr@20", "n"):
        assert runs["events"][1][key] == metrics[key]

"""The benchmark scripts run end to end on small data."""

import importlib.util
import json
import os

import pytest

from rnnrec.data import make_synthetic

HERE = os.path.dirname(os.path.abspath(__file__))
BENCHMARKS = os.path.join(os.path.dirname(HERE), "benchmarks")


def _script(name):
    spec = importlib.util.spec_from_file_location(
        name, os.path.join(BENCHMARKS, f"{name}.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tune():
    return _script("tune")


def test_grid_is_the_product_of_the_values(tune):
    combos = tune.grid([("bptt", ["1", "2"]), ("loss", ["bpr-max", '"top1"'])])
    assert combos == [
        {"bptt": 1, "loss": "bpr-max"},
        {"bptt": 1, "loss": "top1"},
        {"bptt": 2, "loss": "bpr-max"},
        {"bptt": 2, "loss": "top1"},
    ]
    assert tune.grid([("layers", ["[8, 4]"])]) == [{"layers": [8, 4]}]


def _write_lines(path, sessions):
    with open(path, "w", encoding="utf-8") as f:
        for items in sessions.to_lists(raw=True):
            f.write(" ".join(str(i) for i in items) + "\n")


def _data_dir(tmp_path, n_items, n_test_sessions, seed):
    """A ``data/synthetic`` folder of train and test session files; ``data``."""
    train, test = make_synthetic(
        n_items=n_items, n_train_sessions=300, n_test_sessions=n_test_sessions,
        seed=seed,
    )  # fmt: skip
    folder = tmp_path / "data" / "synthetic"
    folder.mkdir(parents=True)
    _write_lines(folder / "train_sessions.txt", train)
    _write_lines(folder / "test_sessions.txt", test)
    return tmp_path / "data"


def test_tune_trains_every_setting_scores_it_and_resumes(tune, tmp_path, capsys):
    train, test = make_synthetic(
        n_items=40, n_train_sessions=400, n_test_sessions=50, seed=1
    )
    train_path, test_path = tmp_path / "train.txt", tmp_path / "test.txt"
    _write_lines(train_path, train)
    _write_lines(test_path, test)
    config = tmp_path / "base.json"
    config.write_text(
        json.dumps({"layers": [8], "n_sample": 8, "batch_size": 8, "n_epochs": 1})
    )
    out = tmp_path / "trials.json"
    argv = [str(train_path), "--config", str(config), "--set", "bptt", "1", "2"]
    assert tune.main([*argv, "--out", str(out)]) == 0
    trials = json.loads(out.read_text())["trials"]
    assert [t["settings"] for t in trials] == [{"bptt": 1}, {"bptt": 2}]
    for trial in trials:
        assert 0 < trial["metrics"]["recall@20"] <= 1
        assert trial["config"]["bptt"] == trial["settings"]["bptt"]  # as trained
        assert trial["config"]["n_sample"] == 8
        # One-hot input (the default): E (V, 3H), W_hh, two biases, W_y, b_y.
        assert trial["n_parameters"] == 40 * 24 + 24 * 8 + 2 * 24 + 40 * 8 + 40
    table = _script("report").trials_table(json.loads(out.read_text()))
    rows = table.splitlines()[4:]
    assert [r.split(" | ")[0] for r in rows] == ["| bptt=1", "| bptt=2"]
    recall = 100 * trials[1]["metrics"]["recall@20"]
    assert rows[1].split(" | ")[1] == f"{recall:.2f}"

    # A rerun finds both trials done and trains nothing.
    capsys.readouterr()
    assert tune.main([*argv, "--out", str(out)]) == 0
    assert capsys.readouterr().out.count("skip") == 2
    assert json.loads(out.read_text())["trials"] == trials

    # Scored on a test file, the whole training file is used.
    assert tune.main([*argv[:3], "--test", str(test_path)]) == 0
    assert f"fit on {train.n_sessions} sessions" in capsys.readouterr().out


def test_bench_eval_times_four_evaluations_that_agree(tmp_path, capsys, monkeypatch):
    pytest.importorskip("torch")
    pytest.importorskip("threadpoolctl")
    data = _data_dir(tmp_path, n_items=50, n_test_sessions=40, seed=2)
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "synthetic.json").write_text(
        json.dumps({"layers": [8], "n_sample": 8, "batch_size": 8, "seed": 0})
    )
    out = tmp_path / "eval.json"
    argv = ["--datasets", "synthetic", "--data-dir", str(data)]
    argv += ["--config-dir", str(configs), "--rounds", "2", "--fit-sessions", "100"]
    assert _script("bench_eval").main([*argv, "--out", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    scorers = ["rnnrec", "numpy", "torch", "torch-e2e"]
    assert sorted(r["scorer"] for r in rows) == sorted(scorers * 2)
    assert all(r["agrees"] and r["predictions"] > 0 for r in rows)
    for metric in ("recall@20", "mrr@20", "ndcg@20"):
        assert len({round(r[metric], 9) for r in rows}) == 1
    printed = capsys.readouterr().out
    assert "| vs PyTorch end to end | vs PyTorch scorer |" in printed

    # The speeds of the table: the best round, over torch-e2e and over torch.
    report = _script("report")
    best = report.best_eval_rows({"rows": rows})
    speed = {s: best[("synthetic", s)]["predictions_per_second"] for s in scorers}
    line = next(x for x in printed.splitlines() if x.startswith("| synthetic | rnnrec"))
    ratios = line.strip(" |").split(" | ")[-2:]
    assert float(ratios[0]) == pytest.approx(
        speed["rnnrec"] / speed["torch-e2e"], abs=6e-3
    )
    assert float(ratios[1]) == pytest.approx(speed["rnnrec"] / speed["torch"], abs=6e-3)

    # An evaluation that disagrees voids the timing: status 1, no file written.
    twin = _script("torch_twin")
    evaluate = twin.TorchRecommender.evaluate

    def drifted(self, test, **kwargs):
        result = evaluate(self, test, **kwargs)
        return {**result, "mrr@20": result["mrr@20"] * (1 + 1e-5)}

    bench = _script("bench_eval")
    monkeypatch.setattr(twin.TorchRecommender, "evaluate", drifted)
    monkeypatch.setattr(
        bench.bench_train,
        "load_sibling",
        lambda name: twin if name == "torch_twin" else _script(name),
    )
    bad = tmp_path / "bad.json"
    capsys.readouterr()
    assert bench.main([*argv, "--rounds", "1", "--out", str(bad)]) == 1
    assert "metrics disagree" in capsys.readouterr().err
    assert not bad.exists()


def test_report_tabulates_training_and_evaluation_and_charts_the_ratios(tmp_path):
    pytest.importorskip("matplotlib")
    report = _script("report")
    train = {
        "settings": {"threads": 2},
        "datasets": {"d": {"config": {"layers": [8]}}},
        "summary": [
            {"dataset": "d", "implementation": impl, "epochs": 1,
             "seconds_per_epoch": s, "events_per_second": 100 / s,
             "speed_vs_torch": 2.0 / s, "recall@20": None, "mrr@20": None}
            for impl, s in (("rnnrec", 1.0), ("torch", 2.0))
        ],
    }  # fmt: skip
    rows = report.train_table(train).splitlines()
    assert rows[0] == "Threads: 2." and rows[4].startswith("| d | rnnrec | 1 | 1.0 |")
    assert "| 2.00 | - | - |" in rows[4]
    evaluation = {
        "threads": 1,
        "rows": [
            {"dataset": "d", "scorer": scorer, "round": r, "n_items": 9,
             "predictions": 10, "seconds": s, "predictions_per_second": 10 / s}
            for scorer, s, r in (("rnnrec", 1.0, 0), ("rnnrec", 0.5, 1),
                                 ("torch", 2.0, 0))
        ],
    }  # fmt: skip
    table = report.eval_table(evaluation)
    # The best round, 0.5 s; no torch-e2e in this result.
    assert "| d | rnnrec | 9 | 10 | 20 | - | 4.00 |" in table
    assert report.speed_ratios(train) == [("train d, 8 units, 2 thread(s)", 2.0)]
    assert report.speed_ratios(evaluation) == [("evaluate d", 4.0)]
    # With PyTorch's own evaluation in the result, the chart compares with that.
    e2e = dict(dataset="d", scorer="torch-e2e", round=0, n_items=9, predictions=10)
    e2e.update(seconds=4.0, predictions_per_second=2.5)
    both = {**evaluation, "rows": [*evaluation["rows"], e2e]}
    assert report.speed_ratios(both) == [("evaluate d", 8.0)]
    assert "| d | rnnrec | 9 | 10 | 20 | 8.00 | 4.00 |" in report.eval_table(both)
    chart = tmp_path / "speed.png"
    report.bar_chart([train, evaluation], chart)
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_threads_times_every_arrangement_on_the_same_numbers(tmp_path, capsys):
    pytest.importorskip("threadpoolctl")
    import numba

    data = _data_dir(tmp_path, n_items=30, n_test_sessions=10, seed=6)
    config = tmp_path / "config.json"
    settings = {"layers": [8], "n_sample": 16, "batch_size": 8, "seed": 0}
    config.write_text(json.dumps(settings))
    out = tmp_path / "threads.json"
    argv = ["--dataset", "synthetic", "--data-dir", str(data)]
    argv += ["--config", str(config), "--threads", "2", "--max-sessions", "200"]
    bench = _script("bench_threads")
    assert bench.main([*argv, "--rounds", "2", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["settings"]["train_sessions"] == 200
    rows = result["rows"]
    assert sorted(r["arrangement"] for r in rows) == sorted(bench.ARRANGEMENTS * 2)
    assert all(r["events_per_second"] > 0 for r in rows)
    # Small products and bit-identical row loops: every arrangement, the same fit.
    assert len({r["loss"] for r in rows}) == 1
    assert numba.get_num_threads() == 1  # left on one thread
    printed = capsys.readouterr().out
    assert "| arrangement | events / s | vs one thread |" in printed

    # The report's table: the best round of each, against one thread.
    report = _script("report")
    result["rows"] = [
        {"arrangement": a, "events_per_second": e, "round": r}
        for a, e, r in (("one", 100.0, 0), ("pool", 150.0, 0), ("one", 120.0, 1))
    ]
    table = report.threads_table(result).splitlines()
    assert table[-2:] == ["| one | 120 | 1.00 |", "| pool | 150 | 1.25 |"]
    assert report.speed_ratios(result) == []

    with pytest.raises(SystemExit):
        bench.main([*argv, "--rounds", "0"])

    # --profile: one more fit under cProfile, its own-time table printed.
    profiled = [*argv, "--rounds", "1", "--arrangements", "one", "--profile", "one"]
    assert bench.main(profiled) == 0
    printed = capsys.readouterr().out
    assert "profile of one: about" in printed
    assert "tottime" in printed and "_train_block" in printed


def test_bench_commits_times_a_commit_from_its_own_worktree(tmp_path, capsys):
    pytest.importorskip("threadpoolctl")
    import subprocess

    root = os.path.dirname(BENCHMARKS)
    inside = subprocess.run(
        ["git", "-C", root, "rev-parse", "HEAD"], capture_output=True, text=True
    )
    if inside.returncode != 0:
        pytest.skip("bench_commits.py needs a git checkout with history")
    head = inside.stdout.strip()

    data = _data_dir(tmp_path, n_items=30, n_test_sessions=10, seed=7)
    config = tmp_path / "config.json"
    settings = {"layers": [8], "n_sample": 16, "batch_size": 8, "seed": 0}
    config.write_text(json.dumps(settings))
    out = tmp_path / "commits.json"
    argv = ["HEAD", "--dataset", "synthetic", "--data-dir", str(data)]
    argv += ["--config", str(config), "--threads", "1", "--max-sessions", "200"]
    bench = _script("bench_commits")
    assert bench.main([*argv, "--rounds", "1", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert [c["sha"] for c in result["commits"]] == [head]
    (row,) = result["rows"]
    assert row["commit"] == head and row["events_per_second"] > 0
    printed = capsys.readouterr().out
    assert "| commit | change | events / s | vs first |" in printed
    assert f"| `{head[:7]}` |" in printed and "| 1.00 |" in printed
    # The temporary worktree is gone again.
    trees = subprocess.run(
        ["git", "-C", root, "worktree", "list", "--porcelain"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "rnnrec-commits-" not in trees

    with pytest.raises(SystemExit, match="no-such-commit"):
        bench.main(["no-such-commit", "--config", str(config)])


def test_commits_table_keeps_each_commits_best_round_against_the_first():
    report = _script("report")
    result = {
        "settings": {"dataset": "d", "config": "c.json", "max_sessions": 10,
                     "threads": 2, "rounds": 2},
        "commits": [{"sha": "a" * 40, "subject": "Old: x"},
                    {"sha": "b" * 40, "subject": "New thing: y"}],
        "rows": [{"commit": "a" * 40, "events_per_second": 100.0},
                 {"commit": "b" * 40, "events_per_second": 130.0},
                 {"commit": "b" * 40, "events_per_second": 150.0},
                 {"commit": "a" * 40, "events_per_second": 120.0}],
    }  # fmt: skip
    table = report.commits_table(result).splitlines()
    assert table[0] == "d, c.json, 10 sessions, 2 threads; best of 2 rounds."
    assert table[-2:] == [
        "| `aaaaaaa` | (baseline) Old | 120 | 1.00 |",
        "| `bbbbbbb` | New thing | 150 | 1.25 |",
    ]
    result["kind"] = "commits"
    assert report.speed_ratios(result) == []  # rnnrec against itself

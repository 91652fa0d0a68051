"""``rnnrec sweep``: SPEC checking, the local pool, a real Dask cluster, resuming.

The Dask tests start a `distributed.LocalCluster` with two worker processes on
127.0.0.1 once for the module and check at the end that none of its processes
is left running. Trials are tiny (a few hundred updates of a small RNN, or one
epoch of the recommender on a small synthetic set).
"""

import csv
import logging
import os
import signal
import sys
import threading
import time

import psutil
import pytest

from rnnrec.cli import main
from rnnrec.sweep import LocalExecutor, load_spec, parse_spec, run_sweep
from rnnrec.sweep.tasks import TrialJob, run_trial

CLIPPING_SPEC = """
[sweep]
task = "clipping"
metric = "final_loss"
seeds = [0, 1]

[fixed]
task = "adding"
steps = 8
hidden_size = 6
n_updates = 40
batch_size = 4

[grid]
clip = ["none", 0.5, 2.0]
"""

RECOMMENDER_SPEC = """
[sweep]
task = "recommender"
seeds = [3]

[fixed]
layers = [12]
loss = "bpr-max"
n_sample = 16
batch_size = 8
n_epochs = 1

[random]
trials = 2
seed = 1
learning_rate = { low = 0.02, high = 0.2, log = true }

[data]
synthetic = { n_items = 30, n_train_sessions = 150, n_test_sessions = 30 }
cutoffs = [5]
"""

CLIPPING_METRICS = ["final_loss", "final_error", "share_clipped", "max_grad_norm"]


def write_spec(tmp_path, text, name="spec.toml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def read_rows(folder):
    with open(os.path.join(folder, "trials.csv"), newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def by_trial(rows, names):
    return {r["trial"]: (r["status"], *(r[n] for n in names)) for r in rows}


def sweep(argv, capsys):
    status = main(["sweep", *argv, "--no-plot"])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def pool_children():
    """Processes below this one that run multiprocessing's spawn (workers, nannies)."""
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if "spawn_main" in " ".join(child.cmdline()):
                found.append(child)
        except psutil.Error:
            pass
    return found


# -- SPEC errors ---------------------------------------------------------------------


BAD_SPECS = [
    ('[sweep]\ntask = "tune"\n', "task must be one of recommender, clipping, tasks"),
    ("[fixed]\nsteps = 3\n", "[sweep] needs task"),
    ('[sweep]\ntask = "clipping"\nmetric = "auc"\n', "metric must be one of"),
    ('[sweep]\ntask = "clipping"\n[grid]\nclip = 0.5\n', "clip must be a non-empty"),
    ('[sweep]\ntask = "clipping"\n[grid]\nwidth = [1]\n', "unknown setting 'width'"),
    ('[sweep]\ntask = "clipping"\n[grid]\ncell = ["cnn"]\n', "cell must be one of"),
    ('[sweep]\ntask = "clipping"\n[grid]\nsteps = [0]\n', "steps must be a positive"),
    ('[sweep]\ntask = "clipping"\nseeds = [-1]\n', "seeds must be integers >= 0"),
    ('[sweep]\ntask = "clipping"\n[fixed]\nseed = 1\n', "use [sweep] seeds"),
    (
        '[sweep]\ntask = "clipping"\n[random]\ntrials = 2\n'
        "learning_rate = { low = 0.1, high = 0.01 }\n",
        "low must be below high",
    ),
    (
        '[sweep]\ntask = "clipping"\n[random]\ntrials = 2\n'
        "learning_rate = { low = 0.0, high = 0.1, log = true }\n",
        "a log range needs low > 0",
    ),
    (
        '[sweep]\ntask = "clipping"\n[random]\ntrials = 0\n'
        "learning_rate = { low = 0.01, high = 0.1 }\n",
        "trials must be a positive integer",
    ),
    (
        '[sweep]\ntask = "clipping"\n[grid]\nclip = [1.0]\n[random]\ntrials = 1\n',
        "give [grid] or [random], not both",
    ),
    ('[sweep]\ntask = "clipping"\n[data]\ntrain = "x.txt"\n', "only the recommender"),
    (
        '[sweep]\ntask = "recommender"\n[data]\nsynthetic = { items = 5 }\n',
        "unknown key 'items'; allowed: n_items",
    ),
    (
        '[sweep]\ntask = "recommender"\n[grid]\nloss = ["hinge"]\n',
        "loss must be one of",
    ),
    ('[sweep]\ntask = "clipping"\n[grid\n', "not valid TOML"),
    ('[sweep]\ntask = "clipping"\n[grid]\nclip = [1, 1]\n', "repeats a value"),
]


@pytest.mark.parametrize(("text", "message"), BAD_SPECS)
def test_bad_spec_is_one_line_with_status_2(
    tmp_path, capsys, monkeypatch, text, message
):
    monkeypatch.chdir(tmp_path)  # where the default --out would go
    status, out, err = sweep([write_spec(tmp_path, text)], capsys)
    assert status == 2
    assert err.startswith("rnnrec sweep: error: SPEC ")
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "spec").exists()  # nothing ran, no results folder


def test_missing_spec_and_missing_data_file(tmp_path, capsys):
    status, _, err = sweep([str(tmp_path / "nope.toml")], capsys)
    assert status == 2 and "no such file" in err
    text = '[sweep]\ntask = "recommender"\n[data]\ntrain = "absent.txt"\n'
    status, _, err = sweep([write_spec(tmp_path, text)], capsys)
    assert status == 2 and "absent.txt" in err and err.count("\n") == 1


def test_scheduler_without_dask_says_how_to_get_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import fails
    spec = write_spec(tmp_path, CLIPPING_SPEC)
    argv = [spec, "--scheduler", "tcp://127.0.0.1:1", "--out", str(tmp_path / "o")]
    status, _, err = sweep(argv, capsys)
    assert status == 2 and "pip install rnnrec[dask]" in err


# -- expanding the search ------------------------------------------------------------


def test_grid_and_random_search_expand_reproducibly(tmp_path):
    spec = load_spec(write_spec(tmp_path, CLIPPING_SPEC))
    trials = spec.trials()
    assert len(trials) == 3 * 2
    assert [t.params["clip"] for t in trials[::2]] == [None, 0.5, 2.0]
    assert len({t.trial for t in trials}) == 6
    assert [t.trial for t in load_spec(spec.source).trials()] == [
        t.trial for t in trials
    ]

    raw = {
        "sweep": {"task": "clipping"},
        "random": {
            "trials": 50,
            "seed": 4,
            "learning_rate": {"low": 1e-4, "high": 1e-1, "log": True},
            "steps": {"low": 2, "high": 5, "integer": True},
            "cell": {"choices": ["rnn", "gru"]},
        },
    }
    points = parse_spec(raw).points
    assert points == parse_spec(raw).points  # the draws are seeded
    rates = [p["learning_rate"] for p in points]
    assert all(1e-4 <= r <= 1e-1 for r in rates)
    assert sum(r < 1e-2 for r in rates) > 20  # log-uniform: 2/3 below 1e-2
    assert {p["steps"] for p in points} == {2, 3, 4, 5}
    assert {p["cell"] for p in points} == {"rnn", "gru"}


def test_yaml_spec_is_the_toml_spec(tmp_path):
    pytest.importorskip("yaml")
    text = """
sweep: {task: clipping, metric: final_loss, seeds: [0, 1]}
fixed: {task: adding, steps: 8, hidden_size: 6, n_updates: 40, batch_size: 4}
grid: {clip: [null, 0.5, 2.0]}
"""
    from_yaml = load_spec(write_spec(tmp_path, text, "spec.yaml"))
    from_toml = load_spec(write_spec(tmp_path, CLIPPING_SPEC))
    assert [t.trial for t in from_yaml.trials()] == [
        t.trial for t in from_toml.trials()
    ]


def test_trial_ids_that_look_like_numbers_stay_ids(tmp_path):
    from rnnrec.sweep import ResultsFile

    results = ResultsFile(tmp_path / "trials.csv", ["trial", "status", "seed", "x"])
    for trial in ("869587021e29", "000123", "abc"):
        results.append({"trial": trial, "status": "ok", "seed": 0, "x": 1.5})
    assert results.finished() == {"869587021e29", "000123", "abc"}
    assert [r["x"] for r in results.rows()] == [1.5, 1.5, 1.5]


def test_tasks_study_trial_reports_error_and_solved():
    settings = {"task": "copy", "cell": "gru", "steps": 3, "hidden_size": 4}
    settings |= {"n_updates": 5, "batch_size": 2}
    record = run_trial(TrialJob("t", "tasks", settings, 0))
    assert record["status"] == "ok" and set(record["metrics"]) == {"error", "solved"}
    assert record == {**record, "error": ""}


# -- the local pool ----------------------------------------------------------------


@pytest.fixture(scope="module")
def local_results(tmp_path_factory):
    """The clipping and recommender SPECs run once on the local pool."""
    folder = tmp_path_factory.mktemp("local")
    out = {}
    for name, text in (("clipping", CLIPPING_SPEC), ("recommender", RECOMMENDER_SPEC)):
        spec = load_spec(write_spec(folder, text, f"{name}.toml"))
        with LocalExecutor(workers=2) as pool:
            target = folder / name
            target.mkdir()
            outcome = run_sweep(spec, target, pool)
        assert outcome.ok == len(spec.trials()) and outcome.failed == 0
        out[name] = (spec, str(target), read_rows(target))
    assert pool_children() == []
    return out


def test_local_sweep_records_every_trial(local_results):
    spec, folder, rows = local_results["clipping"]
    assert len(rows) == 6 and {r["status"] for r in rows} == {"ok"}
    assert list(rows[0])[:4] == ["trial", "status", "seed", "clip"]
    assert {r["clip"] for r in rows} == {"none", "0.5", "2.0"}
    for row in rows:
        assert float(row["seconds"]) > 0 and row["worker"] and row["error"] == ""
    # The same trial in this process gives the same metrics.
    trial = spec.trials()[3]
    mine = run_trial(TrialJob(trial.trial, "clipping", trial.settings, trial.seed))
    row = next(r for r in rows if r["trial"] == trial.trial)
    assert [repr(mine["metrics"][m]) for m in CLIPPING_METRICS] == [
        row[m] for m in CLIPPING_METRICS
    ]
    rec_rows = local_results["recommender"][2]
    assert len(rec_rows) == 2
    assert all(0 <= float(r["recall@5"]) <= 1 for r in rec_rows)


def test_cli_sweep_prints_best_table_writes_plot_and_resumes(tmp_path, capsys):
    spec = write_spec(tmp_path, CLIPPING_SPEC)
    out = str(tmp_path / "run")
    status = main(["sweep", spec, "--workers", "1", "--out", out])
    text = capsys.readouterr().out
    assert status == 0
    assert "6 finished, 0 failed, 0 skipped" in text
    lines = text.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("rank"))
    assert lines[head].split()[:3] == ["rank", "clip", "final_loss"]
    assert len([line for line in lines[head + 1 :] if line[:4].strip().isdigit()]) == 3
    assert os.path.exists(os.path.join(out, "best.csv"))
    with open(os.path.join(out, "final_loss.png"), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    first = read_rows(out)

    # Rerun: everything is skipped, the file is unchanged.
    status, text, _ = sweep([spec, "--workers", "1", "--out", out], capsys)
    assert status == 0 and "0 finished, 0 failed, 6 skipped" in text
    assert read_rows(out) == first

    # Lose the last two rows, one of them cut in half by a "crash": only those
    # two trials run again, and they give the same numbers.
    path = os.path.join(out, "trials.csv")
    with open(path, encoding="utf-8") as f:
        kept = f.read().splitlines(keepends=True)
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(kept[:-2])
        f.write(kept[-2][:20])
    status, text, _ = sweep([spec, "--workers", "1", "--out", out, "--quiet"], capsys)
    assert status == 0 and "2 finished, 0 failed, 4 skipped" in text
    names = ["seed", "clip", *CLIPPING_METRICS]
    assert by_trial(read_rows(out), names) == by_trial(first, names)


def test_failed_trial_is_recorded_and_the_sweep_completes(tmp_path, capsys):
    text = RECOMMENDER_SPEC.replace("n_items = 30", "n_items = -4")
    spec = write_spec(tmp_path, text)
    out = str(tmp_path / "run")
    status, text, _ = sweep([spec, "--workers", "1", "--out", out], capsys)
    assert status == 1 and "0 finished, 2 failed" in text
    rows = read_rows(out)
    assert [r["status"] for r in rows] == ["failed", "failed"]
    assert all("n_items" in r["error"] and r["recall@5"] == "" for r in rows)
    # Failed trials are not finished: a rerun tries them again.
    status, text, _ = sweep([spec, "--workers", "1", "--out", out], capsys)
    assert "0 finished, 2 failed, 0 skipped" in text


def test_results_of_another_spec_are_refused(tmp_path, capsys):
    out = str(tmp_path / "run")
    sweep([write_spec(tmp_path, CLIPPING_SPEC), "--out", out, "--workers", "1"], capsys)
    other = CLIPPING_SPEC.replace("[grid]\nclip", "[grid]\nradius")
    other = other.replace('"none", 0.5, 2.0', "1.0, 2.0")
    status, _, err = sweep(
        [write_spec(tmp_path, other, "b.toml"), "--out", out], capsys
    )
    assert status == 2 and "results of another SPEC" in err


def test_local_pool_survives_a_killed_worker(tmp_path):
    text = CLIPPING_SPEC.replace("n_updates = 40", "n_updates = 600")
    spec = load_spec(
        write_spec(tmp_path, text.replace("seeds = [0, 1]", "seeds = [0]"))
    )
    pool = LocalExecutor(workers=1)
    done = {}

    def sweep_in_background():
        done["outcome"] = run_sweep(spec, tmp_path, pool)

    thread = threading.Thread(target=sweep_in_background)
    thread.start()
    deadline = time.monotonic() + 30
    while not pool_children() and time.monotonic() < deadline:
        time.sleep(0.05)
    [victim] = pool_children()
    time.sleep(0.5)
    victim.send_signal(signal.SIGKILL)
    thread.join(60)
    pool.close()
    outcome = done["outcome"]
    assert outcome.ok + outcome.failed == 3 and outcome.ok >= 2
    rows = read_rows(tmp_path)
    assert len(rows) == 3
    assert all(r["status"] == "ok" or "WorkerLost" in r["error"] for r in rows)
    assert not any(r["worker"].endswith(f":{victim.pid}") for r in rows)  # retried
    assert pool_children() == []


# -- a real Dask cluster -------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            worker_dashboard_address=None,
            silence_logs=logging.CRITICAL,
        ) as cluster,
        distributed.Client(cluster, set_as_default=False) as client,
    ):
        yield cluster, client
    deadline = time.monotonic() + 20
    while pool_children() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert pool_children() == [], "a cluster process is still running"


@pytest.mark.parametrize("name", ["clipping", "recommender"])
def test_dask_cluster_gives_the_local_results(cluster, local_results, name, capsys):
    spec, local_folder, local_rows = local_results[name]
    out = local_folder + "-dask"
    address = cluster[0].scheduler_address
    status, text, _ = sweep(
        [spec.source, "--scheduler", address, "--workers", "2", "--out", out], capsys
    )
    assert status == 0 and f"on Dask scheduler {address}" in text
    rows = read_rows(out)
    assert {r["worker"] for r in rows} <= set(cluster[1].scheduler_info()["workers"])
    metrics = ["seed", *spec.searched, *spec.metrics]
    assert by_trial(rows, metrics) == by_trial(local_rows, metrics)  # bit for bit


def test_dask_worker_killed_during_a_trial(cluster, tmp_path, capsys):
    local, client = cluster
    text = CLIPPING_SPEC.replace("n_updates = 40", "n_updates = 4000")
    text = text.replace('clip = ["none", 0.5, 2.0]', "clip = [0.5, 2.0]")
    spec = write_spec(tmp_path, text.replace("seeds = [0, 1]", "seeds = [0]"))
    out = str(tmp_path / "run")
    done = {}

    def sweep_in_background():
        argv = ["sweep", spec, "--scheduler", local.scheduler_address, "--out", out]
        done["status"] = main([*argv, "--no-plot", "--quiet"])

    thread = threading.Thread(target=sweep_in_background)
    thread.start()
    busy, deadline = [], time.monotonic() + 30
    while not busy and time.monotonic() < deadline:
        busy = [w for w, keys in client.processing().items() if keys]
        time.sleep(0.05)
    assert busy, "no trial started on the cluster"
    pids = client.run(os.getpid, workers=busy[:1])
    os.kill(pids[busy[0]], signal.SIGKILL)
    thread.join(60)
    assert not thread.is_alive()
    rows = read_rows(out)
    assert len(rows) == 2
    assert all(r["status"] == "ok" or "KilledWorker" in r["error"] for r in rows)
    assert busy[0] not in {r["worker"] for r in rows}  # its trial ran elsewhere
    assert done["status"] == (0 if all(r["status"] == "ok" for r in rows) else 1)
    # A trial retried elsewhere gives what it gives anywhere.
    for trial in load_spec(spec).trials():
        row = next(r for r in rows if r["trial"] == trial.trial)
        if row["status"] == "ok":
            mine = run_trial(TrialJob(trial.trial, "clipping", trial.settings, 0))
            assert row["final_loss"] == repr(mine["metrics"]["final_loss"])
    client.wait_for_workers(2, timeout=30)  # the nanny restarted the worker


def worker_data_keys():
    from rnnrec.sweep import tasks

    return sorted(tasks._DATA_CACHE)


def test_shipped_data_are_not_read_by_the_workers(cluster, tmp_path, capsys):
    text = RECOMMENDER_SPEC.replace("n_test_sessions = 30", "n_test_sessions = 31")
    spec = write_spec(tmp_path, text + "ship = true\n")
    local, dask = str(tmp_path / "local"), str(tmp_path / "dask")
    assert sweep([spec, "--workers", "1", "--out", local], capsys)[0] == 0
    address = cluster[0].scheduler_address
    assert sweep([spec, "--scheduler", address, "--out", dask], capsys)[0] == 0
    names = ["seed", "learning_rate", "recall@5", "mrr@5", "final_loss"]
    assert by_trial(read_rows(dask), names) == by_trial(read_rows(local), names)
    for keys in cluster[1].run(worker_data_keys).values():
        assert not any('"n_test_sessions": 31' in key for key in keys)

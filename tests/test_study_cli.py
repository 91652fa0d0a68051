"""``rnnrec study gradient-flow|clipping|tasks``, in quick mode, through the CLI."""

import csv
import subprocess
import sys

import pytest

import rnnrec.dynamics.plots
from rnnrec.cli import main

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def run(argv, tmp_path, capsys, *, quiet=True):
    argv = ["study", *argv, "--out", str(tmp_path)] + (["--quiet"] if quiet else [])
    status = main(argv)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


# -- gradient-flow -------------------------------------------------------------------


def test_gradient_flow_writes_csv_figure_and_table(tmp_path, capsys):
    status, out, err = run(["gradient-flow", "--quick"], tmp_path, capsys)
    assert status == 0 and err == ""

    rows = read_csv(tmp_path / "gradient_flow.csv")
    assert list(rows[0]) == [
        "cell",
        "radius",
        "steps",
        "distance",
        "grad_norm",
        "jacobian_norm",
        "jacobian_converged",
        "gates_saturated",
        "tanh_saturated",
    ]
    # Quick: 3 cells x 3 radii x (T + 1 distances for T = 5 and 10).
    assert len(rows) == 3 * 3 * (6 + 11)
    for row in rows:
        if row["distance"] == "0":  # the gradient the loss puts on h_T: unit rows
            assert float(row["grad_norm"]) == pytest.approx(1.0)
            assert float(row["jacobian_norm"]) == 1.0
        if row["distance"] == row["steps"]:  # h_0: no step made it
            assert row["gates_saturated"] == row["tanh_saturated"] == ""
        else:
            assert (row["gates_saturated"] == "") == (row["cell"] == "rnn")
            assert 0 <= float(row["tanh_saturated"]) <= 1
    assert (tmp_path / "gradient_flow.png").read_bytes()[:8] == PNG_MAGIC

    lines = out.splitlines()
    assert lines[0].split() == [
        "cell",
        "radius",
        "steps",
        "|dL/dh_0|",
        "|dh_T/dh_0|",
        "rate/step",
    ]
    assert (
        len([line for line in lines if line.startswith(("rnn", "lstm", "gru"))]) == 18
    )
    assert f"wrote {tmp_path / 'gradient_flow.csv'}" in lines
    assert f"wrote {tmp_path / 'gradient_flow.png'}" in lines


def test_gradient_flow_radius_sets_vanishing_or_exploding(tmp_path, capsys):
    argv = ["gradient-flow", "--cells", "rnn", "--radius", "0.5", "3", "--steps", "8"]
    status, _, _ = run([*argv, "--quick", "--no-plot"], tmp_path, capsys)
    assert status == 0
    rows = read_csv(tmp_path / "gradient_flow.csv")
    assert len(rows) == 2 * 9  # explicit --steps wins over --quick's
    assert not (tmp_path / "gradient_flow.png").exists()
    far = {r["radius"]: float(r["jacobian_norm"]) for r in rows if r["distance"] == "8"}
    assert far["0.5"] < 0.5**8 * 1.000001  # ||W|| = 0.5 bounds it
    assert far["3.0"] > 100 * far["0.5"]


# -- clipping ----------------------------------------------------------------------


def test_clipping_writes_per_update_records_and_a_summary(tmp_path, capsys):
    status, out, _ = run(["clipping", "--quick"], tmp_path, capsys)
    assert status == 0

    rows = read_csv(tmp_path / "clipping.csv")
    assert list(rows[0]) == [
        "clip",
        "update",
        "loss",
        "grad_norm",
        "clipped",
        "applied_norm",
    ]
    assert [r["clip"] for r in rows[::40]] == ["none", "0.5", "1", "5"]
    assert len(rows) == 4 * 40
    for r in rows:
        if r["clip"] == "none":
            assert r["clipped"] == "0"
            continue
        limit = float(r["clip"])
        assert (r["clipped"] == "1") == (float(r["grad_norm"]) > limit)
        assert float(r["applied_norm"]) <= limit * (1 + 1e-12) or r["clipped"] == "0"
    assert (tmp_path / "clipping.png").read_bytes()[:8] == PNG_MAGIC

    table = out.splitlines()
    assert table[0].split()[:4] == ["clip", "final", "loss", "test"]
    assert [line.split()[0] for line in table[1:5]] == ["none", "0.5", "1", "5"]


def test_clipping_turns_a_diverging_run_into_a_converging_one(tmp_path, capsys):
    # 2500 updates, as in test_dynamics: at 1500 the result hangs on the CPU's rounding.
    argv = ["clipping", "--steps", "10", "--clip", "none", "1", "--updates", "2500"]
    status, out, _ = run(argv, tmp_path, capsys)
    assert status == 0
    assert (tmp_path / "clipping.png").read_bytes()[:8] == PNG_MAGIC
    none, one = out.splitlines()[1:3]
    assert none.split()[0] == "none" and "at update" in none
    assert one.split()[0] == "1" and one.endswith("-")
    assert float(one.split()[2]) < 0.125  # test MSE, from 0.167 remembering nothing


# -- tasks ---------------------------------------------------------------------------


def test_tasks_writes_one_row_per_task_length_and_cell(tmp_path, capsys):
    status, out, _ = run(["tasks", "--quick"], tmp_path, capsys)
    assert status == 0
    rows = read_csv(tmp_path / "tasks.csv")
    assert list(rows[0]) == [
        "task",
        "cell",
        "steps",
        "error",
        "baseline",
        "solved",
        "updates",
        "seconds",
    ]
    assert len(rows) == 3 * 2 * 3
    assert {(r["task"], r["steps"], r["cell"]) for r in rows} == {
        (t, s, c)
        for t in ("adding", "copy", "session")
        for s in ("5", "10")
        for c in ("rnn", "lstm", "gru")
    }
    assert all(r["updates"] == "30" for r in rows)
    assert (tmp_path / "tasks.png").read_bytes()[:8] == PNG_MAGIC
    for name in ("adding (MSE", "copy (share wrong", "session (share wrong"):
        assert any(line.startswith(name) for line in out.splitlines()), name


def test_tasks_marks_a_solved_length(tmp_path, capsys):
    argv = ["tasks", "--task", "session", "--cells", "gru", "--steps", "4"]
    argv += ["--updates", "300", "--hidden", "16", "--no-plot"]
    status, out, _ = run(argv, tmp_path, capsys)
    assert status == 0
    (row,) = read_csv(tmp_path / "tasks.csv")
    assert row["solved"] == "1" and float(row["error"]) < 0.05
    assert out.splitlines()[2].split()[0] == "gru" and out.splitlines()[2].endswith("*")


# -- common options ----------------------------------------------------------------


def test_the_seed_decides_the_numbers(tmp_path, capsys):
    def clipping_csv(seed):
        run(["clipping", "--quick", "--no-plot", "--seed", seed], tmp_path, capsys)
        return (tmp_path / "clipping.csv").read_bytes()

    first = clipping_csv("3")
    assert clipping_csv("3") == first
    assert clipping_csv("4") != first


def test_without_matplotlib_the_csv_is_still_written(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(rnnrec.dynamics.plots, "matplotlib_available", lambda: False)
    status, out, _ = run(["gradient-flow", "--quick"], tmp_path, capsys)
    assert status == 0
    assert (tmp_path / "gradient_flow.csv").exists()
    assert not (tmp_path / "gradient_flow.png").exists()
    assert "matplotlib is not installed" in out
    assert "pip install rnnrec[plot]" in out


def test_progress_bar_goes_to_stderr_unless_quiet(tmp_path, capsys):
    argv = ["gradient-flow", "--quick", "--no-plot"]
    _, out, err = run(argv, tmp_path, capsys, quiet=False)
    assert "gradient flow" in err and "gradient flow" not in out
    _, _, err = run(argv, tmp_path, capsys)
    assert err == ""


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["clipping", "--clip", "0"], "must be 'none' or a number > 0"),
        (["clipping", "--clip", "tight"], "must be a number, got 'tight'"),
        (["gradient-flow", "--radius", "-1"], "must be a finite number >= 0"),
        (["gradient-flow", "--steps", "0"], "must be at least 1, got 0"),
        (["tasks", "--cells", "rnn", "transformer"], "invalid choice: 'transformer'"),
        (["tasks", "--task", "parity"], "invalid choice: 'parity'"),
        (["study-that-is-not"], "invalid choice"),
    ],
)
def test_bad_options_are_named(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["study", *argv])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_a_missing_output_folder_is_created(tmp_path, capsys):
    missing = tmp_path / "new" / "folder"
    assert main(["study", "tasks", "--quick", "--no-plot", "--out", str(missing)]) == 0
    assert (missing / "tasks.csv").is_file()


def test_a_file_in_place_of_the_output_folder_is_one_line_and_status_2(
    tmp_path, capsys
):
    in_the_way = tmp_path / "results"
    in_the_way.write_text("not a folder")
    assert main(["study", "tasks", "--quick", "--out", str(in_the_way)]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"rnnrec study: error: --out {in_the_way}: a file is in the way, not a folder\n"
    )
    assert in_the_way.read_text() == "not a folder"


def test_study_runs_as_a_program(tmp_path):
    argv = ["study", "tasks", "--quick", "--task", "adding", "--cells", "gru"]
    result = subprocess.run(
        [sys.executable, "-m", "rnnrec", *argv, "--out", str(tmp_path), "--quiet"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("adding (MSE; remembering nothing: 0.167")
    assert len(read_csv(tmp_path / "tasks.csv")) == 2

"""The exercise checkers pass the reference, and catch wrong solutions precisely."""

import json
import subprocess
import sys

import numpy as np
import pytest

from rnnrec.cells.gru import gru_step_forward
from rnnrec.cells.lstm import lstm_step_forward
from rnnrec.cells.rnn import rnn_step_backward
from rnnrec.exercises import (
    check_gru_step_forward,
    check_lstm_step_forward,
    check_numeric_gradient,
    check_rnn_step_backward,
    compare_tensor,
    strip_notebook,
    strip_source,
)
from rnnrec.gradcheck import numeric_gradient

# -- compare_tensor -----------------------------------------------------------------


def test_compare_tensor_names_the_worst_entry_and_the_count():
    want = np.arange(12.0).reshape(3, 4)
    got = want.copy()
    got[2, 1] += 0.5
    got[0, 3] -= 0.25
    verdict = compare_tensor("dW", got, want)
    assert not verdict.passed
    assert verdict.summary == "3x4, 2 of 12 entries wrong"
    assert verdict.details[0] == "at (2, 1): got 9.5, expected 9 (off by 0.5)"
    assert verdict.details[1] == "at (0, 3): got 2.75, expected 3 (off by 0.25)"
    assert verdict.max_abs_error == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("make", "hint"),
    [
        (lambda w: -w, "sign flipped"),
        (lambda w: 0.5 * w, "times 0.5"),
        (lambda w: np.zeros_like(w), "all zeros"),
        (lambda w: w.T, "transpose"),
    ],
)
def test_compare_tensor_recognises_patterns(make, hint):
    want = np.random.default_rng(0).standard_normal((4, 4))
    verdict = compare_tensor("t", make(want), want)
    assert not verdict.passed
    assert hint in verdict.details[-1]


def test_compare_tensor_reports_shape_and_nan():
    want = np.ones((2, 3))
    shape = compare_tensor("x", np.ones((3, 2)), want)
    assert shape.summary == "shape (3, 2), expected (2, 3)"
    assert "transpose" in shape.details[0]
    bad = want.copy()
    bad[1, 2] = np.nan
    nan = compare_tensor("x", bad, want)
    assert nan.summary == "1 of 6 entries are NaN or infinite, the first at (1, 2)"
    assert compare_tensor("x", None, want).summary.startswith("got None")


def test_compare_tensor_accepts_rounding():
    want = np.random.default_rng(1).standard_normal(10)
    verdict = compare_tensor("v", want * (1 + 1e-13), want)
    assert verdict.passed
    assert verdict.summary.startswith("10, max abs error")


# -- the RNN's step backward --------------------------------------------------------


def test_reference_rnn_step_backward_passes():
    feedback = check_rnn_step_backward(rnn_step_backward)
    assert feedback.passed
    assert str(feedback).startswith("RNN step backward: OK, all 6 tensors match")
    feedback.assert_passed()


def test_wrong_sign_is_caught_in_the_right_tensor():
    def wrong_sign(dh_t, x_t, h_prev, h_t, W_ih, W_hh):
        out = list(rnn_step_backward(dh_t, x_t, h_prev, h_t, W_ih, W_hh))
        out[3] = -out[3]  # dW_hh
        return out

    feedback = check_rnn_step_backward(wrong_sign)
    assert not feedback.passed
    wrong = [v.name for v in feedback.verdicts if not v.passed]
    assert wrong == ["dW_hh"]
    verdict = feedback.verdict("dW_hh")
    assert verdict.summary == "5x5, 25 of 25 entries wrong"
    assert (
        verdict.details[-1] == "hint: it is the expected tensor with the sign flipped"
    )
    assert "NOT OK, 1 of 6 wrong" in str(feedback)
    with pytest.raises(AssertionError, match="dW_hh"):
        feedback.assert_passed()


def test_missing_tanh_derivative_is_named():
    def no_slope(dh_t, x_t, h_prev, h_t, W_ih, W_hh):
        da = dh_t  # forgot * (1 - h_t**2)
        db = da.sum(0)
        return da @ W_ih, da @ W_hh, da.T @ x_t, da.T @ h_prev, db, db

    feedback = check_rnn_step_backward(no_slope)
    assert all(not v.passed for v in feedback.verdicts)
    for v in feedback.verdicts:
        assert v.details[-1] == (
            "hint: it equals what you get when the tanh derivative "
            "(1 - h_t**2) is left out"
        )


def test_missing_dh_prev_term_and_wrong_state_are_caught():
    def wrong(dh_t, x_t, h_prev, h_t, W_ih, W_hh):
        dx, dh_prev, dW_ih, dW_hh, db, db2 = rnn_step_backward(
            dh_t, x_t, h_prev, h_t, W_ih, W_hh
        )
        da = dh_t * (1 - h_t**2)
        return dx, np.zeros_like(dh_prev), dW_ih, da.T @ h_t, db, db2

    feedback = check_rnn_step_backward(wrong)
    assert feedback.verdict("dh_prev").details[-1].startswith("hint: it is all zeros")
    assert feedback.verdict("dW_hh").details[-1] == (
        "hint: it equals what you get when dW_hh is da^T h_t instead of da^T h_prev"
    )
    assert feedback.verdict("dx_t").passed


def test_exceptions_wrong_arity_and_mutation_are_reported():
    def unwritten(*args):
        raise NotImplementedError("exercise 1: write the step backward")

    feedback = check_rnn_step_backward(unwritten)
    assert not feedback.passed and not feedback.verdicts
    assert "raised NotImplementedError: exercise 1" in feedback.problems[0]

    short = check_rnn_step_backward(lambda *a: rnn_step_backward(*a)[:5])
    assert "must return 6 arrays" in short.problems[0]

    def mutating(dh_t, x_t, h_prev, h_t, W_ih, W_hh):
        dh_t *= 1 - h_t**2
        db = dh_t.sum(0)
        return dh_t @ W_ih, dh_t @ W_hh, dh_t.T @ x_t, dh_t.T @ h_prev, db, db

    mutated = check_rnn_step_backward(mutating)
    assert all(v.passed for v in mutated.verdicts)
    assert not mutated.passed
    assert "modified its input dh_t in place" in mutated.problems[0]


# -- the gates ----------------------------------------------------------------------


def test_reference_gates_pass():
    assert check_lstm_step_forward(lstm_step_forward).passed
    for variant in ("torch", "cho"):
        step = lambda *a, v=variant: gru_step_forward(*a, v)[0]  # noqa: E731
        assert check_gru_step_forward(step, variant=variant).passed


def test_lstm_without_tanh_on_the_output_is_caught():
    def no_tanh(x_t, h_prev, c_prev, W_ih, W_hh, b_ih, b_hh):
        h_t, c_t, gates = lstm_step_forward(x_t, h_prev, c_prev, W_ih, W_hh, b_ih, b_hh)
        o_t = gates[:, 15:]
        return o_t * c_t, c_t, gates

    feedback = check_lstm_step_forward(no_tanh)
    assert [v.name for v in feedback.verdicts if not v.passed] == ["h_t"]
    assert feedback.verdict("h_t").details[-1] == (
        "hint: it equals what you get when h_t = o_t * c_t, without the tanh"
    )


def test_lstm_missing_forget_gate_is_caught():
    def no_forget(x_t, h_prev, c_prev, W_ih, W_hh, b_ih, b_hh):
        _, _, gates = lstm_step_forward(x_t, h_prev, c_prev, W_ih, W_hh, b_ih, b_hh)
        i, f, g, o = np.split(gates, 4, axis=1)
        c_t = c_prev + i * g
        return o * np.tanh(c_t), c_t, gates

    feedback = check_lstm_step_forward(no_forget)
    assert "the forget gate is left out" in feedback.verdict("c_t").details[-1]
    assert feedback.verdict("gates").passed


def test_gru_variant_and_swapped_update_gate_are_named():
    cho = check_gru_step_forward(lambda *a: gru_step_forward(*a, "cho")[0])
    assert "applied as in the other variant ('cho')" in cho.verdict("h_t").details[-1]

    def swapped(x_t, h_prev, W_ih, W_hh, b_ih, b_hh):
        _, gates, _ = gru_step_forward(x_t, h_prev, W_ih, W_hh, b_ih, b_hh)
        r, z, n = np.split(gates, 3, axis=1)
        return z * n + (1 - z) * h_prev

    feedback = check_gru_step_forward(swapped)
    assert "z_t and 1 - z_t are swapped" in feedback.verdict("h_t").details[-1]


# -- finite differences -------------------------------------------------------------


def central(f, x, step):
    return numeric_gradient(lambda d: f(d["x"]), {"x": x}, "x", step=step)


def test_central_differences_pass():
    feedback = check_numeric_gradient(central)
    assert feedback.passed
    assert feedback.verdict("gradient").max_abs_error < 1e-8


def test_one_sided_differences_are_named():
    def one_sided(f, x, step):
        grad, f0 = np.empty_like(x), f(x)
        for i in np.ndindex(x.shape):
            trial = x.copy()
            trial[i] += step
            grad[i] = (f(trial) - f0) / step
        return grad

    feedback = check_numeric_gradient(one_sided)
    assert "f was called 13 times" in feedback.problems[0]
    assert "one-sided differences" in feedback.verdict("gradient").details[-1]


def test_missing_factor_two_and_unrestored_input_are_caught():
    def no_half(f, x, step):
        return 2 * central(f, x, step)

    assert "times 2" in check_numeric_gradient(no_half).verdict("gradient").details[-1]

    def unrestored(f, x, step):
        grad = np.empty_like(x)
        for i in np.ndindex(x.shape):
            x[i] += step
            fp = f(x)
            x[i] -= 2 * step
            grad[i] = (fp - f(x)) / (2 * step)  # forgets to add step back
        return grad

    feedback = check_numeric_gradient(unrestored)
    assert "x is not the same after your function" in feedback.problems[0]
    assert not feedback.passed


# -- stripping ------------------------------------------------------------------------

SOLVED = '''def my_step(a):
    """Double a."""
    if SOLUTIONS:  # the worked solution
        b = 2 * a

        return b
    raise NotImplementedError("exercise: double a")
'''


def test_strip_source_removes_the_block_and_keeps_the_rest():
    text, n = strip_source(SOLVED)
    assert n == 1
    assert "2 * a" not in text and "SOLUTIONS" not in text
    assert text.endswith('raise NotImplementedError("exercise: double a")\n')
    compile(text, "cell", "exec")
    switch, n = strip_source("SOLUTIONS = True  # the switch\nx = 1\n")
    assert n == 0 and switch.startswith("SOLUTIONS = False")


def notebook(*sources):
    cells = [
        {
            "cell_type": "code",
            "source": s,
            "metadata": {},
            "outputs": [{"output_type": "stream", "name": "stdout", "text": "4\n"}],
            "execution_count": 1,
        }
        for s in sources
    ]
    cells.append({"cell_type": "markdown", "source": "text", "metadata": {}})
    return {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def test_strip_notebook_clears_outputs_and_leaves_the_input_alone():
    original = notebook("SOLUTIONS = True", SOLVED, "print(my_step(2))")
    stripped, n = strip_notebook(original)
    assert n == 1
    assert stripped["cells"][0]["source"] == "SOLUTIONS = False"
    assert all(c.get("outputs", []) == [] for c in stripped["cells"])
    assert original["cells"][1]["outputs"]  # the input is not modified
    namespace = {}
    for cell in stripped["cells"][:2]:
        exec(cell["source"], namespace)
    with pytest.raises(NotImplementedError, match="exercise: double a"):
        namespace["my_step"](2)


def test_strip_command(tmp_path):
    source = tmp_path / "01.ipynb"
    source.write_text(json.dumps(notebook("SOLUTIONS = True", SOLVED)))
    out = tmp_path / "student"
    result = subprocess.run(
        [sys.executable, "-m", "rnnrec.exercises", "strip", str(source)]
        + ["--out-dir", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "1 solution block(s) removed" in result.stdout
    copy = json.loads((out / "01.ipynb").read_text())
    assert "2 * a" not in copy["cells"][1]["source"]
    same_dir = subprocess.run(
        [sys.executable, "-m", "rnnrec.exercises", "strip", str(source)]
        + ["--out-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert same_dir.returncode == 2
    assert "own folder" in same_dir.stderr
    assert "Traceback" not in same_dir.stderr
    last = same_dir.stderr.strip().splitlines()[-1]
    assert (
        last.startswith("python -m rnnrec.exercises: error:") and "own folder" in last
    )


def test_package_docstring_examples():
    import doctest

    import rnnrec.exercises

    result = doctest.testmod(rnnrec.exercises)
    assert result.attempted > 0 and result.failed == 0

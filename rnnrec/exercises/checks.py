"""The exercises of notebooks 01 to 03, each checked against the reference.

Each checker draws a seeded random problem, calls the student's function on
fresh copies of the inputs, and compares every returned tensor with
rnnrec's verified implementation (the cells' step functions, whose gradients
the test suite checks against finite differences and PyTorch). The problem
shapes differ in every dimension (B 3, D 4, H 5), so that a transposed or
misplaced product cannot pass.

* `check_rnn_step_backward`: the vanilla RNN's step backward, tanh.
* `check_lstm_step_forward`: the LSTM's gates, cell and state.
* `check_gru_step_forward`: the GRU's step, in either variant.
* `check_numeric_gradient`: a central-difference gradient.

Each returns a `rnnrec.exercises.feedback.Feedback`; none raises on a wrong
answer (call ``assert_passed`` for that).
"""

from __future__ import annotations

import traceback

import numpy as np

from rnnrec._validation import as_rng, check_choice
from rnnrec.cells.activations import sigmoid
from rnnrec.cells.gru import VARIANTS, gru_step_forward
from rnnrec.cells.lstm import lstm_step_forward
from rnnrec.cells.rnn import rnn_step_backward, rnn_step_forward
from rnnrec.exercises.feedback import Feedback, compare_tensor

B, D, H = 3, 4, 5


def _weights(rng, n_gates):
    """Random weights of one cell, scaled like PyTorch's initialisation."""
    k = 1 / np.sqrt(H)
    return (
        rng.uniform(-k, k, (n_gates * H, D)),  # W_ih (G*H, D)
        rng.uniform(-k, k, (n_gates * H, H)),  # W_hh (G*H, H)
        rng.uniform(-k, k, n_gates * H),  # b_ih (G*H,)
        rng.uniform(-k, k, n_gates * H),  # b_hh (G*H,)
    )


def _call(feedback, fn, args):
    """Call the student's function on copies; record exceptions and mutations."""
    copies = [a.copy() for a in args]
    try:
        out = fn(*copies)
    except Exception as error:  # the student's code: report any exception
        where = traceback.extract_tb(error.__traceback__)[-1]
        code = f": {where.line}" if where.line else ""
        feedback.problems.append(
            f"your function raised {type(error).__name__}: {error} "
            f"(line {where.lineno}{code})"
        )
        return None
    return out, copies


def _report_mutations(feedback, names, args, copies):
    for name, original, after in zip(names, args, copies, strict=True):
        if not np.array_equal(original, after):
            feedback.problems.append(
                f"your function modified its input {name} in place; compute new "
                "arrays instead (x = x * 2, not x *= 2)"
            )


def _unpack(feedback, out, names):
    """Check the number of outputs; return them or None."""
    if len(names) == 1:
        return [out]
    if not isinstance(out, (tuple, list)) or len(out) != len(names):
        got = len(out) if isinstance(out, (tuple, list)) else type(out).__name__
        feedback.problems.append(
            f"your function must return {len(names)} arrays "
            f"({', '.join(names)}), got {got}"
        )
        return None
    return list(out)


# -- exercise 1: the RNN's step backward ---------------------------------------------

RNN_BACKWARD_OUTPUTS = ("dx_t", "dh_prev", "dW_ih", "dW_hh", "db_ih", "db_hh")


def _rnn_grads(da, x_t, h_prev, W_ih, W_hh):
    """Return the step's six gradients given ``da``, the pre-activation's."""
    db = da.sum(axis=0)  # (H,)
    return da @ W_ih, da @ W_hh, da.T @ x_t, da.T @ h_prev, db, db


def _rnn_mistakes(dh_t, x_t, h_prev, h_t, W_ih, W_hh):
    """Return what common mistakes of the RNN's step backward give, per output."""
    da = dh_t * (1 - h_t * h_t)  # (B, H)
    by_name = {name: [] for name in RNN_BACKWARD_OUTPUTS}
    for description, d in (
        ("the tanh derivative (1 - h_t**2) is left out", dh_t),
        (
            "the tanh derivative is written 1 - h_t instead of 1 - h_t**2",
            dh_t * (1 - h_t),
        ),
        (
            "the tanh derivative is taken at h_prev instead of h_t",
            dh_t * (1 - h_prev**2),
        ),
    ):
        outs = _rnn_grads(d, x_t, h_prev, W_ih, W_hh)
        for name, value in zip(RNN_BACKWARD_OUTPUTS, outs, strict=True):
            by_name[name].append((description, value))
    by_name["dW_hh"] += [
        ("dW_hh is da^T h_t instead of da^T h_prev", da.T @ h_t),
        ("dW_hh is h_prev^T da, the transpose of da^T h_prev", h_prev.T @ da),
    ]
    by_name["dh_prev"] += [("dh_prev uses W_hh^T: da @ W_hh.T", da @ W_hh.T)]
    by_name["db_ih"] += [("the bias gradient is averaged, not summed", da.mean(0))]
    by_name["db_hh"] += [("the bias gradient is averaged, not summed", da.mean(0))]
    return by_name


def check_rnn_step_backward(fn, *, seed=0):
    """Check a student's step backward of the tanh RNN.

    The forward step is ``h_t = tanh(x_t W_ih^T + b_ih + h_prev W_hh^T + b_hh)``
    (`rnnrec.cells.rnn.rnn_step_forward`).

    Parameters
    ----------
    fn : callable
        ``fn(dh_t, x_t, h_prev, h_t, W_ih, W_hh)`` returning ``(dx_t, dh_prev,
        dW_ih, dW_hh, db_ih, db_hh)``, the signature of
        `rnnrec.cells.rnn.rnn_step_backward`. Shapes: ``dh_t, h_prev, h_t``
        ``(B, H)``, ``x_t`` ``(B, D)``, ``W_ih`` ``(H, D)``, ``W_hh`` ``(H, H)``.
    seed : int, default 0
        Seed of the random problem.

    Returns
    -------
    Feedback
        One verdict per returned gradient.
    """
    rng = as_rng(seed)
    W_ih, W_hh, b_ih, b_hh = _weights(rng, 1)
    x_t = rng.standard_normal((B, D))  # (B, D)
    h_prev = rng.standard_normal((B, H))  # (B, H)
    h_t = rnn_step_forward(x_t, h_prev, W_ih, W_hh, b_ih, b_hh)  # (B, H)
    dh_t = rng.standard_normal((B, H))  # (B, H)
    args = (dh_t, x_t, h_prev, h_t, W_ih, W_hh)
    feedback = Feedback("RNN step backward")
    called = _call(feedback, fn, args)
    if called is None:
        return feedback
    out, copies = called
    _report_mutations(
        feedback, ("dh_t", "x_t", "h_prev", "h_t", "W_ih", "W_hh"), args, copies
    )
    outs = _unpack(feedback, out, RNN_BACKWARD_OUTPUTS)
    if outs is None:
        return feedback
    want = rnn_step_backward(*args)
    known = _rnn_mistakes(*args)
    for name, got, ref in zip(RNN_BACKWARD_OUTPUTS, outs, want, strict=True):
        feedback.verdicts.append(compare_tensor(name, got, ref, known=known[name]))
    return feedback


# -- exercise 2: the gates -------------------------------------------------------------

LSTM_OUTPUTS = ("h_t", "c_t", "gates")


def _lstm_variants(x_t, h_prev, c_prev, W_ih, W_hh, b_ih, b_hh):
    """Return the outputs of common wrong LSTM steps, per output."""
    a = x_t @ W_ih.T + b_ih + h_prev @ W_hh.T + b_hh  # (B, 4H)
    i, f, g, o = (a[:, k * H : (k + 1) * H] for k in range(4))
    right = (sigmoid(i), sigmoid(f), np.tanh(g), sigmoid(o))
    cases = {
        "the candidate g_t uses sigmoid instead of tanh": (
            right[0],
            right[1],
            sigmoid(g),
            right[3],
        ),
        "the input and forget gates are swapped (the order is i, f, g, o)": (
            right[1],
            right[0],
            right[2],
            right[3],
        ),
        "the gates are read in the order i, f, o, g": (
            right[0],
            right[1],
            np.tanh(o),
            sigmoid(g),
        ),
    }
    by_name = {name: [] for name in LSTM_OUTPUTS}
    for description, (si, sf, sg, so) in cases.items():
        c = sf * c_prev + si * sg
        values = (so * np.tanh(c), c, np.concatenate([si, sf, sg, so], axis=1))
        for name, value in zip(LSTM_OUTPUTS, values, strict=True):
            by_name[name].append((description, value))
    si, sf, sg, so = right
    c = sf * c_prev + si * sg
    by_name["h_t"] += [("h_t = o_t * c_t, without the tanh", so * c)]
    c_no_forget = c_prev + si * sg
    by_name["c_t"] += [("the forget gate is left out: c_prev + i*g", c_no_forget)]
    by_name["h_t"] += [
        ("the forget gate is left out: c_prev + i*g", so * np.tanh(c_no_forget))
    ]
    return by_name


def check_lstm_step_forward(fn, *, seed=0):
    """Check a student's LSTM step: the four gates, the cell and the state.

    Parameters
    ----------
    fn : callable
        ``fn(x_t, h_prev, c_prev, W_ih, W_hh, b_ih, b_hh)`` returning ``(h_t,
        c_t, gates)``, the signature of `rnnrec.cells.lstm.lstm_step_forward`;
        ``gates`` is ``[i_t, f_t, g_t, o_t]`` after their nonlinearities
        ``(B, 4H)``. ``W_ih`` is ``(4H, D)`` and ``W_hh`` ``(4H, H)``, the gates
        stacked i, f, g, o.
    seed : int, default 0
        Seed of the random problem.

    Returns
    -------
    Feedback
        Verdicts on ``h_t``, ``c_t`` and ``gates``.
    """
    rng = as_rng(seed)
    W_ih, W_hh, b_ih, b_hh = _weights(rng, 4)
    x_t = rng.standard_normal((B, D))  # (B, D)
    h_prev = rng.standard_normal((B, H))  # (B, H)
    c_prev = rng.standard_normal((B, H))  # (B, H)
    args = (x_t, h_prev, c_prev, W_ih, W_hh, b_ih, b_hh)
    names = ("x_t", "h_prev", "c_prev", "W_ih", "W_hh", "b_ih", "b_hh")
    feedback = Feedback("LSTM step forward")
    called = _call(feedback, fn, args)
    if called is None:
        return feedback
    out, copies = called
    _report_mutations(feedback, names, args, copies)
    outs = _unpack(feedback, out, LSTM_OUTPUTS)
    if outs is None:
        return feedback
    want = lstm_step_forward(*args)
    known = _lstm_variants(*args)
    for name, got, ref in zip(LSTM_OUTPUTS, outs, want, strict=True):
        feedback.verdicts.append(compare_tensor(name, got, ref, known=known[name]))
    return feedback


def _gru_variants(x_t, h_prev, W_ih, W_hh, b_ih, b_hh, variant):
    """Return the ``h_t`` of common wrong GRU steps."""
    other = "cho" if variant == "torch" else "torch"
    ax = x_t @ W_ih.T + b_ih  # (B, 3H)
    ah = h_prev @ W_hh.T + b_hh  # (B, 3H)
    r = sigmoid(ax[:, :H] + ah[:, :H])
    z = sigmoid(ax[:, H : 2 * H] + ah[:, H : 2 * H])
    W_hn, b_hn = W_hh[2 * H :], b_hh[2 * H :]
    if variant == "torch":
        n = np.tanh(ax[:, 2 * H :] + r * (h_prev @ W_hn.T + b_hn))
        n_bias_outside = np.tanh(ax[:, 2 * H :] + r * (h_prev @ W_hn.T) + b_hn)
    else:
        n = np.tanh(ax[:, 2 * H :] + (r * h_prev) @ W_hn.T + b_hn)
        n_bias_outside = n
    n_no_reset = np.tanh(ax[:, 2 * H :] + h_prev @ W_hn.T + b_hn)
    return [
        (
            f"the reset gate is applied as in the other variant ({other!r})",
            gru_step_forward(x_t, h_prev, W_ih, W_hh, b_ih, b_hh, other)[0],
        ),
        ("z_t and 1 - z_t are swapped: z*n + (1-z)*h_prev", z * n + (1 - z) * h_prev),
        (
            "the reset gate multiplies W_hn h_prev but not b_hn",
            (1 - z) * n_bias_outside + z * h_prev,
        ),
        ("the reset gate is left out", (1 - z) * n_no_reset + z * h_prev),
    ]


def check_gru_step_forward(fn, *, variant="torch", seed=0):
    """Check a student's GRU step in PyTorch's or Cho et al.'s variant.

    Parameters
    ----------
    fn : callable
        ``fn(x_t, h_prev, W_ih, W_hh, b_ih, b_hh)`` returning ``h_t`` ``(B, H)``.
        ``W_ih`` is ``(3H, D)`` and ``W_hh`` ``(3H, H)``, the gates stacked r, z,
        n (see `rnnrec.cells.gru`).
    variant : {"torch", "cho"}, default "torch"
        The variant the function is meant to compute.
    seed : int, default 0
        Seed of the random problem.

    Returns
    -------
    Feedback
        A verdict on ``h_t``.
    """
    variant = check_choice(variant, "variant", VARIANTS)
    rng = as_rng(seed)
    W_ih, W_hh, b_ih, b_hh = _weights(rng, 3)
    x_t = rng.standard_normal((B, D))  # (B, D)
    h_prev = rng.standard_normal((B, H))  # (B, H)
    args = (x_t, h_prev, W_ih, W_hh, b_ih, b_hh)
    feedback = Feedback(f"GRU step forward ({variant!r} variant)")
    called = _call(feedback, fn, args)
    if called is None:
        return feedback
    out, copies = called
    _report_mutations(
        feedback, ("x_t", "h_prev", "W_ih", "W_hh", "b_ih", "b_hh"), args, copies
    )
    want = gru_step_forward(*args, variant)[0]
    known = _gru_variants(*args, variant)
    feedback.verdicts.append(compare_tensor("h_t", out, want, known=known))
    return feedback


# -- exercise 3: a finite-difference gradient ----------------------------------------


class _CountingFunction:
    """``f(x) = sum(G * sin(x) * x**2)``, counting its calls."""

    def __init__(self, G):
        self.G = G
        self.calls = 0

    def __call__(self, x):
        self.calls += 1
        return float(np.sum(self.G * np.sin(x) * x**2))

    def gradient(self, x):
        return self.G * (np.cos(x) * x**2 + 2 * x * np.sin(x))


def _one_sided(f, x, step):
    grad = np.empty_like(x)
    f0 = f(x)
    for i in np.ndindex(x.shape):
        trial = x.copy()
        trial[i] += step
        grad[i] = (f(trial) - f0) / step
    return grad


def check_numeric_gradient(fn, *, step=1e-5, seed=0):
    """Check a student's central-difference gradient.

    The function differentiated is ``f(x) = sum(G * sin(x) * x**2)`` for a
    random ``G`` and ``x`` of shape ``(3, 4)``; its exact gradient is known, and
    a central difference with step ``1e-5`` matches it to about ``1e-10``,
    while a one-sided difference is off by about ``1e-5``.

    Parameters
    ----------
    fn : callable
        ``fn(f, x, step)`` returning the array of
        ``(f(x + h e_i) - f(x - h e_i)) / 2h`` for every entry ``i`` of ``x``.
    step : float, default 1e-5
        ``h``, passed to ``fn``.
    seed : int, default 0
        Seed of ``G`` and ``x``.

    Returns
    -------
    Feedback
        A verdict on the gradient, and problems found in how ``f`` was called.
    """
    rng = as_rng(seed)
    x = rng.uniform(-2, 2, (3, 4))  # (3, 4)
    f = _CountingFunction(rng.standard_normal((3, 4)))
    feedback = Feedback("central-difference gradient")
    called = _call(feedback, lambda x_: fn(f, x_, step), (x,))
    if called is None:
        return feedback
    out, (x_after,) = called
    if not np.array_equal(x_after, x):
        feedback.problems.append(
            "x is not the same after your function: restore every entry you "
            "perturb, or perturb a copy"
        )
    if f.calls != 2 * x.size:
        feedback.problems.append(
            f"f was called {f.calls} times; central differences need exactly 2 "
            f"per entry, {2 * x.size} for these {x.size} entries"
        )
    exact = f.gradient(x)
    known = [
        (
            "one-sided differences (f(x + h) - f(x)) / h are used",
            _one_sided(f, x, step),
        ),
    ]
    feedback.verdicts.append(
        compare_tensor("gradient", out, exact, rtol=1e-7, atol=1e-9, known=known)
    )
    return feedback

"""Comparing a student's tensors with the reference, and saying what is wrong.

A verdict names the tensor, how many of its entries are wrong, the worst entry
(index, the value received, the value expected, the error) and, where the
pattern is recognisable, a hint: the sign is flipped, a factor is off, the
tensor is transposed or all zeros, or it equals what a known mistake gives
(``known`` below), such as a missing term of the chain rule.

An entry is wrong when ``|got - want| > atol + rtol * |want|``, NumPy's
``allclose`` rule. The defaults suit float64 arithmetic that follows the same
equations in a different order: rounding moves the last few digits only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

RTOL = 1e-7
ATOL = 1e-10
MAX_LISTED = 3


@dataclass
class TensorVerdict:
    """The outcome of comparing one tensor.

    Attributes
    ----------
    name : str
        The tensor, as the exercise names it (``"dW_hh"``).
    passed : bool
        Whether every entry is within tolerance.
    summary : str
        One line: the shape and the largest error, or what is wrong.
    details : list of str
        Further lines: the worst entries and hints.
    max_abs_error : float
        Largest ``|got - want|`` (NaN if the shapes differ or nothing came).
    """

    name: str
    passed: bool
    summary: str
    details: list = field(default_factory=list)
    max_abs_error: float = float("nan")

    def lines(self, width=10):
        """Return the verdict as printable lines.

        Parameters
        ----------
        width : int, default 10
            Width of the name column.

        Returns
        -------
        list of str
            ``"<name> OK|NOT OK <summary>"`` and the indented details.
        """
        mark = "OK    " if self.passed else "NOT OK"
        head = f"  {self.name:<{width}} {mark}  {self.summary}"
        return [head] + [f"  {'':<{width}}         {d}" for d in self.details]


@dataclass
class Feedback:
    """What a checker found: one verdict per tensor, or the error raised.

    Print it (or leave it as the last expression of a notebook cell) to read it.

    Attributes
    ----------
    exercise : str
        The exercise's title.
    verdicts : list of TensorVerdict
        One per tensor checked.
    problems : list of str
        What went wrong outside the tensors' values: an exception raised by the
        student's function, a wrong number of outputs, an input modified.
    """

    exercise: str
    verdicts: list = field(default_factory=list)
    problems: list = field(default_factory=list)

    @property
    def passed(self):
        """bool: no problem, and every tensor within tolerance."""
        return not self.problems and all(v.passed for v in self.verdicts)

    def verdict(self, name):
        """Return the verdict on one tensor.

        Parameters
        ----------
        name : str
            The tensor's name.

        Returns
        -------
        TensorVerdict
            The verdict.
        """
        for v in self.verdicts:
            if v.name == name:
                return v
        raise KeyError(
            f"no verdict on {name!r}; have {[v.name for v in self.verdicts]}"
        )

    def __str__(self):
        wrong = sum(not v.passed for v in self.verdicts)
        if self.passed:
            n = len(self.verdicts)
            what = "the tensor matches" if n == 1 else f"all {n} tensors match"
            head = f"{self.exercise}: OK, {what}"
        elif self.verdicts:
            head = f"{self.exercise}: NOT OK, {wrong} of {len(self.verdicts)} wrong"
        else:
            head = f"{self.exercise}: NOT OK"
        lines = [head] + [f"  {p}" for p in self.problems]
        width = max([len(v.name) for v in self.verdicts] + [4])
        for v in self.verdicts:
            lines.extend(v.lines(width))
        return "\n".join(lines)

    def _repr_pretty_(self, p, cycle):  # IPython shows the text, not the fields
        p.text(str(self))

    def assert_passed(self):
        """Raise AssertionError with the feedback's text unless it passed."""
        if not self.passed:
            raise AssertionError(str(self))


def _fmt_index(index):
    return str(tuple(int(i) for i in index))


def _proportional(got, want):
    """Return c if ``got`` is close to ``c * want`` for a scalar c != 1, else None."""
    denominator = float(np.sum(want * want))
    if denominator == 0:
        return None
    c = float(np.sum(got * want)) / denominator
    if not np.isfinite(c) or abs(c - 1) < 1e-6 or abs(c) < 1e-12:
        return None
    if np.allclose(got, c * want, rtol=1e-6, atol=1e-12 * np.abs(want).max()):
        return c
    return None


def _hints(got, want, known):
    """Recognisable patterns of a wrong tensor, most specific first."""
    for description, candidate in known:
        candidate = np.asarray(candidate, dtype=np.float64)
        if candidate.shape == got.shape and np.allclose(
            got, candidate, rtol=1e-7, atol=1e-12
        ):
            return [f"hint: it equals what you get when {description}"]
    if not np.any(want) and np.any(got):
        return ["hint: it should be all zeros"]
    if not np.any(got):
        return ["hint: it is all zeros: is a term missing, or never added?"]
    if np.allclose(got, -want, rtol=1e-7, atol=1e-12):
        return ["hint: it is the expected tensor with the sign flipped"]
    if got.ndim == 2 and got.shape == got.shape[::-1] and np.allclose(got.T, want):
        return ["hint: it is the transpose of the expected tensor"]
    c = _proportional(got, want)
    if c is not None:
        return [f"hint: it is the expected tensor times {c:.6g}: a factor is off"]
    return []


def compare_tensor(name, got, want, *, rtol=RTOL, atol=ATOL, known=()):
    """Compare a student's tensor with the reference and explain the difference.

    Parameters
    ----------
    name : str
        The tensor's name, used in the messages.
    got : array_like
        What the student's code returned.
    want : numpy.ndarray
        The reference value.
    rtol, atol : float
        Tolerances of the ``allclose`` rule (module docstring).
    known : sequence of (str, numpy.ndarray)
        Known mistakes: a description ("the tanh derivative is left out") and
        the tensor that mistake produces. A match becomes the hint.

    Returns
    -------
    TensorVerdict
        The verdict.
    """
    want = np.asarray(want, dtype=np.float64)
    if got is None:
        return TensorVerdict(name, False, f"got None, expected an array {want.shape}")
    try:
        got = np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError):
        return TensorVerdict(
            name,
            False,
            f"got a {type(got).__name__} that is not an array of numbers, "
            f"expected shape {want.shape}",
        )
    if got.shape != want.shape:
        details = []
        if got.shape == want.shape[::-1]:
            details.append("hint: the shape is reversed: a transpose is missing")
        elif got.size == want.size:
            details.append("hint: same number of entries: a reshape or axis mix-up?")
        return TensorVerdict(
            name, False, f"shape {got.shape}, expected {want.shape}", details
        )
    bad = ~np.isfinite(got)
    if bad.any():
        first = np.argwhere(bad)[0]
        return TensorVerdict(
            name,
            False,
            f"{int(bad.sum())} of {got.size} entries are NaN or infinite, the "
            f"first at {_fmt_index(first)}",
        )
    error = np.abs(got - want)
    max_error = float(error.max(initial=0.0))
    wrong = error > atol + rtol * np.abs(want)
    shape = "x".join(str(s) for s in want.shape) or "scalar"
    if not wrong.any():
        return TensorVerdict(
            name, True, f"{shape}, max abs error {max_error:.2e}", [], max_error
        )
    n_wrong = int(wrong.sum())
    summary = f"{shape}, {n_wrong} of {got.size} entries wrong"
    details = []
    order = np.argsort(-(error * wrong), axis=None)[: min(MAX_LISTED, n_wrong)]
    for flat in order:
        at = np.unravel_index(flat, got.shape)
        details.append(
            f"at {_fmt_index(at)}: got {got[at]:.6g}, expected {want[at]:.6g} "
            f"(off by {error[at]:.3g})"
        )
    if n_wrong > len(order):
        details.append(f"... and {n_wrong - len(order)} more")
    details.extend(_hints(got, want, known))
    return TensorVerdict(name, False, summary, details, max_error)

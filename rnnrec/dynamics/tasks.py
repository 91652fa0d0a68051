"""Three tasks that need memory over T steps, each with a known do-nothing baseline.

Every task answers once, after the last input (sequence to one), and says what
a model that remembers nothing scores:

* `AddingProblem` (Hochreiter & Schmidhuber 1997, in the form of Arjovsky et al.
  2016): T random numbers, two of them marked, one in each half; predict their
  sum. Predicting the mean sum, 1, has mean squared error ``2 Var U(0, 1) = 1/6``.
* `CopyTask`: a few random symbols, then T blanks; recall the symbols in order.
  A guess is right with probability ``1 / n_symbols``.
* `SessionTask`: the first click of a session names one of ``n_keys`` intents;
  T distracting clicks follow; the next click is the intent's item. A model that
  forgot the first click can at best pick among the ``n_keys`` targets.

A task's `sample` draws a `TaskBatch` of time-major inputs ``x (T', B, D)`` and
targets ``y``: floats ``(B, 1)`` for the adding problem, class indices
``(B, K)`` for the others, one column per answer (K symbols to copy, one item).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from rnnrec._validation import as_rng, check_dtype, check_positive_int


class TaskBatch(NamedTuple):
    """One batch of a task.

    Attributes
    ----------
    x : numpy.ndarray
        Inputs ``(T', B, D)``, time-major; ``T'`` is the task's `length`.
    y : numpy.ndarray
        Targets: ``(B, 1)`` floats (regression) or ``(B, K)`` int64 class indices
        in ``[0, n_classes)`` (classification).
    """

    x: np.ndarray
    y: np.ndarray


class Task:
    """What every task shares; subclasses define `sample` and the sizes.

    Attributes
    ----------
    name : str
        ``"adding"``, ``"copy"`` or ``"session"``.
    kind : {"regression", "classification"}
        Mean squared error or cross-entropy.
    steps : int
        T, the distance in steps the task asks the model to remember across.
    length : int
        ``T'``, the number of inputs per sequence.
    input_size : int
        D.
    n_answers : int
        K, answers per sequence.
    n_classes : int
        Classes per answer (1 for regression).
    baseline : float
        Error of the best model that remembers nothing: mean squared error
        (regression) or share of answers wrong (classification).
    """

    name = "task"
    kind = "classification"

    def __init__(self, steps, *, dtype=np.float64):
        self.steps = check_positive_int(steps, "steps")
        self.dtype = check_dtype(dtype)

    def __repr__(self):
        return f"{type(self).__name__}(steps={self.steps})"

    def sample(self, batch_size, seed=None):
        """Draw a batch.

        Parameters
        ----------
        batch_size : int
            B.
        seed : None, int or numpy.random.Generator
            Source of randomness.

        Returns
        -------
        TaskBatch
            ``x (T', B, D)`` and ``y``.
        """
        B = check_positive_int(batch_size, "batch_size")
        return self._sample(B, as_rng(seed))

    def _sample(self, B, rng):
        raise NotImplementedError

    def error(self, prediction, y):
        """Return the task's error of a prediction.

        Parameters
        ----------
        prediction : numpy.ndarray
            Regression: ``(B, 1)`` values. Classification: ``(B, K, C)`` scores,
            the largest taken as the answer.
        y : numpy.ndarray
            Targets as `sample` returns them.

        Returns
        -------
        float
            Mean squared error, or the share of answers wrong.
        """
        if self.kind == "regression":
            return float(np.mean((prediction - y) ** 2))
        return float(np.mean(np.argmax(prediction, axis=-1) != y))


class AddingProblem(Task):
    """The adding problem: the sum of the two marked numbers among T.

    Input ``x_t = [u_t, m_t]`` with ``u_t ~ U(0, 1)`` and ``m_t`` 1 at two steps,
    one drawn from the first half ``[0, ceil(T/2))`` and one from the second,
    0 elsewhere. Target ``u_a + u_b`` at the marked steps. With T steps the first
    mark is on average ``3T/4`` steps before the answer.

    Parameters
    ----------
    steps : int
        T >= 2, the sequence length.
    dtype : {np.float64, np.float32}, default np.float64
        Dtype of ``x`` and ``y``.

    Examples
    --------
    >>> task = AddingProblem(10)
    >>> batch = task.sample(4, seed=0)
    >>> batch.x.shape, batch.y.shape, round(task.baseline, 4)
    ((10, 4, 2), (4, 1), 0.1667)
    """

    name = "adding"
    kind = "regression"
    input_size = 2
    n_answers = 1
    n_classes = 1
    baseline = 1 / 6

    def __init__(self, steps, *, dtype=np.float64):
        super().__init__(steps, dtype=dtype)
        if self.steps < 2:
            raise ValueError(f"the adding problem needs steps >= 2, got {steps}")
        self.length = self.steps

    def _sample(self, B, rng):
        T, half = self.steps, (self.steps + 1) // 2
        u = rng.random((T, B))
        first = rng.integers(0, half, size=B)
        second = rng.integers(half, T, size=B)
        marks = np.zeros((T, B))
        rows = np.arange(B)
        marks[first, rows] = 1
        marks[second, rows] = 1
        x = np.stack([u, marks], axis=-1).astype(self.dtype)  # (T, B, 2)
        y = (u[first, rows] + u[second, rows])[:, None].astype(self.dtype)  # (B, 1)
        return TaskBatch(x, y)


class CopyTask(Task):
    """Recall a short sequence of symbols after T blanks.

    Inputs are one-hot over ``n_symbols + 1`` channels, the last one the blank:
    ``n_copy`` random symbols, then T blanks. The targets are the symbols, in
    order; the model answers all of them from its last state.

    Parameters
    ----------
    steps : int
        T, the blanks between the symbols and the answer.
    n_copy : int, default 3
        K, symbols to remember.
    n_symbols : int, default 4
        Alphabet size, >= 2.
    dtype : {np.float64, np.float32}, default np.float64
        Dtype of ``x``.

    Examples
    --------
    >>> batch = CopyTask(5, n_copy=2).sample(3, seed=0)
    >>> batch.x.shape, batch.y.shape
    ((7, 3, 5), (3, 2))
    """

    name = "copy"

    def __init__(self, steps, *, n_copy=3, n_symbols=4, dtype=np.float64):
        super().__init__(steps, dtype=dtype)
        self.n_answers = check_positive_int(n_copy, "n_copy")
        self.n_classes = check_positive_int(n_symbols, "n_symbols")
        if self.n_classes < 2:
            raise ValueError(f"n_symbols must be at least 2, got {n_symbols}")
        self.input_size = self.n_classes + 1
        self.length = self.n_answers + self.steps
        self.baseline = 1 - 1 / self.n_classes

    def _sample(self, B, rng):
        K, S = self.n_answers, self.n_classes
        symbols = rng.integers(0, S, size=(B, K))
        codes = np.full((self.length, B), S)  # blank everywhere ...
        codes[:K] = symbols.T  # ... but for the symbols at the start
        x = np.eye(S + 1, dtype=self.dtype)[codes]  # (T', B, S+1)
        return TaskBatch(x, symbols.astype(np.int64))


class SessionTask(Task):
    """A session whose first click decides the click after T distractions.

    Items are ``0 .. n_items-1``; the first ``n_keys`` are intents. A session
    starts with an intent ``k``, then T clicks drawn uniformly from all items
    (intents included), and its next click is item ``n_keys + k``. Inputs are
    one-hot items; the answer is a score per item.

    Parameters
    ----------
    steps : int
        T, the distracting clicks.
    n_items : int, default 16
        V, must exceed ``2 * n_keys``.
    n_keys : int, default 4
        Intents, >= 2.
    dtype : {np.float64, np.float32}, default np.float64
        Dtype of ``x``.

    Examples
    --------
    >>> batch = SessionTask(6).sample(2, seed=0)
    >>> batch.x.shape, batch.y.shape
    ((7, 2, 16), (2, 1))
    """

    name = "session"
    n_answers = 1

    def __init__(self, steps, *, n_items=16, n_keys=4, dtype=np.float64):
        super().__init__(steps, dtype=dtype)
        self.n_classes = check_positive_int(n_items, "n_items")
        self.n_keys = check_positive_int(n_keys, "n_keys")
        if self.n_keys < 2 or self.n_classes < 2 * self.n_keys:
            raise ValueError(
                "a session task needs n_keys >= 2 and n_items >= 2 * n_keys (the "
                f"intents and their targets), got n_items={n_items}, n_keys={n_keys}"
            )
        self.input_size = self.n_classes
        self.length = 1 + self.steps
        self.baseline = 1 - 1 / self.n_keys

    def _sample(self, B, rng):
        keys = rng.integers(0, self.n_keys, size=B)
        clicks = rng.integers(0, self.n_classes, size=(self.length, B))
        clicks[0] = keys
        x = np.eye(self.n_classes, dtype=self.dtype)[clicks]  # (T', B, V)
        y = (self.n_keys + keys)[:, None].astype(np.int64)  # (B, 1)
        return TaskBatch(x, y)


TASKS = {"adding": AddingProblem, "copy": CopyTask, "session": SessionTask}


def make_task(name, steps, **kwargs):
    """Build a task by name.

    Parameters
    ----------
    name : {"adding", "copy", "session"}
        The task.
    steps : int
        T.
    **kwargs
        Passed to the task's class.

    Returns
    -------
    Task
        The task.
    """
    if name not in TASKS:
        options = ", ".join(repr(n) for n in TASKS)
        raise ValueError(f"task must be one of {options}, got {name!r}")
    return TASKS[name](steps, **kwargs)

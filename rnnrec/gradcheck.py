"""Finite-difference gradient checks that cannot pass by accident.

The checks follow four rules:

1. Every evaluation gets fresh copies of the inputs, so a function that
   ignores its arguments (closing over an array instead) sees no perturbation and
   fails, and a function that mutates its arguments cannot corrupt later ones.
2. The scalar being differentiated is ``sum(G * out)`` with a random upstream
   gradient ``G``, never ``out.sum()``, which would hide errors that cancel.
3. Small tensors are checked entry by entry with central differences; large
   ones along random unit directions ``v``, comparing ``<grad, v>`` with
   ``(f(x + h v) - f(x - h v)) / 2h``.
4. The report names the tensor, the index of the worst entry, the analytic and
   numeric values there, and the relative error.

The relative error of an entry is ``|a - n| / max(|a|, |n|, atol / rtol)``, where
``atol`` is the rounding noise of the central difference,
``8 eps max(|f(x+h)|, |f(x-h)|) / h``, where ``|f|`` may be replaced by the sum of
the absolute values of the terms of ``f`` (return ``(value, magnitude)``): a
gradient smaller than the noise can only be checked to the noise. An entry
passes when the error is at most ``rtol``.

An entry that fails gets a second, more accurate numeric value before it is
judged: Richardson extrapolation ``(4 D(h/2) - D(h)) / 3`` of the central
differences ``D``, whose truncation error is ``O(h^4)`` instead of ``O(h^2)``
(with three times the rounding noise, which the floor accounts for). This
matters for gradient entries far smaller than the rest of their tensor.

At a kink (a relu at zero) within ``h`` of the point, central differences are
wrong. For a smooth function the gap between the forward and the backward slope
is ``h f''`` to third order, so it shrinks exactly tenfold when the step does; a
kink breaks that proportion. An entry that still fails is examined at step
``h/10``: if ``gap(h)`` and ``10 gap(h/10)`` differ by more than a tenth of
``gap(h)`` (and far more than the noise), the entry sits at a kink, and the
analytic value passes if it matches, to ``sqrt(rtol)``, the central or either
one-sided slope at ``h/10`` (at least one of them lies on a smooth side). The
report counts such entries. A smooth function with a wrong gradient never takes
this path.

Checks run in float64 only: in float32 the rounding noise of a difference
quotient (about ``1e-7 |f| / h``) swamps any useful tolerance. A float32 layer is
checked instead against its float64 twin on the same weights
(`compare_with_float64_twin`).
"""

from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass, field

import numpy as np

from rnnrec._validation import as_rng

EPS64 = np.finfo(np.float64).eps


@dataclass
class TensorCheck:
    """The outcome of checking one tensor's gradient.

    Attributes
    ----------
    name : str
        The tensor.
    mode : str
        ``"entries"``, ``"directions"`` or ``"float64 twin"``.
    n_checked : int
        Entries or directions checked.
    max_rel_error : float
        Relative error of the worst entry (see the module docstring).
    index : tuple of int or int
        The worst entry (mode ``"entries"``/``"float64 twin"``) or direction.
    analytic, numeric : float
        The two values at the worst entry (for ``"float64 twin"``: the float32
        and the float64 value).
    rtol : float
        The tolerance.
    kinks : int
        Entries judged at a kink by one-sided differences.
    """

    name: str
    mode: str
    n_checked: int
    max_rel_error: float
    index: object
    analytic: float
    numeric: float
    rtol: float
    kinks: int = 0

    @property
    def passed(self):
        """bool: whether the worst relative error is within ``rtol``."""
        return bool(self.max_rel_error <= self.rtol)


@dataclass
class GradCheckReport:
    """A list of `TensorCheck` with a verdict and a printable table.

    Attributes
    ----------
    checks : list of TensorCheck
        One per tensor.
    label : str
        What was checked (for example ``"lstm numba float64"``).
    """

    checks: list = field(default_factory=list)
    label: str = ""

    @property
    def passed(self):
        """bool: whether every tensor passed."""
        return all(c.passed for c in self.checks)

    def worst(self):
        """Return the check with the largest error relative to its tolerance.

        Returns
        -------
        TensorCheck
            The worst check.
        """
        return max(self.checks, key=lambda c: c.max_rel_error / c.rtol)

    def to_dicts(self):
        """Return the checks as JSON-ready dicts.

        Returns
        -------
        list of dict
            One dict per tensor, with the label and the verdict added.
        """
        rows = []
        for c in self.checks:
            row = asdict(c)
            row["index"] = list(np.atleast_1d(c.index).tolist())
            row.update(label=self.label, passed=c.passed)
            rows.append(row)
        return rows

    def __str__(self):
        lines = [
            f"{'check':<26} {'tensor':<10} {'mode':<12} {'n':>5} "
            f"{'max rel err':>11} {'at':<12} {'analytic':>12} {'numeric':>12}  result"
        ]
        for c in self.checks:
            lines.append(
                f"{self.label:<26} {c.name:<10} {c.mode:<12} {c.n_checked:>5} "
                f"{c.max_rel_error:>11.2e} {str(c.index):<12} {c.analytic:>12.5g} "
                f"{c.numeric:>12.5g}  {'OK' if c.passed else 'NOT OK'}"
            )
        return "\n".join(lines)


def normwise_relative_error(actual, reference):
    """Largest absolute difference, relative to the reference's largest entry.

    ``max |a - r| / max |r|``, the measure used to compare two implementations
    of the same computation (two backends, rnnrec and PyTorch, float32 and
    float64), where entrywise errors of near-zero entries mean nothing.

    Parameters
    ----------
    actual, reference : array_like
        Arrays of the same shape.

    Returns
    -------
    float
        The relative error (0 when both are all zero).
    """
    a = np.asarray(actual, dtype=np.float64)
    r = np.asarray(reference, dtype=np.float64)
    if a.shape != r.shape:
        raise ValueError(f"shapes differ: {a.shape} and {r.shape}")
    scale = np.abs(r).max(initial=0.0)
    diff = np.abs(a - r).max(initial=0.0)
    if scale == 0:
        return float(diff)
    return float(diff / scale)


def _fresh(inputs):
    return {k: v.copy() for k, v in inputs.items()}


def _entry_error(a, n, atol, rtol):
    denominator = max(abs(a), abs(n), atol / rtol)
    if denominator == 0:  # both exactly zero, with f itself zero
        return 0.0
    return abs(a - n) / denominator


def numeric_gradient(f, inputs, name, *, step=1e-5):
    """Central-difference gradient of ``f`` with respect to one input.

    Parameters
    ----------
    f : callable
        ``f(inputs) -> float`` for a dict of float64 arrays.
    inputs : dict of str to numpy.ndarray
        Where to differentiate; never modified.
    name : str
        The input to differentiate with respect to.
    step : float, default 1e-5
        ``h``.

    Returns
    -------
    numpy.ndarray
        ``(f(x + h e_i) - f(x - h e_i)) / 2h`` for every entry ``i``.
    """
    grad = np.empty_like(inputs[name], dtype=np.float64)
    for i in np.ndindex(grad.shape):
        grad[i] = _differences(f, inputs, name, i, step)[0]
    return grad


def _evaluate(f, inputs):
    """Call ``f``; return its value and the magnitude its rounding scales with.

    ``f`` may return a float, or a pair ``(value, magnitude)`` where
    ``magnitude`` is the sum of the absolute values of the terms summed into
    ``value``: when terms cancel, rounding noise follows their size, not the
    size of their sum.
    """
    out = f(inputs)
    if isinstance(out, tuple):
        value, magnitude = (float(v) for v in out)
        return value, max(abs(value), magnitude)
    value = float(out)
    return value, abs(value)


def _differences(f, inputs, name, where, step, f0=None):
    """Return central, forward and backward slopes and the noise level."""
    values, sizes = [], []
    for sign in (1.0, -1.0):
        trial = _fresh(inputs)
        if isinstance(where, tuple):
            trial[name][where] += sign * step
        else:
            trial[name] += sign * step * where
        value, size = _evaluate(f, trial)
        values.append(value)
        sizes.append(size)
    fp, fm = values
    central = (fp - fm) / (2 * step)
    noise = 8 * EPS64 * max(sizes) / step
    if f0 is None:
        return central, None, None, noise
    return central, (fp - f0) / step, (f0 - fm) / step, noise


def _kink_slopes(f, inputs, name, where, step, gap, atol):
    """Return the slopes at step/10 if ``where`` sits at a kink, else None.

    ``gap`` is the forward minus the backward slope at ``step``; for a smooth
    function the gap at ``step / 10`` is ten times smaller, at a kink it is not.
    """
    small = step / 10
    central, fwd, bwd, noise = _differences(
        f, inputs, name, where, small, f0=_f0(f, inputs)
    )
    mismatch = abs(gap - 10 * (fwd - bwd))
    if mismatch > 0.1 * abs(gap) and mismatch > 1000 * noise:
        return central, fwd, bwd
    return None


def _f0(f, inputs):
    return _evaluate(f, _fresh(inputs))[0]


def check_gradients(
    f,
    inputs,
    analytic,
    *,
    step=1e-5,
    rtol=1e-6,
    max_entries=300,
    n_directions=12,
    seed=0,
    label="",
):
    """Compare analytic gradients with central finite differences.

    Parameters
    ----------
    f : callable
        ``f(inputs) -> float`` or ``-> (float, magnitude)`` (see the module
        docstring); called with fresh copies of ``inputs``.
    inputs : dict of str to numpy.ndarray
        Float64 arrays at which to differentiate; never modified.
    analytic : dict of str to numpy.ndarray
        The gradients to check, keyed like (a subset of) ``inputs``.
    step : float, default 1e-5
        Finite-difference step ``h``.
    rtol : float, default 1e-6
        Largest relative error accepted.
    max_entries : int, default 300
        Tensors with more entries are checked along random directions.
    n_directions : int, default 12
        Directions per large tensor.
    seed : int, default 0
        Seed of the random directions.
    label : str
        Name of the check in the report.

    Returns
    -------
    GradCheckReport
        One row per tensor.
    """
    for k, v in inputs.items():
        if not isinstance(v, np.ndarray) or v.dtype != np.float64:
            raise TypeError(
                f"inputs[{k!r}] must be a float64 array: finite differences in "
                f"float32 are dominated by rounding; got {getattr(v, 'dtype', v)!r}"
            )
    rng = as_rng(seed)
    inputs = _fresh(inputs)
    f0 = _f0(f, inputs)
    report = GradCheckReport(label=label)
    for name, grad in analytic.items():
        grad = np.asarray(grad, dtype=np.float64)
        if grad.shape != inputs[name].shape:
            raise ValueError(
                f"analytic[{name!r}] has shape {grad.shape}, the input has "
                f"{inputs[name].shape}"
            )
        if grad.size <= max_entries:
            where_list = list(np.ndindex(grad.shape))
            mode = "entries"
        else:
            where_list = []
            for _ in range(n_directions):
                v = rng.standard_normal(grad.shape)
                where_list.append(v / np.linalg.norm(v))
            mode = "directions"
        worst = (-1.0, None, 0.0, 0.0)
        kinks = 0
        for k, where in enumerate(where_list):
            central, fwd, bwd, atol = _differences(f, inputs, name, where, step, f0)
            a = float(grad[where]) if mode == "entries" else float(np.sum(grad * where))
            err, n = _entry_error(a, central, atol, rtol), central
            if err > rtol:
                half, _, _, atol_half = _differences(f, inputs, name, where, step / 2)
                refined = (4 * half - central) / 3
                atol_refined = (4 * atol_half + atol) / 3
                refined_err = _entry_error(a, refined, atol_refined, rtol)
                if refined_err < err:
                    err, n = refined_err, refined
            if err > rtol:
                slopes = _kink_slopes(f, inputs, name, where, step, fwd - bwd, atol)
                if slopes is not None:
                    local = min(slopes, key=lambda s: abs(a - s))
                    kink_err = _entry_error(a, local, 10 * atol, rtol)
                    if kink_err <= np.sqrt(rtol):
                        # Reported on the rtol scale: passes iff within sqrt(rtol).
                        err, n = kink_err * np.sqrt(rtol), local
                        kinks += 1
            if err > worst[0]:
                worst = (err, where if mode == "entries" else k, a, n)
        report.checks.append(
            TensorCheck(
                name=name,
                mode=mode,
                n_checked=len(where_list),
                max_rel_error=float(worst[0]),
                index=worst[1],
                analytic=worst[2],
                numeric=worst[3],
                rtol=rtol,
                kinks=kinks,
            )
        )
    return report


# -- checking a recurrent layer ----------------------------------------------------


def _random_state(layer, B, rng):
    """Draw a random state of the layer's dtype: ``h``, or ``(h, c)`` for the LSTM."""
    H, dt = layer.hidden_size, layer.dtype
    h = rng.standard_normal((B, H)).astype(dt)
    return (h, rng.standard_normal((B, H)).astype(dt)) if layer.has_cell_state else h


def _layer_problem(layer, T, B, rng, *, with_state, with_reset, with_d_state):
    """Draw random inputs and upstream gradients for one layer check."""
    D, H, dt = layer.input_size, layer.hidden_size, layer.dtype
    x = rng.standard_normal((T, B, D)).astype(dt)
    state = _random_state(layer, B, rng) if with_state else None
    reset = rng.random((T, B)) < 0.3 if with_reset else None
    g_out = rng.standard_normal((T, B, H)).astype(dt)
    g_state = _random_state(layer, B, rng) if with_d_state else None
    return x, state, reset, g_out, g_state


def _state_items(state, suffix="0"):
    """Name the arrays of a state: ``h0`` (and ``c0``), or ``h_T`` for suffix "_T"."""
    if state is None:
        return {}
    if isinstance(state, tuple):
        return {f"h{suffix}": state[0], f"c{suffix}": state[1]}
    return {f"h{suffix}": state}


def _state_from(inputs, layer):
    if "h0" not in inputs:
        return None
    if layer.has_cell_state:
        return (inputs["h0"], inputs["c0"])
    return inputs["h0"]


def _pairs(a, b):
    """Zip two states, each an array, a tuple of arrays or None."""
    if a is None or b is None:
        return []
    if isinstance(a, tuple):
        return list(zip(a, b, strict=True))
    return [(a, b)]


def check_layer(
    layer,
    T=5,
    B=3,
    *,
    with_state=True,
    with_reset=True,
    with_d_state=True,
    seed=0,
    rtol=1e-6,
    **kwargs,
):
    """Check a float64 layer's BPTT against finite differences.

    The function differentiated is ``sum(G * out) + sum(G_T * state_T)`` with
    random ``G`` (and ``G_T`` when ``with_d_state``), with respect to every
    parameter, ``x`` and the initial state. The layer itself is not modified.

    Parameters
    ----------
    layer : RecurrentLayer
        A float64 layer.
    T, B : int
        Steps and batch size of the random problem.
    with_state : bool, default True
        Start from a random initial state (else zeros, which are not checked).
    with_reset : bool, default True
        Draw a random reset mask (30% of entries true).
    with_d_state : bool, default True
        Put a random gradient on the final state.
    seed : int, default 0
        Seed of the random problem and directions.
    rtol : float, default 1e-6
        Largest relative error accepted.
    **kwargs
        Passed to `check_gradients` (``step``, ``max_entries``, ...).

    Returns
    -------
    GradCheckReport
        One row per tensor.
    """
    if layer.dtype != np.float64:
        raise TypeError(
            "check_layer needs a float64 layer; check a float32 layer with "
            "compare_with_float64_twin"
        )
    rng = as_rng(seed)
    x, state, reset, g_out, g_state = _layer_problem(
        layer,
        T,
        B,
        rng,
        with_state=with_state,
        with_reset=with_reset,
        with_d_state=with_d_state,
    )
    twin = copy.deepcopy(layer)

    def loss(inputs):
        twin.params = {k: inputs[k] for k in layer.params}
        out, final, _ = twin.forward(inputs["x"], _state_from(inputs, layer), reset)
        total = np.sum(g_out * out)
        magnitude = np.sum(np.abs(g_out * out))
        for g, s in _pairs(g_state, final):
            total += np.sum(g * s)
            magnitude += np.sum(np.abs(g * s))
        return total, magnitude

    inputs = {"x": x, **_state_items(state), **layer.params}
    twin.params = {k: v.copy() for k, v in layer.params.items()}
    _, _, cache = twin.forward(x, state, reset)
    dx, d_state0, grads = twin.backward(g_out, cache, g_state)
    analytic = {"x": dx, **grads}
    if with_state:
        analytic.update(_state_items(d_state0))
    label = f"{layer.cell} {layer.backend}"
    return check_gradients(
        loss, inputs, analytic, rtol=rtol, seed=rng, label=label, **kwargs
    )


def compare_with_float64_twin(layer, T=5, B=3, *, seed=0, rtol=1e-4):
    """Compare a float32 layer with a float64 copy of itself on the same weights.

    Both run the same random problem (initial state, reset mask, final-state
    gradient); outputs, final state and every gradient are compared with
    `normwise_relative_error`.

    Parameters
    ----------
    layer : RecurrentLayer
        A float32 layer.
    T, B : int
        Steps and batch size of the random problem.
    seed : int, default 0
        Seed of the random problem.
    rtol : float, default 1e-4
        Largest relative error accepted.

    Returns
    -------
    GradCheckReport
        One row per tensor, mode ``"float64 twin"``.
    """
    if layer.dtype != np.float32:
        raise TypeError("compare_with_float64_twin needs a float32 layer")
    rng = as_rng(seed)
    x, state, reset, g_out, g_state = _layer_problem(
        layer, T, B, rng, with_state=True, with_reset=True, with_d_state=True
    )
    twin = copy.deepcopy(layer)
    twin.dtype = np.dtype(np.float64)
    twin.params = {k: v.astype(np.float64) for k, v in layer.params.items()}

    def up(a):
        if isinstance(a, tuple):
            return tuple(s.astype(np.float64) for s in a)
        return a.astype(np.float64)

    results = []
    for run, args in (
        (layer, (x, state, g_out, g_state)),
        (twin, (up(x), up(state), up(g_out), up(g_state))),
    ):
        xx, ss, go, gs = args
        out, final, cache = run.forward(xx, ss, reset)
        dx, d_state0, grads = run.backward(go, cache, gs)
        tensors = {"out": out, "x": dx, **grads}
        tensors.update(_state_items(final, "_T"))
        tensors.update(_state_items(d_state0))
        results.append(tensors)
    report = GradCheckReport(label=f"{layer.cell} {layer.backend} f32")
    for name, low in results[0].items():
        high = results[1][name]
        err = normwise_relative_error(low, high)
        at = np.unravel_index(np.argmax(np.abs(low - high)), low.shape)
        report.checks.append(
            TensorCheck(
                name=name,
                mode="float64 twin",
                n_checked=int(low.size),
                max_rel_error=err,
                index=tuple(int(i) for i in at),
                analytic=float(low[at]),
                numeric=float(high[at]),
                rtol=rtol,
            )
        )
    return report


def reports_to_json(reports):
    """Serialise reports as a JSON string.

    Parameters
    ----------
    reports : list of GradCheckReport
        The reports.

    Returns
    -------
    str
        ``{"passed": bool, "checks": [...]}``.
    """
    rows = [row for r in reports for row in r.to_dicts()]
    return json.dumps(
        {"passed": all(r.passed for r in reports), "checks": rows}, indent=2
    )

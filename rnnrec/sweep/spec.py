"""Reading a sweep SPEC (TOML, or YAML with PyYAML) and expanding it into trials.

A SPEC has up to five tables::

    [sweep]
    task = "clipping"        # recommender, clipping or tasks
    metric = "final_loss"    # optional: the task's main metric by default
    goal = "min"             # optional: the metric's own direction by default
    seeds = [0, 1, 2]        # every point of the search runs once per seed

    [fixed]                  # settings every trial shares
    steps = 20

    [grid]                   # every combination of these values ...
    clip = ["none", 0.5, 1.0]

    [random]                 # ... or random search, instead of [grid]
    trials = 20              # points drawn (one drawn twice runs once)
    seed = 0                 # seed of the draws
    learning_rate = { low = 0.001, high = 0.3, log = true }
    bptt = { low = 1, high = 4, integer = true }
    loss = { choices = ["bpr-max", "cross-entropy"] }

    [data]                   # the recommender's data
    synthetic = { n_items = 100, n_train_sessions = 2000 }
    # or: train = "train.txt", test = "test.txt", format = "sessions"
    cutoffs = [20]
    ship = false             # true: read here, send to each worker once

Random ranges draw uniformly between ``low`` and ``high`` (both included for
``integer = true``), log-uniformly with ``log = true``.

Settings are the arguments of the task (see `rnnrec.sweep.tasks`); ``"none"``
stands for None where a setting allows it (``clip``). Relative data paths are
read from the SPEC's folder; the workers read them there unless ``ship`` is
true (see `rnnrec.sweep.tasks`). Every problem raises ValueError or TypeError with
one line that names the table, the key, what it holds and what is allowed.
"""

from __future__ import annotations

import hashlib
import inspect
import itertools
import json
import math
import numbers
import os
from dataclasses import dataclass

import numpy as np

from rnnrec.sweep.tasks import NONE_SETTINGS, TASK_NAMES, check_settings, task_info

TABLES = ("sweep", "fixed", "grid", "random", "data")
SWEEP_KEYS = ("task", "metric", "goal", "seeds")
DATA_KEYS = ("synthetic", "train", "test", "format", "test_days", "cutoffs", "ship")
RANGE_KEYS = ("low", "high", "log", "integer", "choices")


@dataclass(frozen=True)
class Trial:
    """One point of the search with one seed.

    Attributes
    ----------
    trial : str
        Its id: a hash of the task, settings, seed and data, the same on every
        run of the same SPEC.
    params : dict
        The searched settings' values.
    settings : dict
        Fixed and searched settings together: what the task receives.
    seed : int
        The seed.
    """

    trial: str
    params: dict
    settings: dict
    seed: int


@dataclass(frozen=True)
class SweepSpec:
    """A checked SPEC.

    Attributes
    ----------
    task : str
        The task's name.
    metric : str
        The metric the best-trials table sorts by.
    goal : {"min", "max"}
        Which way the metric is better.
    seeds : tuple of int
        Seeds every point runs with.
    fixed : dict
        Settings shared by all trials.
    searched : tuple of str
        Names of the searched settings, in the SPEC's order.
    points : tuple of dict
        The points of the search (values of the searched settings).
    log_scale : tuple of str
        Searched settings drawn log-uniformly (plotted on a log axis).
    data : dict
        The ``[data]`` table, paths made absolute.
    metrics : tuple of str
        Every metric the task reports.
    source : str
        The SPEC's path.
    """

    task: str
    metric: str
    goal: str
    seeds: tuple
    fixed: dict
    searched: tuple
    points: tuple
    log_scale: tuple
    data: dict
    metrics: tuple
    source: str

    def trials(self):
        """Return every trial: each point with each seed, points first.

        Returns
        -------
        list of Trial
            In the order they are submitted.
        """
        out = []
        # How the data travel is not part of a trial: shipping them or not
        # gives the same trial, and a resumed sweep may switch.
        data = {k: v for k, v in self.data.items() if k != "ship"}
        for params in self.points:
            settings = {**self.fixed, **params}
            for seed in self.seeds:
                key = json.dumps([self.task, settings, seed, data], sort_keys=True)
                digest = hashlib.sha1(key.encode("utf-8")).hexdigest()[:12]
                out.append(Trial(digest, dict(params), settings, seed))
        return out


def read_spec_file(path):
    """Parse a SPEC file (``.toml``, or ``.yaml``/``.yml`` with PyYAML) into a dict.

    Parameters
    ----------
    path : str or os.PathLike
        The file.

    Returns
    -------
    dict
        Its tables.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"SPEC {path}: no such file")
    ext = os.path.splitext(path)[1].lower()
    if ext == ".toml":
        try:
            import tomllib
        except ImportError:  # Python 3.10
            try:
                import tomli as tomllib
            except ImportError:
                raise ImportError(
                    f"SPEC {path}: reading TOML on Python 3.10 needs tomli "
                    "(pip install tomli)"
                ) from None
        with open(path, "rb") as f:
            try:
                return tomllib.load(f)
            except tomllib.TOMLDecodeError as err:
                raise ValueError(f"SPEC {path}: not valid TOML: {err}") from None
    if ext in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise ImportError(
                f"SPEC {path}: reading YAML needs PyYAML (pip install pyyaml), "
                "or write the SPEC as TOML"
            ) from None
        with open(path, encoding="utf-8") as f:
            try:
                loaded = yaml.safe_load(f)
            except yaml.YAMLError as err:
                message = str(err).replace("\n", " ")
                raise ValueError(f"SPEC {path}: not valid YAML: {message}") from None
        if not isinstance(loaded, dict):
            raise ValueError(f"SPEC {path}: must hold a mapping of tables")
        return loaded
    raise ValueError(f"SPEC {path}: the name must end in .toml, .yaml or .yml")


def load_spec(path):
    """Read and check a SPEC file.

    Parameters
    ----------
    path : str or os.PathLike
        The file.

    Returns
    -------
    SweepSpec
        The checked SPEC.
    """
    return parse_spec(read_spec_file(path), source=os.fspath(path))


def _table(raw, name, source):
    value = raw.get(name, {})
    if not isinstance(value, dict):
        raise ValueError(f"SPEC {source}: [{name}] must be a table, got {value!r}")
    return dict(value)


def _check_keys(table, allowed, where):
    unknown = [k for k in table if k not in allowed]
    if unknown:
        raise ValueError(
            f"{where}: unknown key {unknown[0]!r}; allowed: {', '.join(allowed)}"
        )


def _none(name, value):
    """Read ``"none"`` as None for the settings that allow it."""
    if name in NONE_SETTINGS and isinstance(value, str) and value.lower() == "none":
        return None
    return value


def parse_spec(raw, source="SPEC"):
    """Check a parsed SPEC and expand its search.

    Parameters
    ----------
    raw : dict
        The SPEC's tables (see the module docstring).
    source : str, default "SPEC"
        Its path: relative data paths are taken from its folder, and messages
        name it.

    Returns
    -------
    SweepSpec
        The checked SPEC.
    """
    where = f"SPEC {source}"
    _check_keys(raw, TABLES, where)
    sweep = _table(raw, "sweep", source)
    _check_keys(sweep, SWEEP_KEYS, f"{where} [sweep]")
    if "task" not in sweep:
        raise ValueError(
            f"{where}: [sweep] needs task = one of {', '.join(TASK_NAMES)}"
        )
    task = sweep["task"]
    if task not in TASK_NAMES:
        raise ValueError(
            f"{where}: [sweep] task must be one of {', '.join(TASK_NAMES)}, "
            f"got {task!r}"
        )
    data = _check_data(_table(raw, "data", source), task, source)
    info = task_info(task, data.get("cutoffs", (20,)))

    metric = sweep.get("metric", info.default_metric)
    if metric not in info.metrics:
        raise ValueError(
            f"{where}: [sweep] metric must be one of {', '.join(info.metrics)} "
            f"for task {task}, got {metric!r}"
        )
    goal = sweep.get("goal", info.goals[metric])
    if goal not in ("min", "max"):
        raise ValueError(f"{where}: [sweep] goal must be 'min' or 'max', got {goal!r}")
    seeds = _check_seeds(sweep.get("seeds", [0]), where)

    fixed = _table(raw, "fixed", source)
    grid = _table(raw, "grid", source)
    random = _table(raw, "random", source)
    if grid and random:
        raise ValueError(f"{where}: give [grid] or [random], not both")
    for name, table in (("fixed", fixed), ("grid", grid)):
        _check_names(table, info, f"{where} [{name}]")
    fixed = {k: _none(k, v) for k, v in fixed.items()}
    if random:
        searched, points, log_scale = _random_points(random, info, f"{where} [random]")
    else:
        searched, points = _grid_points(grid, f"{where} [grid]")
        log_scale = ()
    twice = [name for name in searched if name in fixed]
    if twice:
        raise ValueError(f"{where}: {twice[0]!r} is both fixed and searched")

    spec = SweepSpec(
        task=task,
        metric=metric,
        goal=goal,
        seeds=seeds,
        fixed=fixed,
        searched=tuple(searched),
        points=tuple(points),
        log_scale=tuple(log_scale),
        data=data,
        metrics=info.metrics,
        source=source,
    )
    for trial in spec.trials()[:: len(seeds)]:
        try:
            check_settings(task, trial.settings)
        except (ValueError, TypeError) as err:
            raise type(err)(
                f"{where}: trial {trial.params or '(fixed)'}: {err}"
            ) from None
    return spec


def _check_seeds(seeds, where):
    if isinstance(seeds, numbers.Integral) and not isinstance(seeds, bool):
        seeds = [seeds]
    if not isinstance(seeds, list) or not seeds:
        raise ValueError(f"{where}: [sweep] seeds must be a list of integers >= 0")
    for seed in seeds:
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
            raise ValueError(
                f"{where}: [sweep] seeds must be integers >= 0, got {seed!r}"
            )
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"{where}: [sweep] seeds repeat a seed: {seeds}")
    return tuple(int(s) for s in seeds)


def _check_names(table, info, where):
    for name in table:
        if name == "seed":
            raise ValueError(f"{where}: 'seed' is not a setting; use [sweep] seeds")
        if name not in info.settings:
            raise ValueError(
                f"{where}: unknown setting {name!r} for task {info.name}; "
                f"allowed: {', '.join(info.settings)}"
            )


def _check_data(data, task, source):
    where = f"SPEC {source} [data]"
    if task != "recommender":
        if data:
            raise ValueError(f"{where}: only the recommender task reads data")
        return {}
    _check_keys(data, DATA_KEYS, where)
    if "train" in data and "synthetic" in data:
        raise ValueError(f"{where}: give train (files) or synthetic, not both")
    if "train" not in data:
        for name in ("test", "format", "test_days"):
            if name in data:
                raise ValueError(f"{where}: {name} needs train = PATH")
    synthetic = data.get("synthetic", {})
    if not isinstance(synthetic, dict):
        raise ValueError(f"{where}: synthetic must be a table of make_synthetic args")
    from rnnrec.data import make_synthetic

    allowed = tuple(inspect.signature(make_synthetic).parameters)
    _check_keys(synthetic, allowed, f"{where} synthetic")
    folder = os.path.dirname(os.path.abspath(source))
    for name in ("train", "test"):
        if name in data:
            if not isinstance(data[name], str):
                raise ValueError(f"{where}: {name} must be a path, got {data[name]!r}")
            data[name] = os.path.normpath(os.path.join(folder, data[name]))
    formats = ("sessions", "events", "diginetica")
    if data.get("format", "sessions") not in formats:
        raise ValueError(
            f"{where}: format must be one of {', '.join(formats)}, "
            f"got {data['format']!r}"
        )
    cutoffs = data.get("cutoffs", [20])
    if (
        not isinstance(cutoffs, list)
        or not cutoffs
        or any(isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in cutoffs)
    ):
        raise ValueError(
            f"{where}: cutoffs must be a list of positive integers, got {cutoffs!r}"
        )
    data["cutoffs"] = [int(k) for k in cutoffs]
    if not isinstance(data.get("ship", False), bool):
        raise ValueError(f"{where}: ship must be true or false, got {data['ship']!r}")
    return data


def _grid_points(grid, where):
    names = list(grid)
    values = []
    for name in names:
        options = grid[name]
        if not isinstance(options, list) or not options:
            raise ValueError(
                f"{where}: {name} must be a non-empty list of values, got {options!r}"
            )
        seen = [json.dumps(v, sort_keys=True) for v in options]
        if len(set(seen)) != len(seen):
            raise ValueError(f"{where}: {name} repeats a value: {options!r}")
        values.append([_none(name, v) for v in options])
    points = [
        dict(zip(names, combo, strict=True)) for combo in itertools.product(*values)
    ]
    return names, points


def _random_points(random, info, where):
    trials = random.pop("trials", None)
    seed = random.pop("seed", 0)
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise ValueError(f"{where}: trials must be a positive integer, got {trials!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"{where}: seed must be an integer >= 0, got {seed!r}")
    if not random:
        raise ValueError(f"{where}: name at least one setting and its range")
    _check_names(random, info, where)
    draws = {name: _range(name, r, where) for name, r in random.items()}
    rng = np.random.default_rng(seed)
    points, seen = [], set()
    for _ in range(trials):
        point = {name: draw(rng) for name, draw in draws.items()}
        key = json.dumps(point, sort_keys=True)
        if key not in seen:  # a point drawn twice (from choices) runs once
            seen.add(key)
            points.append(point)
    log_scale = [name for name, r in random.items() if r.get("log")]
    return list(random), points, log_scale


def _range(name, spec, where):
    """Return ``draw(rng)`` for one setting's range, after checking it."""
    if not isinstance(spec, dict):
        raise ValueError(
            f"{where}: {name} must be a table such as {{ low = 0.01, high = 0.1 }} "
            f"or {{ choices = [...] }}, got {spec!r}"
        )
    _check_keys(spec, RANGE_KEYS, f"{where} {name}")
    if "choices" in spec:
        choices = spec["choices"]
        if len(spec) > 1:
            raise ValueError(f"{where}: {name}: choices takes no low, high or log")
        if not isinstance(choices, list) or not choices:
            raise ValueError(f"{where}: {name}: choices must be a non-empty list")
        choices = [_none(name, c) for c in choices]
        return lambda rng: choices[int(rng.integers(len(choices)))]
    low, high = spec.get("low"), spec.get("high")
    for label, value in (("low", low), ("high", high)):
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
        ):
            raise ValueError(
                f"{where}: {name}: {label} must be a finite number, got {value!r}"
            )
    if not low < high:
        raise ValueError(f"{where}: {name}: low must be below high, got {low}, {high}")
    log, integer = bool(spec.get("log", False)), bool(spec.get("integer", False))
    if log and low <= 0:
        raise ValueError(f"{where}: {name}: a log range needs low > 0, got {low}")
    if integer:
        if not (float(low).is_integer() and float(high).is_integer()):
            raise ValueError(f"{where}: {name}: integer ranges need integer bounds")
        if log:
            raise ValueError(f"{where}: {name}: give log or integer, not both")
        return lambda rng: int(rng.integers(int(low), int(high) + 1))
    if log:
        a, b = math.log(low), math.log(high)
        return lambda rng: _round(math.exp(rng.uniform(a, b)))
    return lambda rng: _round(rng.uniform(low, high))


def _round(value):
    """Six significant digits: readable in the table, exact in the results file."""
    return float(f"{value:.6g}")

"""The results of a sweep: one CSV row per finished trial, the best points, a plot.

``trials.csv`` has the columns::

    trial, status, seed, <settings...>, <metrics...>, seconds, worker, error

``status`` is "ok" or "failed" (then ``error`` says why and the metrics are
empty). A row is appended, flushed and synced as each trial finishes, so an
interrupted sweep loses at most the trials still running; a row cut short by a
crash is dropped when the file is opened again. Settings that are not numbers
or strings (``layers = [100]``) are written as JSON. A rerun appends after the
rows already there; the latest row of a trial is the one that counts.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os

import numpy as np

from rnnrec.io import atomic_write, atomic_write_text

LEAD = ("trial", "status", "seed")
TAIL = ("seconds", "worker", "error")
TEXT = ("trial", "status", "worker", "error")  # never read as numbers ("12e34")


def columns_for(spec):
    """Return the columns of a SPEC's results file.

    Parameters
    ----------
    spec : SweepSpec
        The SPEC.

    Returns
    -------
    list of str
        ``trial, status, seed``, the searched then the fixed settings, the
        metrics, ``seconds, worker, error``.
    """
    return [*LEAD, *spec.searched, *spec.fixed, *spec.metrics, *TAIL]


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (bool, int, str)):
        return str(value)
    return json.dumps(value)


def number(value):
    """Write a metric for a table: 4 decimals, or 4 digits and an exponent.

    Parameters
    ----------
    value : float
        The metric.

    Returns
    -------
    str
        ``"0.1234"``, ``"1.235e+08"``, ``"inf"`` or ``"nan"``.
    """
    if math.isfinite(value) and (value == 0 or 1e-3 <= abs(value) < 1e5):
        return f"{value:.4f}"
    return f"{value:.4g}" if math.isfinite(value) else str(value)


def _label(value):
    """Show a setting's value in tables and on axes, None as "none"."""
    return "none" if value is None else _cell(value)


def _value(text):
    """Read a cell back: a number if it is one, else the text."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


class ResultsFile:
    """The append-only CSV table of a sweep's trials.

    Parameters
    ----------
    path : str or os.PathLike
        The file; created with its header if missing.
    columns : list of str
        Its columns. An existing file must have the same header: a SPEC whose
        settings or metrics changed writes to another folder.
    """

    def __init__(self, path, columns):
        self.path = os.fspath(path)
        self.columns = list(columns)
        if not os.path.exists(self.path):
            atomic_write_text(self.path, ",".join(self.columns) + "\n")
            return
        with open(self.path, encoding="utf-8", newline="") as f:
            text = f.read()
        header = next(csv.reader([text.split("\n", 1)[0]]), [])
        if header != self.columns:
            raise ValueError(
                f"{self.path} holds the results of another SPEC (its columns are "
                f"{', '.join(header)}); give another --out"
            )
        if not text.endswith("\n"):  # a row cut short by a crash
            atomic_write_text(self.path, text[: text.rfind("\n") + 1])

    def rows(self):
        """Return every row, numbers parsed, the latest row of each trial only.

        Returns
        -------
        list of dict
            In the order the trials first finished.
        """
        with open(self.path, encoding="utf-8", newline="") as f:
            latest = {}
            for row in csv.DictReader(f):
                latest[row["trial"]] = {
                    k: v if k in TEXT else _value(v) for k, v in row.items()
                }
        return list(latest.values())

    def finished(self):
        """Return the ids of the trials that finished with status "ok".

        Returns
        -------
        set of str
            Trial ids.
        """
        return {row["trial"] for row in self.rows() if row["status"] == "ok"}

    def append(self, row):
        """Append one row and force it to disk.

        Parameters
        ----------
        row : dict
            Values by column; missing columns are left empty.
        """
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow([_cell(row.get(name)) for name in self.columns])
        with open(self.path, "a", encoding="utf-8", newline="") as f:
            f.write(buffer.getvalue())
            f.flush()
            os.fsync(f.fileno())


# -- the best points ---------------------------------------------------------------


def summarize(spec, rows):
    """Average the metrics over the seeds of every point, best first.

    Parameters
    ----------
    spec : SweepSpec
        The SPEC.
    rows : list of dict
        From `ResultsFile.rows`.

    Returns
    -------
    list of dict
        Per point of this SPEC: its searched values, the mean of every metric
        over the seeds that finished (by the metric's name), ``std`` (the
        spread of the optimised metric), ``ok`` and ``failed`` (counts of
        seeds). Sorted best first by the optimised metric; points without a
        finished seed last.
    """
    by_id = {row["trial"]: row for row in rows}
    points = {}
    for trial in spec.trials():  # the SPEC's order, not the finishing order:
        row = by_id.get(trial.trial)  # the means are summed in the same order
        if row is None:
            continue
        key = json.dumps(trial.params, sort_keys=True)
        entry = points.setdefault(key, {"params": trial.params, "done": [], "n": 0})
        entry["n"] += 1
        if row["status"] == "ok":
            entry["done"].append([float(row[m]) for m in spec.metrics])
    out = []
    for entry in points.values():
        done = np.asarray(entry["done"], dtype=float).reshape(-1, len(spec.metrics))
        with np.errstate(invalid="ignore", over="ignore"):  # huge or inf losses
            means = done.mean(axis=0) if len(done) else np.full(done.shape[1], np.nan)
            target = done[:, spec.metrics.index(spec.metric)]
            std = float(target.std()) if len(target) > 1 else 0.0
        out.append(
            {
                **entry["params"],
                **{m: float(v) for m, v in zip(spec.metrics, means, strict=True)},
                "std": std if math.isfinite(std) else math.nan,
                "ok": len(done),
                "failed": entry["n"] - len(done),
            }
        )
    sign = 1.0 if spec.goal == "min" else -1.0
    out.sort(key=lambda r: (math.isnan(r[spec.metric]), sign * r[spec.metric]))
    return out


def format_best(spec, summary, top=10):
    """Return the best-points table as text.

    Parameters
    ----------
    spec : SweepSpec
        The SPEC.
    summary : list of dict
        From `summarize`.
    top : int, default 10
        Rows shown.

    Returns
    -------
    str
        One line per point: rank, searched values, the mean and spread over
        the seeds of the optimised metric, the means of the others, and the
        seeds finished and failed.
    """
    names = list(spec.searched)
    others = [m for m in spec.metrics if m != spec.metric]
    width = {n: max([len(n), *(len(_label(r[n])) for r in summary)]) for n in names}
    first = f"{spec.metric} ({spec.goal})"
    wide = max(len(first), 10) + 2
    head = f"{'rank':>4}  " + "".join(f"{n:>{width[n]}}  " for n in names)
    head += f"{first:>{wide}}{'std':>10}" + "".join(f"{m:>15}" for m in others)
    lines = [head + f"{'seeds':>7}{'failed':>8}"]
    for rank, row in enumerate(summary[:top], start=1):
        text = f"{rank:>4}  " + "".join(
            f"{_label(row[n]):>{width[n]}}  " for n in names
        )
        text += f"{number(row[spec.metric]):>{wide}}{number(row['std']):>10}"
        text += "".join(f"{number(row[m]):>15}" for m in others)
        lines.append(text + f"{row['ok']:>7}{row['failed']:>8}")
    return "\n".join(lines)


def write_best(path, spec, summary):
    """Write `summarize`'s rows as CSV, best first, atomically.

    Parameters
    ----------
    path : str or os.PathLike
        Destination.
    spec : SweepSpec
        The SPEC.
    summary : list of dict
        From `summarize`.
    """
    names = [*spec.searched, *spec.metrics, "std", "ok", "failed"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["rank", *names])
    for rank, row in enumerate(summary, start=1):
        writer.writerow([rank, *(_label(row[n]) for n in names)])
    atomic_write_text(path, buffer.getvalue())


# -- the plot ----------------------------------------------------------------------


def plot_metric(spec, rows, path):
    """Draw the metric against each searched setting, one panel per setting.

    Every finished trial is a dot; where values repeat (a grid, choices or
    several seeds) a line joins the means at each value.
    Settings that are not numbers are placed at equal spacing and labelled;
    log-uniform settings get a log axis, and so does a positive metric spanning
    more than a factor 100; infinite metrics (diverged runs) are left out.

    Parameters
    ----------
    spec : SweepSpec
        The SPEC; it must search at least one setting.
    rows : list of dict
        From `ResultsFile.rows`.
    path : str or os.PathLike
        The PNG file, written atomically.
    """
    from matplotlib.figure import Figure

    wanted = {t.trial: t for t in spec.trials()}
    done = [
        (wanted[r["trial"]].params, float(r[spec.metric]))
        for r in rows
        if r["trial"] in wanted and r["status"] == "ok"
    ]
    n = len(spec.searched)
    fig = Figure(figsize=(4.2 * n, 3.6), layout="constrained")
    axes = fig.subplots(1, n, squeeze=False)[0]
    seeds = ", ".join(str(seed) for seed in spec.seeds)
    fig.suptitle(f"{spec.task}: {spec.metric} ({spec.goal}), seeds {seeds}")
    for ax, name in zip(axes, spec.searched, strict=True):
        values = [params[name] for params, _ in done]
        numeric = all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in values
        )
        labels = sorted({_label(v) for v in values}, key=_order(values))
        xs = [v if numeric else labels.index(_label(v)) for v in values]
        ys = [y for _, y in done]
        keep = [i for i, y in enumerate(ys) if math.isfinite(y)]
        ax.plot([xs[i] for i in keep], [ys[i] for i in keep], "o", alpha=0.5)
        means = []
        for x in sorted(set(xs)):
            group = [ys[i] for i in keep if xs[i] == x]
            if group:
                means.append((x, float(np.mean(group))))
        if means and len(means) < len(keep):  # values repeat: a grid or choices
            ax.plot(*zip(*means, strict=True), "-", color="tab:gray")
        if not numeric:
            ax.set_xticks(range(len(labels)), labels)
        elif name in spec.log_scale:
            ax.set_xscale("log")
        shown = [ys[i] for i in keep]
        if shown and min(shown) > 0 and max(shown) > 100 * min(shown):
            ax.set_yscale("log")  # exploding losses beside small ones
        ax.set_xlabel(name)
        ax.set_ylabel(spec.metric)
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=110))


def _order(values):
    """Sort key for a setting's labels: the order the values first appear."""
    first = {}
    for v in values:
        first.setdefault(_label(v), len(first))
    return first.__getitem__

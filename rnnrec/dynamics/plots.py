"""The studies' figures, drawn with matplotlib (``pip install rnnrec[plot]``).

matplotlib is optional: `matplotlib_available` says whether it is installed, and
the command line writes its CSV files either way. The figures use matplotlib's
object interface (`matplotlib.figure.Figure`), so drawing them changes no global
state (no pyplot, no backend switch) and works without a display.
"""

from __future__ import annotations

import importlib.util

import numpy as np

from rnnrec.io import atomic_write

CELL_COLORS = {"rnn": "tab:red", "lstm": "tab:blue", "gru": "tab:green"}
LINE_STYLES = ("-", "--", ":", "-.")
PLOT_HINT = "install matplotlib for the figures: pip install rnnrec[plot]"


def matplotlib_available():
    """Return whether matplotlib can be imported.

    Returns
    -------
    bool
        True if it is installed.
    """
    return importlib.util.find_spec("matplotlib") is not None


def _panels(n, title):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.2 * n, 3.6), layout="constrained")
    axes = fig.subplots(1, n, squeeze=False)[0]
    fig.suptitle(title)
    return fig, axes


def _save(fig, path):
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=120))


def _positive(values):
    """Values for a log axis: zeros (underflow) and inf (divergence) become gaps."""
    values = np.asarray(values, dtype=float)
    return np.where((values > 0) & np.isfinite(values), values, np.nan)


def plot_gradient_flow(rows, path):
    """Draw ``||dL/dh_t||`` against the distance ``T - t``, log scale.

    One panel per sequence length T; one line per cell (colour) and spectral
    radius (line style).

    Parameters
    ----------
    rows : list of dict
        From `rnnrec.dynamics.studies.gradient_flow_study`.
    path : str or os.PathLike
        The PNG file to write.
    """
    steps = sorted({r["steps"] for r in rows})
    radii = sorted({r["radius"] for r in rows})
    fig, axes = _panels(len(steps), "Gradient flow: loss on the last step")
    for ax, T in zip(axes, steps, strict=True):
        for cell in dict.fromkeys(r["cell"] for r in rows):
            for k, radius in enumerate(radii):
                line = [
                    r
                    for r in rows
                    if r["steps"] == T and r["cell"] == cell and r["radius"] == radius
                ]
                if not line:
                    continue
                line.sort(key=lambda r: r["distance"])
                ax.plot(
                    [r["distance"] for r in line],
                    _positive([r["grad_norm"] for r in line]),
                    color=CELL_COLORS.get(cell),
                    linestyle=LINE_STYLES[k % len(LINE_STYLES)],
                    label=f"{cell}, radius {radius:g}",
                )
        ax.set_yscale("log")
        ax.set_title(f"T = {T}")
        ax.set_xlabel("distance T - t (steps)")
        ax.set_ylabel("||dL/dh_t|| (median over rows)")
        ax.grid(True, which="major", alpha=0.3)
    axes[-1].legend(fontsize=7)
    _save(fig, path)


def plot_clipping(runs, path):
    """Draw each run's training loss and pre-clip gradient norm per update.

    Parameters
    ----------
    runs : list of (float or None, TrainingLog)
        From `rnnrec.dynamics.studies.clipping_study`.
    path : str or os.PathLike
        The PNG file to write.
    """
    from rnnrec.dynamics.studies import clip_label

    title = "Gradient clipping (dotted: thresholds; dashed: loss no longer finite)"
    fig, (loss_ax, norm_ax) = _panels(2, title)
    for k, (clip, log) in enumerate(runs):
        label = f"clip {clip_label(clip)}"
        color = f"C{k}"
        updates = np.arange(1, len(log.loss) + 1)
        loss_ax.plot(updates, _positive(log.loss), color=color, lw=0.8, label=label)
        norm_ax.plot(updates, _positive(log.grad_norm), color=color, lw=0.6)
        if clip is not None:
            norm_ax.axhline(clip, color=color, linestyle=":", lw=1)
        if log.diverged_at is not None:
            loss_ax.axvline(log.diverged_at + 1, color=color, linestyle="--", lw=1)
    # A diverging run climbs to 1e300: cap the axes where the other runs live,
    # and let the diverging line leave the top of the figure.
    losses = np.concatenate([_positive(log.loss) for _, log in runs])
    first = _positive([log.loss[0] for _, log in runs])
    if np.isfinite(first).any():
        loss_ax.set_ylim(0.5 * np.nanmin(losses), 100 * np.nanmax(first))
    kept = [log.max_grad_norm for _, log in runs if log.diverged_at is None]
    if kept:
        norms = np.concatenate([_positive(log.grad_norm) for _, log in runs])
        norm_ax.set_ylim(0.5 * np.nanmin(norms), 100 * max(kept))
    loss_ax.set_yscale("log")
    loss_ax.set_xlabel("update")
    loss_ax.set_ylabel("training loss")
    loss_ax.legend(fontsize=8)
    norm_ax.set_yscale("log")
    norm_ax.set_xlabel("update")
    norm_ax.set_ylabel("gradient norm before clipping")
    for ax in (loss_ax, norm_ax):
        ax.grid(True, alpha=0.3)
    _save(fig, path)


def plot_tasks(rows, path):
    """Draw the held-out error against T, one panel per task, one line per cell.

    Parameters
    ----------
    rows : list of dict
        From `rnnrec.dynamics.studies.tasks_study`.
    path : str or os.PathLike
        The PNG file to write.
    """
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    fig, axes = _panels(len(tasks), "Which cell remembers across T steps")
    for ax, name in zip(axes, tasks, strict=True):
        mine = [r for r in rows if r["task"] == name]
        for cell in dict.fromkeys(r["cell"] for r in mine):
            line = sorted(
                (r for r in mine if r["cell"] == cell), key=lambda r: r["steps"]
            )
            ax.plot(
                [r["steps"] for r in line],
                [r["error"] for r in line],
                marker="o",
                color=CELL_COLORS.get(cell),
                label=cell,
            )
        ax.axhline(
            mine[0]["baseline"], color="grey", linestyle="--", lw=1, label="no memory"
        )
        ax.set_title(name)
        ax.set_xlabel("T (steps to remember across)")
        ax.set_ylabel("MSE" if name == "adding" else "share of answers wrong")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    _save(fig, path)

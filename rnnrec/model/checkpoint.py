"""Checkpoints: what `SessionRecommender.fit` needs to carry on where it stopped.

A run that resumes from a checkpoint must do exactly what the uninterrupted run
would have done, so a checkpoint holds every piece of state that training reads,
not only the parameters. It is one ``.npz`` file, read without pickle::

    meta              JSON: format version, kind "checkpoint", the configuration,
                      the position in training (`TrainingRun`), the history, the
                      state of the random generator and a fingerprint of the
                      training data
    item_ids          (V,)       the items' own ids
    param/NAME        every trainable array, as `SessionRecommender.save` writes
    optim/NAME/KEY    the optimizer's state arrays (sums of squares, momentum)
    carry/L/h, .../c  the recurrent state carried into the next block, layer L
    sampler/unused    (n,) int64 negatives drawn but not yet handed out

The random generator drives initialisation, sampling and dropout; the
negative sampler draws from it a buffer at a time, so the drawn but unused part
of the buffer is stored too, and the next buffer is drawn at the same moment as
in the uninterrupted run. The session-parallel blocks are not stored: they are
a fixed function of the training data, and a resumed epoch skips the blocks
already trained.

Because the file also holds the ``meta`` and ``param/`` entries of a saved
model, `SessionRecommender.load` reads a checkpoint as a model.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import zipfile
from typing import NamedTuple

import numpy as np

from rnnrec.io import atomic_write
from rnnrec.model.saving import FORMAT_VERSION, config_from_json, model_arrays

KIND = "checkpoint"

# Settings that may differ between the run that wrote a checkpoint and the run
# that resumes from it. Changing the learning rate or the clipping threshold
# continues the same run with new settings (then it is no longer the
# uninterrupted run); the other settings fix the arrays and the random stream.
RESUMABLE_CHANGES = ("n_epochs", "verbose", "learning_rate", "clip_grad_norm")


@dataclasses.dataclass
class TrainingRun:
    """Where training stands, and the running sums of the current epoch.

    Attributes
    ----------
    epochs_done : int
        Epochs finished.
    steps_done : int
        Blocks of the next epoch already trained (0 at an epoch's start).
    total_steps : int
        Blocks trained since the run began, over all epochs.
    loss_sum : float
        Sum of the current epoch's block losses times ``batch_size``.
    n_events : int
        Predictions trained on in the current epoch.
    seconds : float
        Time spent on the current epoch so far.
    max_grad_norm : float
        Largest global gradient norm seen (before clipping).
    max_grad_epoch, max_grad_step : int
        Where it was seen (0 before the first step).
    """

    epochs_done: int = 0
    steps_done: int = 0
    total_steps: int = 0
    loss_sum: float = 0.0
    n_events: int = 0
    seconds: float = 0.0
    max_grad_norm: float = 0.0
    max_grad_epoch: int = 0
    max_grad_step: int = 0

    def where(self):
        """Describe the position, ``"epoch 2, step 14"`` or ``"the end of epoch 1"``.

        Returns
        -------
        str
            The position in words.
        """
        if self.steps_done:
            return f"epoch {self.epochs_done + 1}, step {self.steps_done}"
        if self.epochs_done:
            return f"the end of epoch {self.epochs_done}"
        return "the start"


class Checkpoint(NamedTuple):
    """A checkpoint file read into memory, its structure checked.

    Attributes
    ----------
    path : str
        The file.
    meta : dict
        The decoded JSON metadata.
    arrays : dict of str to numpy.ndarray
        Every array of the file by name.
    """

    path: str
    meta: dict
    arrays: dict


# -- the training data's fingerprint ------------------------------------------------


def data_fingerprint(sessions):
    """Summarise training sessions so that a resumed run can check its data.

    Parameters
    ----------
    sessions : rnnrec.data.Sessions
        The training sessions.

    Returns
    -------
    dict
        Numbers of sessions, clicks and items, and the SHA-256 of the clicks,
        the session offsets and the item ids.
    """
    digest = hashlib.sha256()
    for array in (sessions.items, sessions.offsets, np.asarray(sessions.item_ids)):
        digest.update(str(array.dtype).encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return {
        "n_sessions": int(sessions.n_sessions),
        "n_clicks": int(sessions.n_clicks),
        "n_items": int(sessions.n_items),
        "sha256": digest.hexdigest(),
    }


# -- generator states as JSON ---------------------------------------------------------


def _encode(value):
    """Turn a bit generator's state into JSON values (arrays become tagged lists)."""
    if isinstance(value, dict):
        return {key: _encode(v) for key, v in value.items()}
    if isinstance(value, np.ndarray):
        return {"__ndarray__": value.tolist(), "dtype": value.dtype.name}
    if isinstance(value, np.integer):
        return int(value)
    return value


def _decode(value):
    """Invert `_encode`."""
    if isinstance(value, dict):
        if set(value) == {"__ndarray__", "dtype"}:
            return np.array(value["__ndarray__"], dtype=value["dtype"])
        return {key: _decode(v) for key, v in value.items()}
    return value


# -- writing ----------------------------------------------------------------------


def write_checkpoint(path, model, run, *, optimizer, sampler, rng, states, data):
    """Write a checkpoint atomically: the previous file stays whole until replaced.

    Parameters
    ----------
    path : str or os.PathLike
        Destination; written through a temporary file, flushed, synced and
        renamed (`rnnrec.io.atomic_write`).
    model : SessionRecommender
        The model being trained, with ``history_``.
    run : TrainingRun
        The position in training.
    optimizer : rnnrec.optim.Optimizer
        Its ``state`` is stored.
    sampler : rnnrec.sampling.PopularitySampler
        Its drawn but unused negatives are stored.
    rng : numpy.random.Generator
        The generator of the run.
    states : list or None
        The recurrent state carried into the next block, one entry per layer
        (``(h, c)`` for an LSTM); None at an epoch's start.
    data : dict
        `data_fingerprint` of the training sessions.
    """
    arrays = {"item_ids": model.item_ids_}
    arrays.update(model_arrays(model))
    scalars = {}
    for name, state in optimizer.state.items():
        for key, value in state.items():
            if isinstance(value, np.ndarray):
                arrays[f"optim/{name}/{key}"] = value
            else:
                scalars.setdefault(name, {})[key] = int(value)
    for i, state in enumerate(states or []):
        h, c = state if isinstance(state, tuple) else (state, None)
        arrays[f"carry/{i}/h"] = h
        if c is not None:
            arrays[f"carry/{i}/c"] = c
    # The part of the sampler's stream drawn but not yet handed out.
    arrays["sampler/unused"] = sampler.pending()

    meta = {
        "format_version": FORMAT_VERSION,
        "kind": KIND,
        "config": model.get_config(),
        "run": dataclasses.asdict(run),
        "history": model.history_,
        "optimizer": scalars,
        "rng": _encode(rng.bit_generator.state),
        "data": data,
    }
    text = np.array(json.dumps(meta))
    atomic_write(path, lambda f: np.savez(f, meta=text, **arrays))


# -- reading ----------------------------------------------------------------------


def read_checkpoint(path, *, with_arrays=True):
    """Read a checkpoint file and check that it is one.

    Parameters
    ----------
    path : str or os.PathLike
        The file written by `write_checkpoint`.
    with_arrays : bool, default True
        Read the arrays too; without, only the metadata is read.

    Returns
    -------
    Checkpoint
        Its metadata and arrays; what they must match is checked by
        `restore_checkpoint`.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If it is not an rnnrec checkpoint (a truncated file, another format
        version, a saved model without training state, missing metadata).
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"checkpoint not found: {path!r}")
    try:
        with np.load(path, allow_pickle=False) as data:
            text = str(data["meta"])
            names = data.files if with_arrays else []
            arrays = {name: data[name] for name in names if name != "meta"}
        meta = json.loads(text)
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as err:
        raise ValueError(f"{path} is not an rnnrec checkpoint: {err}") from None
    if not isinstance(meta, dict) or meta.get("kind") != KIND:
        raise ValueError(
            f"{path} is not an rnnrec checkpoint (a model saved by save() holds no "
            "training state to resume from)"
        )
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{path} has checkpoint format version {meta.get('format_version')!r}; "
            f"this rnnrec reads version {FORMAT_VERSION}"
        )
    for key in ("config", "run", "history", "optimizer", "rng", "data"):
        if key not in meta:
            raise ValueError(f"{path}: the checkpoint's metadata lacks {key!r}")
    try:
        run = TrainingRun(**meta["run"])
    except TypeError as err:
        raise ValueError(f"{path}: unreadable training position: {err}") from None
    numbers = dataclasses.astuple(run)
    if not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in numbers
    ):
        raise ValueError(f"{path}: unreadable training position: {meta['run']}")
    if not isinstance(meta["history"], list):
        raise ValueError(f"{path}: the history is not a list of epochs")
    return Checkpoint(path, meta, arrays)


def _take(saved, name, like):
    """Return array ``name`` of the checkpoint after checking it against ``like``."""
    value = saved.arrays.get(name)
    if value is None:
        raise ValueError(f"{saved.path}: the checkpoint lacks the array {name}")
    if value.shape != like.shape or value.dtype != like.dtype:
        raise ValueError(
            f"{saved.path}: array {name} has shape {value.shape} and dtype "
            f"{value.dtype}, expected {like.shape} and {like.dtype}"
        )
    if value.dtype.kind == "f" and not np.isfinite(value).all():
        raise ValueError(f"{saved.path}: array {name} holds NaN or infinity")
    return value


def check_resumable(saved, model, data):
    """Check that ``model`` on data ``data`` can carry on from checkpoint ``saved``.

    Parameters
    ----------
    saved : Checkpoint
        From `read_checkpoint`.
    model : SessionRecommender
        The model about to resume, configured.
    data : dict
        `data_fingerprint` of its training sessions.
    """
    ours, theirs = model.get_config(), saved.meta["config"]
    changed = [
        f"{name} (checkpoint {theirs.get(name)!r}, model {ours[name]!r})"
        for name in ours
        if name not in RESUMABLE_CHANGES and theirs.get(name) != ours[name]
    ]
    if changed:
        raise ValueError(
            f"{saved.path} was written by a model of another configuration: "
            + "; ".join(changed)
            + f". Only {', '.join(RESUMABLE_CHANGES)} may change on resuming"
        )
    if saved.meta["data"] != data:
        raise ValueError(
            f"{saved.path} was written while training on other data: "
            f"{saved.meta['data']}, now {data}"
        )
    done = saved.meta["run"]["epochs_done"]
    if done > model.n_epochs:
        raise ValueError(
            f"{saved.path} has trained {done} epochs already, more than "
            f"n_epochs={model.n_epochs}"
        )


def restore_checkpoint(saved, model, *, optimizer, sampler, rng):
    """Put a model, its optimizer, sampler and generator back to a checkpoint.

    The model must be built (parameters of the right shapes) and pass
    `check_resumable`. Arrays are copied into the existing ones, so that the
    optimizer keeps pointing at the model's parameters.

    Parameters
    ----------
    saved : Checkpoint
        From `read_checkpoint`.
    model : SessionRecommender
        The built model; its parameters and ``history_`` are set.
    optimizer : rnnrec.optim.Optimizer
        Made for the model's parameters; its state is set.
    sampler : rnnrec.sampling.PopularitySampler
        Drawing from ``rng``; its unused draws are set.
    rng : numpy.random.Generator
        The run's generator; its state is set.

    Returns
    -------
    run : TrainingRun
        The position to carry on from.
    states : list or None
        The recurrent state carried into the next block.
    """
    if not np.array_equal(saved.arrays.get("item_ids"), model.item_ids_):
        raise ValueError(f"{saved.path}: the item ids differ from the training data's")
    for name, target in model._param_dict().items():
        target[...] = _take(saved, f"param/{name}", target)

    scalars = saved.meta["optimizer"]
    for name, state in optimizer.state.items():
        for key, value in state.items():
            if isinstance(value, np.ndarray):
                value[...] = _take(saved, f"optim/{name}/{key}", value)
            else:
                try:
                    state[key] = int(scalars[name][key])
                except (KeyError, TypeError, ValueError):
                    raise ValueError(
                        f"{saved.path}: the optimizer state lacks {name}/{key}"
                    ) from None
    expected = {f"optim/{n}/{k}" for n, s in optimizer.state.items() for k in s}
    stored = {name for name in saved.arrays if name.startswith("optim/")}
    if not stored <= expected:
        raise ValueError(
            f"{saved.path}: optimizer arrays {sorted(stored - expected)} do not "
            f"belong to the {model.optimizer} optimizer"
        )

    unused = saved.arrays.get("sampler/unused")
    if (
        unused is None
        or unused.ndim != 1
        or unused.dtype != np.int64
        or (unused.size and (unused.min() < 0 or unused.max() >= sampler.n_items))
    ):
        raise ValueError(f"{saved.path}: the sampler's draws are missing or damaged")
    sampler.set_pending(unused)

    try:
        rng.bit_generator.state = _decode(saved.meta["rng"])
    except (TypeError, ValueError, KeyError) as err:
        raise ValueError(
            f"{saved.path}: the random generator's state cannot be restored: {err}"
        ) from None

    run = TrainingRun(**saved.meta["run"])
    model.history_ = list(saved.meta["history"])
    return run, _carried_states(saved, model, run)


def _carried_states(saved, model, run):
    """Return the state stored for the next block (None at an epoch's start)."""
    if run.steps_done == 0:
        return None
    states = []
    for i, layer in enumerate(model.layers_):
        h = saved.arrays.get(f"carry/{i}/h")
        if h is None or h.ndim != 2 or not 1 <= len(h) <= model.batch_size:
            raise ValueError(
                f"{saved.path}: the carried state of layer {i} is missing or damaged"
            )
        zero = layer.zero_state(len(h))
        if isinstance(zero, tuple):
            states.append(
                (
                    _take(saved, f"carry/{i}/h", zero[0]),
                    _take(saved, f"carry/{i}/c", zero[1]),
                )
            )
        else:
            states.append(_take(saved, f"carry/{i}/h", zero))
    return states


def read_checkpoint_config(path):
    """Return the constructor arguments of the model that wrote a checkpoint.

    Parameters
    ----------
    path : str or os.PathLike
        A checkpoint written by `SessionRecommender.fit`.

    Returns
    -------
    dict
        Keyword arguments of `SessionRecommender`; build the model with them
        (changing, say, only ``n_epochs``) and pass ``resume=path`` to ``fit``.
    """
    saved = read_checkpoint(path, with_arrays=False)
    return config_from_json(saved.meta["config"], saved.path)

"""Model files: what `SessionRecommender.save` writes and `load` reads back.

One ``.npz`` archive, read with ``allow_pickle=False``, so that loading a file
never runs code from it::

    meta          JSON: {"format_version": 1, "kind": "model", "config": {...}}
    item_ids      (V,)     the items' own ids, numbers or strings
    param/NAME    every trainable array, as `SessionRecommender._param_dict` names
                  it (the one-hot input's placeholder weights are left out)

`read_model` checks everything it reads before it trusts it: the archive, the
JSON, the format version, each setting (through the model's own checks), the
set of arrays, and every array's shape, dtype and finiteness. A checkpoint
(`rnnrec.model.checkpoint`) holds the same entries and more, so it reads as a
model too.
"""

from __future__ import annotations

import json
import os
import zipfile

import numpy as np

from rnnrec._validation import check_dtype
from rnnrec.io import atomic_write

FORMAT_VERSION = 1
KINDS = ("model", "checkpoint")

CONFIG_NAMES = (
    "cell", "layers", "embedding", "loss", "final_act", "bpreg", "logq", "n_sample",
    "sample_alpha", "dropout_p_embed", "dropout_p_hidden", "l2", "optimizer",
    "learning_rate", "momentum", "batch_size", "n_epochs", "bptt", "clip_grad_norm",
    "gru_variant", "dtype", "backend", "seed", "verbose",
)  # fmt: skip


def model_arrays(model):
    """Return the arrays a model file holds, by their names in the file.

    Parameters
    ----------
    model : SessionRecommender
        A fitted model.

    Returns
    -------
    dict of str to numpy.ndarray
        ``param/NAME`` for every trainable array.
    """
    return {f"param/{k}": v for k, v in model._param_dict().items()}


def write_model(model, path):
    """Write a fitted model to ``path`` atomically (see the module docstring).

    Parameters
    ----------
    model : SessionRecommender
        A fitted model.
    path : str or os.PathLike
        Destination; ``.npz`` is not appended.
    """
    if model.item_ids_.dtype == object:
        raise TypeError("item ids must be numbers or strings to be saved")
    meta = {
        "format_version": FORMAT_VERSION,
        "kind": "model",
        "config": model.get_config(),
    }
    text = np.array(json.dumps(meta))
    arrays = model_arrays(model)
    atomic_write(
        path, lambda f: np.savez(f, meta=text, item_ids=model.item_ids_, **arrays)
    )


def config_from_json(config, path):
    """Return constructor arguments from a file's JSON configuration.

    Parameters
    ----------
    config : dict
        The ``config`` entry of a file's metadata.
    path : str
        The file, for messages.

    Returns
    -------
    dict
        Keyword arguments of `SessionRecommender` (not yet checked).
    """
    if not isinstance(config, dict):
        raise ValueError(f"{path}: the configuration is not a JSON object")
    unknown = sorted(set(config) - set(CONFIG_NAMES))
    if unknown:
        raise ValueError(f"{path}: unknown settings {unknown}")
    config = dict(config)
    if "dtype" in config:
        config["dtype"] = check_dtype(config["dtype"]).type
    if isinstance(config.get("layers"), list):
        config["layers"] = tuple(config["layers"])
    return config


def read_model(cls, path):
    """Read a model file (or a checkpoint), checking everything it reads.

    Parameters
    ----------
    cls : type
        `SessionRecommender` (or a subclass), the model to build.
    path : str or os.PathLike
        The file.

    Returns
    -------
    SessionRecommender
        The fitted model.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        For anything else wrong with the file; the message starts with its path.
    """
    path = os.fspath(path)
    try:
        return _read(cls, path)
    except FileNotFoundError:
        raise
    except (
        OSError,
        ValueError,
        TypeError,
        EOFError,
        KeyError,
        zipfile.BadZipFile,
    ) as err:
        if isinstance(err, ValueError) and str(err).startswith(path):
            raise  # already a message about this file
        raise ValueError(f"{path} is not an rnnrec model file: {err}") from None


def _read(cls, path):
    with np.load(path, allow_pickle=False) as data:
        names = set(data.files)
        if "meta" not in names or "item_ids" not in names:
            raise ValueError(
                f"{path} is not an rnnrec model file (no meta or item_ids)"
            )
        try:
            meta = json.loads(str(data["meta"]))
        except (ValueError, TypeError) as err:
            raise ValueError(f"{path}: unreadable metadata: {err}") from None
        if not isinstance(meta, dict) or meta.get("kind", "model") not in KINDS:
            raise ValueError(f"{path}: the metadata is not an rnnrec model's")
        version = meta.get("format_version")
        if version != FORMAT_VERSION:
            raise ValueError(
                f"{path} has format version {version!r}; this rnnrec reads version "
                f"{FORMAT_VERSION}"
            )
        model = cls(**config_from_json(meta.get("config"), path))
        model._check_config()
        item_ids = data["item_ids"]
        if item_ids.ndim != 1 or len(item_ids) < 2:
            raise ValueError(
                f"{path}: item_ids must be 1-D with at least 2 items, got shape "
                f"{item_ids.shape}"
            )
        model._build(len(item_ids), np.random.default_rng(0))
        model.item_ids_ = item_ids
        expected = model._param_dict()
        stored = {n[len("param/") :] for n in names if n.startswith("param/")}
        if stored != set(expected):
            missing = sorted(set(expected) - stored)
            extra = sorted(stored - set(expected))
            raise ValueError(f"{path}: arrays missing {missing}, unexpected {extra}")
        for name, target in expected.items():
            value = data[f"param/{name}"]
            if value.shape != target.shape or value.dtype != target.dtype:
                raise ValueError(
                    f"{path}: array {name} has shape {value.shape} and dtype "
                    f"{value.dtype}, expected {target.shape} and {target.dtype}"
                )
            if not np.isfinite(value).all():
                raise ValueError(f"{path}: array {name} holds NaN or infinity")
            target[...] = value
    return model

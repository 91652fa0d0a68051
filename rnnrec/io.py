"""Writing files so that a crash never leaves one half-written."""

from __future__ import annotations

import os
import tempfile


def atomic_write_text(path, text):
    """Write ``text`` to ``path`` through a temporary file and a rename.

    The text goes to a temporary file in the same folder, which is flushed,
    synced and then renamed over ``path``: a reader sees the old file or the new
    one, never a part of it.

    Parameters
    ----------
    path : str or os.PathLike
        Destination.
    text : str
        Content, written as UTF-8.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise

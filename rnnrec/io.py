"""Writing files so that a crash never leaves one half-written."""

from __future__ import annotations

import os
import tempfile


def atomic_write(path, write):
    """Write ``path`` through a temporary file in the same folder and a rename.

    ``write(f)`` fills a binary file object; the file is then flushed, synced and
    renamed over ``path``: a reader sees the old file or the new one, never a
    part of it. If ``write`` raises, the temporary file is removed and ``path``
    is left as it was.

    Parameters
    ----------
    path : str or os.PathLike
        Destination.
    write : callable
        ``write(f)`` for a file object opened for binary writing.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path, text):
    """Write ``text`` as UTF-8 to ``path`` with `atomic_write`.

    Parameters
    ----------
    path : str or os.PathLike
        Destination.
    text : str
        Content.
    """
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))

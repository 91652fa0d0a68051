"""Writing files so that a crash never leaves one half-written."""

from __future__ import annotations

import os
import tempfile


def atomic_write(path, write):
    """Write ``path`` through a temporary file in the same folder and a rename.

    ``write(f)`` fills a binary file object; the file is then flushed, synced and
    renamed over ``path``, and the folder is synced so that the rename itself
    survives a power cut: a reader sees the old file or the new one, never a
    part of it. If ``write`` raises, the temporary file is removed and ``path``
    is left as it was; if the process dies instead, a ``.tmp-*`` file may stay
    behind in the folder, and ``path`` is still whole.

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
        # mkstemp makes the file private (0600); give it the mode of the file it
        # replaces, or the one a plain open() would give under the umask.
        os.chmod(tmp, _mode_for(path))
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _sync_folder(folder)


def _mode_for(path):
    """Mode bits for ``path``: those of the file there, else 0666 & ~umask."""
    try:
        return os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _sync_folder(folder):
    """Flush a folder's entries to disk (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # Windows opens no folders; the rename is durable there
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse to sync a folder
        pass
    finally:
        os.close(fd)


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

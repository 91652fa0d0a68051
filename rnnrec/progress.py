"""One progress bar for training loops and studies: tqdm when installed."""

from __future__ import annotations

import warnings


def progress_bar(total, description, enabled=True, *, unit="it", stacklevel=1):
    """Return a tqdm progress bar, or None when disabled or tqdm is missing.

    Parameters
    ----------
    total : int
        Units of work (events, updates or configurations).
    description : str
        Label in front of the bar.
    enabled : bool, default True
        False gives None.
    unit : str, default "it"
        Name of one unit, shown in the rate (``event/s``).
    stacklevel : int, default 1
        Where the warning about a missing tqdm points: 1 is the caller of this
        function, 2 its caller, and so on.

    Returns
    -------
    tqdm.tqdm or None
        The bar; close it when done.
    """
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        warnings.warn(
            "install tqdm for a progress bar (pip install rnnrec[progress])",
            stacklevel=stacklevel + 1,
        )
        return None
    return tqdm(total=total, desc=description, unit=unit, leave=False)

"""The shared progress bar: tqdm when installed, a pointed warning when not."""

import sys

import pytest

from rnnrec.progress import progress_bar


def test_disabled_gives_none():
    assert progress_bar(10, "x", enabled=False) is None


def test_a_bar_counts_in_its_unit():
    pytest.importorskip("tqdm")
    bar = progress_bar(5, "epoch 1", unit="event")
    assert bar.total == 5 and bar.unit == "event" and bar.desc.startswith("epoch 1")
    bar.close()


def test_without_tqdm_it_warns_at_the_caller_and_says_how_to_get_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # import fails
    with pytest.warns(UserWarning, match=r"pip install rnnrec\[progress\]") as caught:
        assert progress_bar(5, "x") is None
    assert caught[0].filename == __file__

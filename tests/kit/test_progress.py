"""Progress bars: silent outside a notebook unless asked, a tqdm bar when asked.

In a kernel a bar is an ipywidgets widget with nothing on stderr: tests/course/test_clean_outputs.py checks that on
the labs it already runs (no extra kernel here).
"""

from __future__ import annotations

import io

import pytest

from kit import progress


@pytest.fixture(autouse=True)
def default_rule():
    yield
    progress.show_bars(None)


def test_outside_a_notebook_a_bar_counts_silently():
    assert not progress.in_notebook()
    quiet = progress.bar(range(4), desc="epochs")
    assert list(quiet) == [0, 1, 2, 3] and quiet.n == 4
    manual = progress.bar(total=3)
    manual.update(2)
    manual.set_postfix_str("loss 0.1")
    manual.close()
    assert manual.n == 2
    assert progress.keras_callback(epochs=2, steps_per_epoch=5) is None  # no callback, no Keras import


def test_show_bars_gives_a_tqdm_bar_that_writes_to_a_terminal(monkeypatch):
    tqdm = pytest.importorskip("tqdm")
    progress.show_bars()
    shown = progress.bar(range(3), desc="rounds")
    assert isinstance(shown, tqdm.tqdm)
    terminal = io.StringIO()
    terminal.isatty = lambda: True  # type: ignore[method-assign]
    monkeypatch.setattr("sys.stderr", terminal)
    assert list(progress.bar(range(3), desc="rounds")) == [0, 1, 2]
    assert "rounds: 100%" in terminal.getvalue() and "3/3" in terminal.getvalue()
    assert list(progress.bar(range(2), show=False)) == [0, 1]  # an explicit False wins

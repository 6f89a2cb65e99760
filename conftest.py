"""Settings for the docstring examples under kit/ (run by ``pytest --doctest-modules``; tests/ has its own conftest).

An example runs in a fresh temporary folder with its own ``KIT_HOME``, so one that writes a store, a model or a
plot leaves nothing in the working tree or the user's home.
"""

from __future__ import annotations

import os
import tempfile

import pytest

_HOME = tempfile.mkdtemp(prefix="kit-doctest-")
for _var, _sub in {"KERAS_HOME": "keras", "FLWR_HOME": "flwr", "MPLCONFIGDIR": "mpl", "IPYTHONDIR": "ipython"}.items():
    os.environ.setdefault(_var, os.path.join(_HOME, _sub))
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(autouse=True)
def _doctest_in_a_temporary_folder(request: pytest.FixtureRequest, tmp_path, monkeypatch) -> None:
    if isinstance(request.node, pytest.DoctestItem):
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("KIT_HOME", str(tmp_path / "kit-home"))

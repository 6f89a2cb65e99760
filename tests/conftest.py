"""Settings shared by every test: private homes for the tools that write caches, a headless plot backend."""

from __future__ import annotations

import os
import sys
import tempfile

import pytest

# With an editable install `kit` is found by an import hook that runs after sys.path is searched, and
# pytest puts tests/ on sys.path, where tests/kit/ (no __init__.py) passes for a namespace package
# `kit` whose __init__ never runs (`from kit import Board` then fails). A regular package anywhere on
# sys.path beats a namespace one, so keep the project root on it.
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.append(_ROOT)

_HOME = tempfile.mkdtemp(prefix="kit-tests-")
for var, sub in {
    "KERAS_HOME": "keras",
    "FLWR_HOME": "flwr",
    "RAY_TMPDIR": "ray",
    "IPYTHONDIR": "ipython",
    "MPLCONFIGDIR": "mpl",
}.items():
    os.environ.setdefault(var, os.path.join(_HOME, sub))
    os.makedirs(os.environ[var], exist_ok=True)
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KIT_HOME", os.path.join(_HOME, "kit"))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--notebooks",
        action="store",
        default=None,
        help="folder of notebooks to grade with tests/grading (default: solutions/)",
    )
    parser.addoption(
        "--grading-results",
        action="store",
        default=None,
        help="write the grading results (test, points, max, passed, message) to this JSON file",
    )

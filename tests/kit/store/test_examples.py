"""The examples in kit.store's docstrings run as written (they are what people copy first)."""
from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["kit.store", "kit.store.defaults", "kit.store.outbox", "kit.store.parameter",
           "kit.store.params", "kit.store.readings", "kit.store.store", "kit.store.timestamps"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no docstring example"
    assert result.failed == 0, f"{result.failed} docstring example(s) in {name} failed (run python -m doctest -v)"

"""One fixture for the store tests: a fresh store file in a temporary folder."""

from __future__ import annotations

import pytest

from kit.store import Store


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "kit.db")
    yield s
    s.close()

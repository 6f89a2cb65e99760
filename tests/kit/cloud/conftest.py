"""The cloud tests' store; the moto server and Mosquitto fixtures are shared in tests/kit/conftest.py."""

from __future__ import annotations

import pytest


@pytest.fixture
def store(tmp_path):
    from kit.store import Store

    s = Store(tmp_path / "kit.db")
    yield s
    s.close()

"""A real local cloud (moto on a free port) and a real Mosquitto broker for the app's tests."""
from __future__ import annotations

import os

import pytest

from kit.cloud import config
from kit.cloud.broker import Broker, BrokerError, mosquitto_path
from kit.cloud.emulator import LocalCloud


@pytest.fixture
def cloud():
    server = LocalCloud(0, activate=False).start()
    # moto keeps its buckets and things per process, across servers: start from an empty cloud
    server.reset()
    config.use(server.config)
    yield server
    config.use(None)
    server.stop()


@pytest.fixture
def broker(tmp_path):
    try:
        mosquitto_path()
    except BrokerError as exc:
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(f"CI must have mosquitto (.ci/run installs it): {exc}")
        pytest.skip(str(exc))
    (tmp_path / "mosquitto").mkdir()
    b = Broker(0, workdir=tmp_path / "mosquitto").start()
    yield b
    b.stop()

"""The kit's tests use gpiozero's mock pins through this one fixture, as gpiozero's own tests do.

The cloud tests (and the app's) use real services: a moto server and a Mosquitto broker on free
loopback ports.
"""

from __future__ import annotations

import os

import pytest
from gpiozero import Device

from kit.cloud import config
from kit.cloud.broker import Broker, BrokerError, mosquitto_path
from kit.cloud.emulator import LocalCloud
from kit.pins import SimFactory


@pytest.fixture()
def mock_factory():
    """A fresh mock pin factory (PWM-capable pins), also gpiozero's default while the test runs."""
    saved = Device.pin_factory
    factory = SimFactory()
    Device.pin_factory = factory
    try:
        yield factory
    finally:
        factory.close()
        factory.reset()
        Device.pin_factory = saved


# --- real cloud services on free loopback ports (a moto server, a Mosquitto broker) ---------------


@pytest.fixture(scope="session")
def _cloud_server():
    cloud = LocalCloud(0, activate=False).start()
    yield cloud
    cloud.stop()


@pytest.fixture
def cloud(_cloud_server):
    """The local AWS endpoint, emptied, and the process default for ``kit.cloud.client``."""
    _cloud_server.start()  # a test may have stopped it
    _cloud_server.reset()
    config.use(_cloud_server.config)
    yield _cloud_server
    _cloud_server.start()
    config.use(None)


def _need_mosquitto() -> None:
    try:
        mosquitto_path()
    except BrokerError as exc:
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(f"CI must have mosquitto (.ci/run installs it): {exc}")
        pytest.skip(str(exc))


@pytest.fixture
def broker(tmp_path):
    """A fresh mosquitto (persistent sessions) on a free port; stopped afterwards."""
    _need_mosquitto()
    (tmp_path / "mosquitto").mkdir()
    b = Broker(0, workdir=tmp_path / "mosquitto").start()
    yield b
    b.stop()


@pytest.fixture
def broker_stopped(tmp_path):
    """A broker configured on a free port but not started yet (for "broker down at start")."""
    _need_mosquitto()
    (tmp_path / "mosquitto").mkdir()
    b = Broker(0, workdir=tmp_path / "mosquitto")
    yield b
    b.stop()

"""Real services for the cloud tests: a moto server and a Mosquitto broker on free loopback ports."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# pytest puts tests/ on sys.path, and tests/kit (a folder without __init__.py) then shadows the kit
# package as a namespace package (kit.store, kit.cloud resolve to the test folders). Put the
# repository first and forget any namespace stand-in, so `import kit...` means the real package.
_ROOT = str(Path(__file__).resolve().parents[3])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)
for _name in [m for m in sys.modules if m == "kit" or m.startswith("kit.")]:
    if getattr(sys.modules[_name], "__file__", None) is None and _name not in ("kit.models",):
        del sys.modules[_name]

from kit.cloud import config
from kit.cloud.broker import Broker, BrokerError, mosquitto_path
from kit.cloud.emulator import LocalCloud


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


@pytest.fixture
def store(tmp_path):
    from kit.store import Store

    s = Store(tmp_path / "kit.db")
    yield s
    s.close()


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

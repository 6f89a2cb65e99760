from __future__ import annotations

import socket

import pytest

from kit.cloud import broker as broker_module
from kit.cloud.broker import Broker, BrokerError


def _accepts(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def test_start_stop_restart_on_the_same_loopback_port(broker):
    port = broker.port
    assert broker.running and _accepts(port)
    broker.stop()
    assert not broker.running and not _accepts(port)
    broker.restart()
    assert broker.port == port and _accepts(port)
    assert (broker.workdir / "mosquitto.conf").read_text().startswith(f"listener {port} 127.0.0.1")


def test_missing_mosquitto_says_how_to_install_it(monkeypatch):
    monkeypatch.setattr(broker_module.shutil, "which", lambda name: None)
    monkeypatch.setattr(broker_module.os, "access", lambda path, mode: False)
    with pytest.raises(BrokerError, match="apt-get install mosquitto"):
        Broker().start()


def test_a_busy_port_is_reported(broker):
    with pytest.raises(BrokerError, match=f"port {broker.port}"):
        Broker(broker.port).start(timeout=2)

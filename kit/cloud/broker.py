"""A local Mosquitto broker on a loopback port, for labs and tests.

Mosquitto is a system package (``sudo apt-get install mosquitto`` on Raspberry Pi OS / Debian,
``brew install mosquitto`` on macOS). The broker keeps its sessions and queued QoS 1 messages on
disk, so a :meth:`Broker.restart` loses nothing a client was promised.

    >>> from kit.cloud.broker import Broker
    >>> with Broker() as broker:                  # doctest: +SKIP
    ...     broker.port > 0
    True
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from kit.errors import KitRuntimeError

_HOST = "127.0.0.1"


class BrokerError(KitRuntimeError):
    """Mosquitto is missing or did not start."""


def free_port(host: str = _HOST) -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def mosquitto_path() -> str:
    """The ``mosquitto`` executable, or a :class:`BrokerError` telling how to install it."""
    found = shutil.which("mosquitto") or next(
        (
            p
            for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto", "/opt/homebrew/sbin/mosquitto")
            if os.access(p, os.X_OK)
        ),
        None,
    )
    if found is None:
        raise BrokerError(
            "the MQTT broker 'mosquitto' is not installed; install it with "
            "'sudo apt-get install mosquitto' (Debian/Raspberry Pi OS) or 'brew install mosquitto' (macOS)"
        )
    return found


class Broker:
    """A ``mosquitto`` process listening on ``127.0.0.1:port`` (``port=0``: a free port).

    ``persistent=True`` keeps sessions and queued messages across :meth:`restart`. ``tls`` (paths
    ``cafile``, ``certfile``, ``keyfile``) makes it a TLS listener that requires a client certificate
    signed by ``cafile``, the way AWS IoT Core authenticates devices.
    """

    def __init__(
        self,
        port: int = 0,
        *,
        persistent: bool = True,
        workdir: str | os.PathLike | None = None,
        tls: dict[str, str] | None = None,
    ) -> None:
        self.host = _HOST
        self.port = port or free_port()
        self.persistent = persistent
        self.tls = dict(tls) if tls else None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="kit-mosquitto-"))
        self._proc: subprocess.Popen | None = None

    def _write_config(self) -> Path:
        lines = [
            f"listener {self.port} {self.host}",
            "allow_anonymous true",
            # Started as root, mosquitto drops to user 'mosquitto', which cannot write our folder.
            f"user {getpass.getuser()}",
            "max_queued_messages 100000",
            f"log_dest file {self.workdir / 'mosquitto.log'}",
        ]
        if self.tls:
            lines += [
                f"cafile {self.tls['cafile']}",
                f"certfile {self.tls['certfile']}",
                f"keyfile {self.tls['keyfile']}",
                "require_certificate true",
                "use_identity_as_username true",
                "tls_version tlsv1.2",
            ]
        if self.persistent:
            lines += ["persistence true", f"persistence_location {self.workdir}/", "autosave_interval 1"]
        path = self.workdir / "mosquitto.conf"
        path.write_text("\n".join(lines) + "\n")
        return path

    def start(self, timeout: float = 5.0) -> Broker:
        """Start mosquitto and wait until it accepts connections."""
        if self.running:
            return self
        if _listening(self.host, self.port):
            raise BrokerError(
                f"port {self.port} on {self.host} is already in use; pick another port (port=0: a free one)"
            )
        conf = self._write_config()
        self._proc = subprocess.Popen(
            [mosquitto_path(), "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while not _listening(self.host, self.port):
            if self._proc.poll() is not None:
                err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
                log = self.workdir / "mosquitto.log"
                detail = (err + (log.read_text() if log.exists() else "")).strip()[-500:]
                self._proc = None
                raise BrokerError(f"mosquitto exited at start on port {self.port}: {detail}")
            if time.monotonic() > deadline:
                self.stop()
                raise BrokerError(f"mosquitto did not listen on {self.host}:{self.port} within {timeout} s")
            time.sleep(0.02)
        return self

    def stop(self, *, kill: bool = False) -> None:
        """Stop the broker (SIGTERM saves its state; ``kill=True`` is a crash)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()

    def restart(self) -> Broker:
        """Stop and start again on the same port."""
        self.stop()
        return self.start()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def __enter__(self) -> Broker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<Broker mqtt://{self.host}:{self.port} {'running' if self.running else 'stopped'}>"


def start(port: int = 0, *, persistent: bool = True) -> Broker:
    """Start a local broker and return it; ``stop()`` it when done."""
    return Broker(port, persistent=persistent).start()

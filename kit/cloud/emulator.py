"""The local cloud: moto's AWS emulator as a real HTTP endpoint on 127.0.0.1.

boto3 talks to it exactly as it talks to AWS (S3, IoT, IoT data-plane shadows), so the same
code runs against real AWS by changing the configuration only. State lives in this process: it
survives :meth:`LocalCloud.stop` / :meth:`LocalCloud.start`, which is how tests take the
endpoint down for a while.

    >>> from kit.cloud.emulator import LocalCloud
    >>> with LocalCloud() as cloud:                # a free port on 127.0.0.1
    ...     s3 = cloud.client("s3")
    ...     _ = s3.create_bucket(Bucket="demo", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    ...     "demo" in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    True
"""

from __future__ import annotations

import logging
import os
import socket
import urllib.request
from typing import Any

from kit.cloud import config as _config
from kit.errors import KitRuntimeError, UsageError

_HOST = "127.0.0.1"  # never 0.0.0.0: the emulator accepts any credentials


class CloudServeError(KitRuntimeError):
    """The local cloud could not listen (the port is taken, or not allowed)."""


def _check_can_listen(port: int) -> None:
    """Bind the port once ourselves: werkzeug would print its own advice and exit the process instead."""
    if port == 0:
        return
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as werkzeug does: TIME_WAIT is no obstacle
        try:
            probe.bind((_HOST, port))
        except OSError as exc:
            raise CloudServeError(
                f"can't listen on {_HOST}:{port} ({exc.strerror or exc}); "
                "pick another port with --port (0 picks a free one)"
            ) from None


def _server_class() -> type:
    """moto's ThreadedMotoServer, but a failure to bind is reported instead of hanging ``start()`` forever."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:  # the lean (Pi) profile has no emulator
        raise CloudServeError(
            "the local cloud needs moto, which this install leaves out: "
            "pip install -e '.[emulator]' (or use a real AWS endpoint)"
        ) from None

    class Server(ThreadedMotoServer):
        error: BaseException | None = None

        def _server_entry(self) -> None:
            try:
                super()._server_entry()
            except BaseException as exc:  # raised in moto's thread: hand it to start() and wake it up
                self.error = exc
                self._server_ready_event.set()

    return Server


class LocalCloud:
    """A moto ``ThreadedMotoServer`` on a loopback port (``port=0`` picks a free one).

    ``activate=True`` makes it the process-wide default, so ``kit.cloud.client("s3")`` finds it.
    """

    def __init__(self, port: int = 0, *, activate: bool = True, bucket: str | None = None) -> None:
        self.port = port
        self.activate = activate
        self._bucket = bucket
        self._server: Any = None

    # lifecycle -------------------------------------------------------------------------------
    def start(self) -> LocalCloud:
        """Start serving (again); the same port is reused after a :meth:`stop`."""
        if self._server is not None:
            return self
        if isinstance(self.port, bool) or not isinstance(self.port, int) or not 0 <= self.port <= 65535:
            raise UsageError(f"port must be a whole number 0..65535 (0 picks a free one), got {self.port!r}")
        _check_can_listen(self.port)
        # One line per request drowns a notebook; errors still surface as boto3 exceptions.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        server = _server_class()(ip_address=_HOST, port=self.port, verbose=False)
        server.start()
        if server.error is not None:  # taken between the check and moto's bind
            reason = getattr(server.error, "strerror", None) or "the port is taken"
            raise CloudServeError(
                f"can't listen on {_HOST}:{self.port} ({reason}); pick another port with --port (0 picks a free one)"
            )
        self.port = server.get_host_and_port()[1]
        self._server = server
        if self.activate:
            _config.use(self.config)
        return self

    def stop(self) -> None:
        """Stop serving and free the port, so clients get "connection refused" (state is kept)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.stop()
        # ThreadedMotoServer.stop() leaves the socket listening: connections would hang, not fail.
        server._server.server_close()
        if self.activate and _config._current == self.config:
            _config.use(None)

    close = stop

    @property
    def running(self) -> bool:
        return self._server is not None

    def __enter__(self) -> LocalCloud:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<LocalCloud {self.endpoint_url} {state}>"

    # use -------------------------------------------------------------------------------------
    @property
    def endpoint_url(self) -> str:
        return f"http://{_HOST}:{self.port}"

    @property
    def config(self) -> _config.CloudConfig:
        """The configuration pointing at this emulator (other fields from the environment)."""
        base = _config.CloudConfig.from_env({k: v for k, v in os.environ.items() if k != "KIT_CLOUD"})
        changes: dict[str, Any] = {
            "mode": "local",
            "endpoint_url": self.endpoint_url,
            "region": base.region or _config.LOCAL_REGION,
        }
        if self._bucket:
            changes["bucket"] = self._bucket
        return base.with_(**changes)

    def client(self, service: str, **kwargs: Any) -> Any:
        """An ordinary boto3 client for ``service`` talking to this emulator."""
        return _config.client(service, self.config, **kwargs)

    def reset(self) -> None:
        """Forget every bucket, thing and shadow (moto's reset API)."""
        req = urllib.request.Request(self.endpoint_url + "/moto-api/reset", method="POST")
        with urllib.request.urlopen(req, timeout=5):
            pass


def start(port: int = 0, *, activate: bool = True, bucket: str | None = None) -> LocalCloud:
    """Start a local cloud and return it; ``stop()`` it when done (or use ``with LocalCloud()``)."""
    return LocalCloud(port, activate=activate, bucket=bucket).start()


def reachable(endpoint_url: str, timeout: float = 1.0) -> bool:
    """True when something answers HTTP at ``endpoint_url`` (used by ``kit cloud status``)."""
    import urllib.error

    try:
        with urllib.request.urlopen(endpoint_url.rstrip("/") + "/moto-api/", timeout=timeout):
            return True
    except urllib.error.HTTPError:
        return True  # it answered, just not with 2xx
    except (OSError, ValueError):
        return False

"""The "cloud" half of a split model: an HTTP service on localhost that runs part B.

The device sends the activation at split ``k`` to ``POST /infer/k`` (raw bytes; headers ``X-Dtype``
float32/int8/uint8, ``X-Shape``, ``X-Scale`` for int8); the service checks the shape, runs part B
of that split and answers JSON ``{"outputs": {name: values}, "compute_ms": ...}``.

Bandwidth shaping happens here, on the server side, so that the device code is the code a real
deployment runs: before answering, the service sleeps for the round-trip time plus the time the
request and the response bodies would take on a link of the chosen bandwidth::

    delay = rtt_ms + 8 * (request_bytes + response_bytes) / bandwidth

The service's default network comes from its constructor (``kit model infer-serve --bandwidth-mbps
--rtt-ms``); a request may ask for another with the headers ``X-Bandwidth-Mbps`` and ``X-Rtt-Ms``
(the lab compares three conditions against one service). It listens on 127.0.0.1 only.

    >>> from kit.ml.infer_server import InferServer, InferClient
    >>> with InferServer("partition/") as server:            # a folder saved by Partition.save
    ...     client = InferClient(server.url)
    ...     client.health()["splits"]
    8
"""
from __future__ import annotations

import http.client
import json
import os
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlparse

import numpy as np

from kit.ml.partition import Network, Part, Partition, decode


MAX_BODY_BYTES = 64 * 1024 * 1024  # far above any activation of the kit's models; refuses runaway uploads


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if isinstance(sys.exc_info()[1], OSError):  # a client (or stop()) hung up: not worth a traceback
            return
        super().handle_error(request, client_address)


class InferServer:
    """Runs part B of every split of a :class:`~kit.ml.partition.Partition` over HTTP on 127.0.0.1.

    ``port=0`` picks a free port (see ``url``). ``network`` is the default link shaping (None: no shaping).
    Start with ``start()`` or a ``with`` block; ``stop()`` closes the socket.

        >>> server = InferServer(partition, network=Network(bandwidth_mbps=2, rtt_ms=15)).start()
        >>> server.url
        'http://127.0.0.1:40123'
        >>> server.stop()
    """

    def __init__(self, partition: Partition | str | os.PathLike, *, port: int = 0, network: Network | None = None, num_threads: int = 1) -> None:
        if not isinstance(partition, Partition):
            partition = Partition.load(partition)
        self.partition = partition
        self.network = network
        self.num_threads = num_threads
        self._parts: dict[int, Part] = {}
        self._locks: dict[int, threading.Lock] = {k: threading.Lock() for k in range(partition.n_splits)}
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = port
        self.requests = 0
        self._connections: set[socket.socket] = set()
        self._conn_lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "InferServer":
        server = self

        class Handler(_Handler):
            owner = server

        self._httpd = _QuietServer(("127.0.0.1", self.port), Handler)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="infer-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and close every open connection (kept-alive clients see the service go away)."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        with self._conn_lock:
            for conn in self._connections:
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self._connections.clear()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> "InferServer":
        return self.start() if self._httpd is None else self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def serve_forever(self) -> None:
        """Block until Ctrl-C (used by ``kit model infer-serve``)."""
        if self._httpd is None:
            self.start()
        try:
            while True:
                time.sleep(3600)
        finally:
            self.stop()

    def part(self, k: int) -> Part:
        if k not in self._parts:
            self._parts[k] = Part(self.partition.b[k], num_threads=self.num_threads, name=f"b_{k}")
        return self._parts[k]

    def infer(self, k: int, activation: np.ndarray) -> tuple[dict[str, list], float]:
        n = self.partition.n_splits
        if not 0 <= k < n:
            raise LookupError(f"split {k} has no cloud part: splits 0..{n - 1} run part B here ({n} is all-device)")
        expected = tuple(self.partition.activation_shapes[k])
        shape = tuple(activation.shape)
        if shape != expected and not (k == 0 and shape + (1,) == expected):
            raise ValueError(
                f"split {k} expects an activation of shape {expected}, got {shape}: the device and the service "
                "were cut from different models or at different splits"
            )
        with self._locks[k]:
            part = self.part(k)
            t0 = time.perf_counter()
            outputs = part(activation)
            compute_ms = (time.perf_counter() - t0) * 1e3
        return {name: np.asarray(v)[0].tolist() for name, v in outputs.items()}, compute_ms


def _network_from(headers: Any, default: Network | None) -> Network | None:
    bw, rtt = headers.get("X-Bandwidth-Mbps"), headers.get("X-Rtt-Ms")
    if bw is None and rtt is None:
        return default
    return Network(
        bandwidth_mbps=float(bw) if bw is not None else (default.bandwidth_mbps if default else 1e6),
        rtt_ms=float(rtt) if rtt is not None else (default.rtt_ms if default else 0.0),
    )


class _Handler(BaseHTTPRequestHandler):
    owner: InferServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # one line per request would drown the lab
        pass

    def setup(self) -> None:
        super().setup()
        # without it Nagle's algorithm and delayed ACKs add ~40 ms to every kept-alive request
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.owner._conn_lock:
            self.owner._connections.add(self.connection)

    def finish(self) -> None:
        with self.owner._conn_lock:
            self.owner._connections.discard(self.connection)
        try:
            super().finish()
        except OSError:  # the client or stop() closed the socket first
            pass

    def _reply(self, status: int, payload: dict, *, started: float, request_bytes: int, network: Network | None, extra: dict | None = None) -> None:
        body = json.dumps(payload).encode()
        if network is not None:
            # the link: round trip plus both bodies at the shaped bandwidth, on top of the compute time
            time.sleep((network.rtt_ms + network.transfer_ms(request_bytes + len(body))) / 1e3)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        started = time.perf_counter()
        if self.path.rstrip("/") in ("/health", ""):
            from kit.ml.runtime import RUNTIME

            p = self.owner.partition
            payload = {"ok": True, "splits": p.n_splits, "layers": p.layer_names, "outputs": p.output_names, "runtime": RUNTIME}
            self._reply(200, payload, started=started, request_bytes=0, network=None)
        else:
            self._reply(404, {"error": f"unknown path {self.path!r}; use GET /health, POST /ping or POST /infer/<split>"}, started=started, request_bytes=0, network=None)

    def do_POST(self) -> None:
        started = time.perf_counter()
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY_BYTES:
            self.close_connection = True
            self._reply(413 if length > 0 else 400, {"error": f"Content-Length must be 0..{MAX_BODY_BYTES} bytes, got {self.headers.get('Content-Length')!r}"},
                        started=started, request_bytes=0, network=None)
            return
        body = self.rfile.read(length) if length else b""
        try:
            network = _network_from(self.headers, self.owner.network)
        except ValueError as exc:
            self._reply(400, {"error": str(exc)}, started=started, request_bytes=length, network=None)
            return
        parts = self.path.strip("/").split("/")
        if parts == ["ping"]:
            self._reply(200, {"ok": True}, started=started, request_bytes=length, network=network)
            return
        if len(parts) != 2 or parts[0] != "infer" or not parts[1].isdigit():
            self._reply(404, {"error": f"unknown path {self.path!r}; use POST /infer/<split>"}, started=started, request_bytes=length, network=None)
            return
        try:
            activation = decode(body, self.headers)
            outputs, compute_ms = self.owner.infer(int(parts[1]), activation)
        except LookupError as exc:
            self._reply(404, {"error": str(exc)}, started=started, request_bytes=length, network=network)
            return
        except ValueError as exc:
            self._reply(400, {"error": str(exc)}, started=started, request_bytes=length, network=network)
            return
        self.owner.requests += 1
        self._reply(200, {"outputs": outputs, "compute_ms": compute_ms}, started=started, request_bytes=length, network=network,
                    extra={"X-Compute-Ms": f"{compute_ms:.4f}"})


class InferClient:
    """Talks to an :class:`InferServer` (one kept-alive connection per client; not shared between threads).

    ``infer`` raises ``ValueError`` with the service's message for a bad request (wrong shape), and
    ``OSError``/``TimeoutError`` when the service is unreachable or slower than ``timeout`` seconds.

        >>> client = InferClient("http://127.0.0.1:40123", timeout=2.0)
        >>> outputs, info = client.infer(3, body, headers)
        >>> info["compute_ms"], info["response_bytes"]
    """

    def __init__(self, url: str, *, timeout: float = 5.0) -> None:
        parsed = urlparse(url)
        if parsed.scheme != "http" or not parsed.hostname:
            raise ValueError(f"InferClient needs an http://host:port URL, got {url!r}")
        self.host, self.port = parsed.hostname, parsed.port or 80
        self.timeout = timeout
        self._conn: http.client.HTTPConnection | None = None

    def _request(self, method: str, path: str, body: bytes = b"", headers: dict | None = None) -> tuple[int, bytes]:
        for attempt in (0, 1):
            if self._conn is None:
                self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
                self._conn.connect()
                self._conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                self._conn.request(method, path, body=body, headers=headers or {})
                response = self._conn.getresponse()
                return response.status, response.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.close()  # a kept-alive connection the server dropped: retry once on a new one
                if attempt:
                    raise
            except OSError:
                self.close()
                raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    @staticmethod
    def _shaping(network: Network | None) -> dict[str, str]:
        if network is None:
            return {}
        return {"X-Bandwidth-Mbps": repr(network.bandwidth_mbps), "X-Rtt-Ms": repr(network.rtt_ms)}

    def health(self) -> dict:
        status, body = self._request("GET", "/health")
        return json.loads(body)

    def ping(self, body: bytes = b"", *, network: Network | None = None) -> float:
        """Milliseconds for one round trip carrying ``body`` (HTTP overhead plus shaping, no model)."""
        t0 = time.perf_counter()
        self._request("POST", "/ping", body, self._shaping(network))
        return (time.perf_counter() - t0) * 1e3

    def infer(self, split: int, body: bytes, headers: dict[str, str], *, network: Network | None = None) -> tuple[dict[str, np.ndarray], dict]:
        status, reply = self._request("POST", f"/infer/{int(split)}", body, {**headers, **self._shaping(network)})
        payload = json.loads(reply)
        if status != 200:
            raise ValueError(f"inference service refused split {split}: {payload.get('error', reply[:200])}")
        outputs = {name: np.asarray(v, dtype=np.float32) for name, v in payload["outputs"].items()}
        return outputs, {"compute_ms": float(payload["compute_ms"]), "response_bytes": len(reply)}

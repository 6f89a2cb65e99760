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
(the lab compares three conditions against one service). It listens on 127.0.0.1 unless told otherwise.

The HTTP side is uvicorn (an ASGI server on asyncio; see docs/models.md for why not waitress or
``http.server``). What a hostile or careless client can't do:

* exhaust threads or memory with idle or slow connections: an idle connection costs no thread, and a
  connection that has not sent a whole request header within ``read_timeout_s`` is closed; a body that
  stops arriving for ``read_timeout_s`` gets 408;
* send a big body or many at once: ``max_body_bytes`` per request (413), ``max_inflight_bytes`` of
  bodies held at once, ``workers`` running part B plus ``queue`` waiting; beyond that 503 with
  ``Retry-After`` (never a reset);
* pin the service with emulated delays: ``X-Rtt-Ms`` and ``X-Bandwidth-Mbps`` must be finite and in
  range, and the delay they imply at most ``MAX_SHAPING_S`` (else 400); the delay is an
  ``asyncio.sleep`` that holds no thread;
* delay ``GET /health``: it is answered on the event loop, never queued behind inference.

    >>> from kit.ml.infer_server import InferServer, InferClient
    >>> with InferServer("partition/") as server:            # a folder saved by Partition.save  # doctest: +SKIP
    ...     client = InferClient(server.url)
    ...     client.health()["splits"]
    8
"""

from __future__ import annotations

import asyncio
import http.client
import json
import math
import os
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlparse

import numpy as np

from kit.errors import KitRuntimeError, UsageError
from kit.ml.partition import Network, Part, Partition, decode

LOOPBACK = "127.0.0.1"
MAX_BODY_BYTES = 4 * 1024 * 1024
"""Largest request body (bytes): 16x the largest activation of the kit's split model; more is 413."""
MAX_INFLIGHT_BYTES = 32 * 1024 * 1024
"""Request bodies held in memory at once, over all connections; a request that would pass it gets 503."""
MAX_RTT_MS = 10_000.0
MIN_BANDWIDTH_MBPS, MAX_BANDWIDTH_MBPS = 0.01, 10_000_000.0
MAX_SHAPING_S = 30.0
"""Longest emulated link delay one request may ask for (RTT plus both bodies at the shaped bandwidth)."""
RETRY_AFTER_S = 1


class InferServerError(KitRuntimeError):
    """The inference service could not start (the port is taken, the address is not local, ...)."""


class _Refused(Exception):
    """An HTTP error answer: status, message, extra headers."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.headers = status, headers or {}


class InferServer:
    """Runs part B of every split of a :class:`~kit.ml.partition.Partition` over HTTP on 127.0.0.1.

    ``port=0`` picks a free port (see ``url``). ``network`` is the default link shaping (None: no shaping).
    Start with ``start()`` or a ``with`` block; ``stop()`` closes the socket and every connection.
    ``workers`` threads run part B (TFLite), ``queue`` more requests may wait for one; see the module
    docstring for the other limits.

        >>> server = InferServer(partition, network=Network(bandwidth_mbps=2, rtt_ms=15)).start()  # doctest: +SKIP
        >>> server.url  # doctest: +SKIP
        'http://127.0.0.1:40123'
        >>> server.stop()  # doctest: +SKIP
    """

    def __init__(
        self,
        partition: Partition | str | os.PathLike,
        *,
        host: str = LOOPBACK,
        port: int = 0,
        network: Network | None = None,
        num_threads: int = 1,
        workers: int = 2,
        queue: int = 64,
        max_body_bytes: int = MAX_BODY_BYTES,
        max_inflight_bytes: int = MAX_INFLIGHT_BYTES,
        read_timeout_s: float = 10.0,
        backlog: int = 1024,
    ) -> None:
        for name, value, low in (
            ("workers", workers, 1),
            ("queue", queue, 0),
            ("max_body_bytes", max_body_bytes, 1),
            ("max_inflight_bytes", max_inflight_bytes, max_body_bytes),
            ("backlog", backlog, 1),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise UsageError(f"{name} must be a whole number >= {low}, got {value!r}")
        if not isinstance(port, int) or not 0 <= port <= 65535:
            raise UsageError(f"port must be 0..65535 (0: a free one), got {port!r}")
        if not (isinstance(read_timeout_s, (int, float)) and math.isfinite(read_timeout_s) and read_timeout_s > 0):
            raise UsageError(f"read_timeout_s must be a finite number of seconds > 0, got {read_timeout_s!r}")
        if not isinstance(partition, Partition):
            partition = Partition.load(partition)
        self.partition = partition
        self.network = network
        self.num_threads = num_threads
        self.host, self.port = host, port
        self.workers, self.queue = workers, queue
        self.max_body_bytes, self.max_inflight_bytes = max_body_bytes, max_inflight_bytes
        self.read_timeout_s, self.backlog = float(read_timeout_s), backlog
        self._parts: dict[int, Part] = {}
        self._locks: dict[int, threading.Lock] = {k: threading.Lock() for k in range(partition.n_splits)}
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None
        self.requests = 0
        self.refused_busy = 0
        # touched only on the event loop's thread: no lock needed
        self._pending = 0
        self._inflight_bytes = 0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def address(self) -> tuple[str, int]:
        """The address the service listens on."""
        return self.host, self.port

    def start(self) -> InferServer:
        """Bind, start serving in a background thread, and return once requests are answered."""
        import uvicorn

        sock = _listen(self.host, self.port, self.backlog)
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            backlog=self.backlog,
            timeout_keep_alive=5,
            timeout_graceful_shutdown=2,
            http=_protocol(self.read_timeout_s),
            ws="none",
            loop="asyncio",
            server_header=False,
            interface="asgi3",
            proxy_headers=False,
        )
        self._server = uvicorn.Server(config)
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="infer-part-b")
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="infer-server", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise InferServerError(f"the inference service did not start on {self.url}")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        """Stop listening and close every open connection (kept-alive clients see the service go away)."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        self._server = None

    def __enter__(self) -> InferServer:
        return self.start() if self._server is None else self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def serve_forever(self) -> None:
        """Block until Ctrl-C (used by ``kit model infer-serve``)."""
        if self._server is None:
            self.start()
        try:
            while self._thread is not None and self._thread.is_alive():
                self._thread.join(timeout=0.5)
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
        if not np.isfinite(activation).all():
            raise ValueError(f"split {k}: the activation holds NaN or infinity; send finite values")
        with self._locks[k]:
            part = self.part(k)
            t0 = time.perf_counter()
            outputs = part(activation)
            compute_ms = (time.perf_counter() - t0) * 1e3
        return {name: np.asarray(v)[0].tolist() for name, v in outputs.items()}, compute_ms

    # -- the ASGI application ------------------------------------------------------------------------
    async def app(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            status, payload, extra, network, request_bytes = await self._handle(scope, headers, receive)
        except _Refused as exc:
            status, payload, extra, network, request_bytes = exc.status, {"error": str(exc)}, exc.headers, None, 0
        body = json.dumps(payload).encode()
        if network is not None:
            # the link: round trip plus both bodies at the shaped bandwidth, on top of the compute time;
            # an asyncio sleep holds no thread, so a slow emulated link never blocks other clients
            delay_s = (network.rtt_ms + network.transfer_ms(request_bytes + len(body))) / 1e3
            await asyncio.sleep(delay_s)
        out = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        out += [(k.lower().encode(), str(v).encode()) for k, v in extra.items()]
        await send({"type": "http.response.start", "status": status, "headers": out})
        await send({"type": "http.response.body", "body": body})

    async def _handle(self, scope: dict, headers: dict[str, str], receive: Any) -> tuple:
        method, path = scope["method"], scope["path"].rstrip("/")
        if method == "GET" and path in ("/health", ""):
            from kit.ml.runtime import RUNTIME

            p = self.partition
            return (
                200,
                {
                    "ok": True,
                    "splits": p.n_splits,
                    "layers": p.layer_names,
                    "outputs": p.output_names,
                    "runtime": RUNTIME,
                    "busy": self._pending,
                    "capacity": self.workers + self.queue,
                },
                {},
                None,
                0,
            )
        if method != "POST":
            raise _Refused(
                404 if method == "GET" else 405,
                f"unknown {method} {scope['path']!r}; use GET /health, POST /ping or POST /infer/<split>",
            )
        parts = path.strip("/").split("/")
        ping = parts == ["ping"]
        if not ping and (len(parts) != 2 or parts[0] != "infer" or not parts[1].isdigit() or len(parts[1]) > 6):
            raise _Refused(404, f"unknown path {scope['path']!r}; use POST /ping or POST /infer/<split>")
        length = _content_length(headers, self.max_body_bytes)
        network = _network_from(headers, self.network)
        if network is not None:
            delay_s = (network.rtt_ms + network.transfer_ms(length + 4096)) / 1e3
            if delay_s > MAX_SHAPING_S:
                raise _Refused(
                    400,
                    f"X-Rtt-Ms/X-Bandwidth-Mbps ask for a {delay_s:.0f} s delay for {length} bytes; "
                    f"at most {MAX_SHAPING_S:g} s",
                )
        busy = {"Retry-After": str(RETRY_AFTER_S), "Connection": "close"}
        if self._pending >= self.workers + self.queue or self._inflight_bytes + length > self.max_inflight_bytes:
            self.refused_busy += 1
            raise _Refused(503, f"busy: {self._pending} requests in progress; retry after {RETRY_AFTER_S} s", busy)
        self._pending += 1
        self._inflight_bytes += length
        try:
            body = await self._read_body(receive, length)
            if ping:
                return 200, {"ok": True}, {}, network, length
            try:
                activation = decode(body, {_HEADER_NAMES.get(k, k): v for k, v in headers.items()})
                del body
                loop = asyncio.get_running_loop()
                outputs, compute_ms = await loop.run_in_executor(self._pool, self.infer, int(parts[1]), activation)
            except LookupError as exc:
                return 404, {"error": str(exc)}, {}, network, length
            except ValueError as exc:
                return 400, {"error": str(exc)}, {}, network, length
        finally:
            self._pending -= 1
            self._inflight_bytes -= length
        self.requests += 1
        return (
            200,
            {"outputs": outputs, "compute_ms": compute_ms},
            {"X-Compute-Ms": f"{compute_ms:.4f}"},
            network,
            length,
        )

    async def _read_body(self, receive: Any, length: int) -> bytes:
        chunks, got = [], 0
        while True:
            try:
                message = await asyncio.wait_for(receive(), timeout=self.read_timeout_s)
            except TimeoutError:
                raise _Refused(
                    408, f"the request body stopped arriving for {self.read_timeout_s:g} s", {"Connection": "close"}
                ) from None
            if message["type"] == "http.disconnect":
                raise _Refused(400, "the client went away")
            chunk = message.get("body", b"")
            got += len(chunk)
            if got > length:
                raise _Refused(400, f"the body is longer than its Content-Length {length}", {"Connection": "close"})
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        if got != length:
            raise _Refused(400, f"the body has {got} bytes, Content-Length said {length}", {"Connection": "close"})
        return b"".join(chunks)


# decode() reads the header names the client sent (X-Dtype, ...); ASGI gives them in lower case
_HEADER_NAMES = {"x-dtype": "X-Dtype", "x-shape": "X-Shape", "x-scale": "X-Scale"}


def _listen(host: str, port: int, backlog: int) -> socket.socket:
    """A listening socket, or one clear error (port taken, address not on this machine)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        raise InferServerError(
            f"can't listen on {host}:{port} ({exc.strerror or exc}); choose another --port (0 picks a free one)"
        ) from None
    sock.setblocking(False)
    return sock


def _protocol(read_timeout_s: float) -> type:
    """uvicorn's h11 protocol, plus a deadline for the request header: slow or silent clients are closed."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeaderTimeoutH11(H11Protocol):
        _deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._arm()

        def _arm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
            self._deadline = self.loop.call_later(read_timeout_s, self._expire)

        def _expire(self) -> None:
            # a request whose header has arrived is the app's business (it times the body itself)
            if (self.cycle is None or self.cycle.response_complete) and not self.transport.is_closing():
                self.transport.close()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm()  # the next request's header has read_timeout_s again

        def connection_lost(self, exc: Exception | None) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
            super().connection_lost(exc)

    return HeaderTimeoutH11


def _content_length(headers: dict[str, str], limit: int) -> int:
    if "transfer-encoding" in headers:
        raise _Refused(
            411, "send the body with a Content-Length (chunked bodies are not accepted)", {"Connection": "close"}
        )
    text = headers.get("content-length", "0").strip()
    if not text.isdigit() or len(text) > 15:
        raise _Refused(
            400, f"Content-Length must be a whole number of bytes, got {text[:40]!r}", {"Connection": "close"}
        )
    length = int(text)
    if length > limit:
        raise _Refused(413, f"Content-Length must be 0..{limit} bytes, got {length}", {"Connection": "close"})
    return length


def _header_number(headers: dict[str, str], name: str, low: float, high: float, unit: str) -> float | None:
    text = headers.get(name.lower())
    if text is None:
        return None
    try:
        value = float(text) if len(text) <= 32 else math.nan
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and low <= value <= high):
        raise _Refused(400, f"{name} must be a finite number of {unit} from {low:g} to {high:g}, got {text[:40]!r}")
    return value


def _network_from(headers: dict[str, str], default: Network | None) -> Network | None:
    bw = _header_number(headers, "X-Bandwidth-Mbps", MIN_BANDWIDTH_MBPS, MAX_BANDWIDTH_MBPS, "Mbit/s")
    rtt = _header_number(headers, "X-Rtt-Ms", 0.0, MAX_RTT_MS, "ms")
    if bw is None and rtt is None:
        return default
    return Network(
        bandwidth_mbps=bw if bw is not None else (default.bandwidth_mbps if default else MAX_BANDWIDTH_MBPS),
        rtt_ms=rtt if rtt is not None else (default.rtt_ms if default else 0.0),
    )


class ServiceBusy(ConnectionError):
    """The service answered 503 (saturated) for longer than the client's timeout: treat it like unreachable."""


class InferClient:
    """Talks to an :class:`InferServer` (one kept-alive connection per client; not shared between threads).

    ``infer`` raises ``ValueError`` with the service's message for a bad request (wrong shape), and
    ``OSError``/``TimeoutError`` when the service is unreachable or slower than ``timeout`` seconds. A
    saturated service answers 503 with ``Retry-After``: the client waits and asks again, and raises
    ``ServiceBusy`` (an ``OSError``) if it is still busy after ``timeout`` seconds.

        >>> client = InferClient("http://127.0.0.1:40123", timeout=2.0)  # doctest: +SKIP
        >>> outputs, info = client.infer(3, body, headers)  # doctest: +SKIP
        >>> info["compute_ms"], info["response_bytes"]  # doctest: +SKIP
    """

    def __init__(self, url: str, *, timeout: float = 5.0) -> None:
        parsed = urlparse(url)
        if parsed.scheme != "http" or not parsed.hostname:
            raise ValueError(f"InferClient needs an http://host:port URL, got {url!r}")
        self.host, self.port = parsed.hostname, parsed.port or 80
        self.timeout = timeout
        self._conn: http.client.HTTPConnection | None = None

    def _request(self, method: str, path: str, body: bytes = b"", headers: dict | None = None) -> tuple[int, bytes]:
        """One request; a busy service (503) is asked again after its Retry-After, within ``timeout`` seconds."""
        deadline = time.monotonic() + self.timeout
        while True:
            status, reply, retry_after = self._request_once(method, path, body, headers)
            if status != 503 or retry_after is None:
                return status, reply
            wait = min(retry_after, deadline - time.monotonic())
            if wait <= 0:
                raise ServiceBusy(
                    f"the inference service at {self.host}:{self.port} stayed busy for {self.timeout:g} s (503)"
                )
            time.sleep(wait)

    def _request_once(
        self, method: str, path: str, body: bytes, headers: dict | None
    ) -> tuple[int, bytes, float | None]:
        for attempt in (0, 1):
            if self._conn is None:
                self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
                self._conn.connect()
                self._conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                self._conn.request(method, path, body=body, headers=headers or {})
                response = self._conn.getresponse()
                reply = response.read()
                if response.will_close:
                    self.close()
                retry_after = response.getheader("Retry-After")
                try:
                    wait = min(max(float(retry_after), 0.0), 60.0) if retry_after is not None else None
                except ValueError:
                    wait = 1.0
                return response.status, reply, wait
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

    def infer(
        self, split: int, body: bytes, headers: dict[str, str], *, network: Network | None = None
    ) -> tuple[dict[str, np.ndarray], dict]:
        status, reply = self._request("POST", f"/infer/{int(split)}", body, {**headers, **self._shaping(network)})
        try:
            payload = json.loads(reply)
        except ValueError:
            raise ConnectionError(f"the inference service answered {status} with {reply[:80]!r}, not JSON") from None
        if status != 200:
            raise ValueError(f"inference service refused split {split}: {payload.get('error', reply[:200])}")
        outputs = {name: np.asarray(v, dtype=np.float32) for name, v in payload["outputs"].items()}
        return outputs, {"compute_ms": float(payload["compute_ms"]), "response_bytes": len(reply)}

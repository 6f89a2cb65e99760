"""Phase-change lateness of the running app on the real clock, with the cloud healthy, hung or refusing.

The faults are real sockets: :class:`HungEndpoint` listens and never answers (the kernel completes the TCP
handshake, no byte ever comes back: the worst case for a client without timeouts); :func:`refused_port` is a
loopback port nobody listens on (connection refused at once). :func:`measure` runs the intersection app in
real time (simulated pins, wall-clock ticks) against one endpoint and returns the lateness of every tick
and every phase change, in milliseconds. ``bench/control_latency.py`` prints the three side by side.

    >>> with HungEndpoint() as hung:
    ...     hung.url.startswith("http://127.0.0.1:")
    True
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any


class HungEndpoint:
    """A loopback TCP port that accepts connections and never answers (an endpoint that hangs)."""

    def __init__(self, port: int = 0) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(128)  # the kernel completes handshakes into the backlog; nothing ever reads them
        self.port = self.sock.getsockname()[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> HungEndpoint:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def refused_port() -> int:
    """A loopback port with nothing listening (connections are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Lateness:
    """Milliseconds each scheduled moment came late: every tick, and the ticks that changed phase."""

    ticks_ms: list[float] = field(default_factory=list)
    phase_changes_ms: list[float] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)

    @staticmethod
    def percentile(values: list[float], q: float) -> float | None:
        if not values:
            return None
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]

    def row(self) -> dict[str, Any]:
        p = self.percentile
        return {
            "ticks": len(self.ticks_ms),
            "phase_changes": len(self.phase_changes_ms),
            "tick_p50_ms": p(self.ticks_ms, 50),
            "tick_p99_ms": p(self.ticks_ms, 99),
            "phase_p50_ms": p(self.phase_changes_ms, 50),
            "phase_p99_ms": p(self.phase_changes_ms, 99),
            "max_ms": max(self.ticks_ms, default=None),
        }


#: Short, legal timings so a short run holds many phase changes (fixed plan: 16 s cycles).
FAST_PLAN = {
    "control_mode": "fixed",
    "car_green_s": 5,
    "car_amber_s": 3,
    "all_red_s": 1,
    "ped_green_s": 4,
    "ped_clear_s": 2,
    "car_red_amber_s": 1,
    "sample_period_s": 0.1,
    "upload_max_age_s": 10,
    "upload_batch_size": 50,
}


def measure(
    store: Any,
    seconds: float,
    *,
    cloud: bool = True,
    mqtt: bool = False,
    seed: int = 0,
    params: dict[str, Any] | None = None,
    during: Any = None,
    final_sync_s: float = 15.0,
) -> Lateness:
    """Run the app for ``seconds`` of wall time on the real clock; return its lateness.

    The cloud configuration in use (:func:`kit.cloud.config.current`) decides which endpoint it meets.
    ``during(app, elapsed_s)``, if given, is called from a side thread about every 0.1 s (e.g. to heal an
    endpoint half-way).
    """
    from kit.apps.intersection import AppOptions, IntersectionApp

    store.params.update({**FAST_PLAN, **(params or {})}, source="lab")
    app = IntersectionApp(
        store,
        AppOptions(
            seed=seed,
            start="2026-10-15T08:00:00",
            realtime=True,
            model=None,
            cloud=cloud,
            mqtt=mqtt,
            resume=False,
            poll_s=1.0,
            final_sync_s=final_sync_s,
            sync_period_s=5.0,
            flush_every_s=0.2,
        ),
    )
    result = Lateness()
    inner = app._tick_work

    def work() -> None:
        result.ticks_ms.append(1000 * app.controller.lateness_now())
        inner()

    app._tick_work = work
    done = threading.Event()
    if during is not None:

        def side() -> None:
            t0 = time.monotonic()
            while not done.wait(0.1):
                during(app, time.monotonic() - t0)

        threading.Thread(target=side, daemon=True).start()
    timer = threading.Timer(seconds, app.stop)
    timer.start()
    try:
        result.summary = app.run()
    finally:
        done.set()
        timer.cancel()
        app.close()
    result.phase_changes_ms = [1000 * x for x in app.controller.lateness_s]
    return result

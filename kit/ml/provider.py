"""One data provider: a single camera capture per tick, shared by every task that needs a frame.

On the kit several jobs look at the camera at once: the queue detector, the pedestrian detector,
a logger. If each one grabs its own frame the camera is read three times per tick (on a Pi each
capture costs sensor readout, debayering and copying; in simulation, rendering), and the three
tasks may disagree because they looked at three different instants. A :class:`FrameProvider`
captures once per tick, under a lock, and hands the same read-only frame to everyone.

    >>> from kit.sim.world import World
    >>> from kit.sim.camera import SimCamera
    >>> provider = FrameProvider(SimCamera(World(seed=0)))
    >>> provider.tick()
    1
    >>> a = provider.frame(); b = provider.frame()
    >>> a is b, provider.captures
    (True, 1)

:func:`run_tasks` runs tasks concurrently (one thread each) for some ticks, either through a
provider (``shared=True``) or with each task capturing for itself, and measures captures per
second and the process CPU time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Task = Callable[[np.ndarray], Any]


class FrameProvider:
    """Captures at most one frame per tick from ``camera`` and shares it (read-only) between callers.

    >>> provider = FrameProvider(board.camera)  # doctest: +SKIP
    >>> provider.tick()                   # the application's loop starts a tick  # doctest: +SKIP
    >>> frame = provider.frame()          # first caller this tick: one capture  # doctest: +SKIP
    >>> provider.frame() is frame         # everyone else: the same frame  # doctest: +SKIP
    True
    """

    def __init__(self, camera: Any) -> None:
        if not callable(getattr(camera, "capture", None)):
            raise TypeError(f"FrameProvider needs a camera with capture() (kit.camera.open_camera), got {camera!r}")
        self.camera = camera
        self.captures = 0
        self._tick = 0
        self._frame: np.ndarray | None = None
        self._frame_tick = -1
        self._lock = threading.Lock()

    @property
    def current_tick(self) -> int:
        return self._tick

    def tick(self) -> int:
        """Start a new tick: the next ``frame()`` captures a fresh frame. Returns the tick number."""
        with self._lock:
            self._tick += 1
            return self._tick

    def frame(self) -> np.ndarray:
        """This tick's frame, captured on the first call of the tick (read-only: tasks share it)."""
        with self._lock:
            if self._frame_tick != self._tick:
                frame = np.asarray(self.camera.capture())
                frame.setflags(write=False)
                self._frame, self._frame_tick = frame, self._tick
                self.captures += 1
            return self._frame  # type: ignore[return-value]


class _CountingCamera:
    """Each task capturing for itself: one capture per call, one at a time (a camera has one reader)."""

    def __init__(self, camera: Any) -> None:
        self.camera = camera
        self.captures = 0
        self._lock = threading.Lock()

    def frame(self) -> np.ndarray:
        with self._lock:
            self.captures += 1
            return np.asarray(self.camera.capture())


@dataclass
class RunStats:
    """What one :func:`run_tasks` run measured."""

    shared: bool
    ticks: int
    captures: int
    wall_s: float
    cpu_s: float
    results: dict[str, list[Any]] = field(default_factory=dict)
    same_frame_ticks: int = 0

    @property
    def captures_per_s(self) -> float:
        return self.captures / self.wall_s if self.wall_s else 0.0

    @property
    def captures_per_tick(self) -> float:
        return self.captures / self.ticks if self.ticks else 0.0

    @property
    def cpu_ms_per_tick(self) -> float:
        return 1e3 * self.cpu_s / self.ticks if self.ticks else 0.0


def run_tasks(
    camera: Any,
    tasks: dict[str, Task],
    *,
    ticks: int,
    shared: bool = True,
    world: Any = None,
    seconds_per_tick: float = 1.0,
) -> RunStats:
    """Run every task once per tick, concurrently (one thread each), for ``ticks`` ticks.

    ``shared=True``: the tasks get their frame from one :class:`FrameProvider` (one capture per tick);
    ``shared=False``: each task captures its own frame. When ``world`` is given it advances by
    ``seconds_per_tick`` before each tick. CPU time is the whole process's (``time.process_time``).
    """
    if ticks < 1:
        raise ValueError(f"ticks must be >= 1, got {ticks!r}")
    if not tasks:
        raise ValueError("tasks is empty: give a dict of name -> function(frame)")
    source: FrameProvider | _CountingCamera = FrameProvider(camera) if shared else _CountingCamera(camera)
    results: dict[str, list[Any]] = {name: [] for name in tasks}
    same = 0

    def job(task: Task) -> tuple[Any, np.ndarray]:
        frame = source.frame()
        return task(frame), frame

    wall0, cpu0 = time.perf_counter(), time.process_time()
    with ThreadPoolExecutor(max_workers=len(tasks), thread_name_prefix="task") as pool:
        for _ in range(ticks):
            if world is not None:
                world.advance(seconds_per_tick)
            if shared:
                source.tick()  # type: ignore[union-attr]
            futures = {name: pool.submit(job, task) for name, task in tasks.items()}
            frames = []
            for name, future in futures.items():
                value, frame = future.result()
                results[name].append(value)
                frames.append(frame)
            same += all(f is frames[0] for f in frames)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    return RunStats(shared, ticks, source.captures, wall, cpu, results, same)


def standard_tasks(host: Any, log: list | None = None) -> dict[str, Task]:
    """The kit's three camera tasks: queue class and pedestrian waiting (one ``ModelHost`` each call) and a logger.

    The two detectors call the model on their frame; the logger keeps the mean brightness.
    """
    log = [] if log is None else log

    def queue(frame: np.ndarray) -> int:
        return int(np.argmax(host.predict(frame)["queue"][0]))

    def pedestrian(frame: np.ndarray) -> bool:
        return bool(host.predict(frame)["pedestrian"][0, 0] >= 0.5)

    def logger(frame: np.ndarray) -> float:
        value = float(frame.mean())
        log.append(value)
        return value

    return {"queue": queue, "pedestrian": pedestrian, "logger": logger}

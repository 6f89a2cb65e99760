"""One clock for the whole kit: simulated (the world's time, as fast as you like) or real (the wall clock).

Controllers and the app ask the clock what time it is and how to let time pass, instead of checking
``board.world`` in several places. ``now()`` is Unix epoch seconds (UTC; simulated time in simulation),
``elapsed()`` the seconds since the clock was made (monotonic), ``wait(s)`` lets ``s`` seconds pass and
``wait_until(t)`` waits until ``elapsed()`` reaches ``t`` (schedules against absolute times do not
drift, however long each tick's work takes).

    >>> from kit import Board
    >>> from kit.clock import clock_for
    >>> with Board(seed=0) as board:
    ...     clock = clock_for(board)
    ...     clock.wait(90)
    ...     clock.elapsed(), clock.simulated
    (90.0, True)
"""

from __future__ import annotations

import threading
import time
from datetime import UTC
from typing import Any


class Clock:
    """The interface: ``now()``, ``elapsed()``, ``wait(seconds)``, ``wait_until(elapsed_s)``, ``simulated``."""

    simulated: bool = False

    def now(self) -> float:  # pragma: no cover - interface
        raise NotImplementedError

    def elapsed(self) -> float:  # pragma: no cover - interface
        raise NotImplementedError

    def wait(self, seconds: float) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def lateness(self, elapsed_s: float) -> float:
        """How late (wall-clock seconds) this moment is for something due at ``elapsed_s``."""
        return 0.0

    def anchor(self) -> None:
        """Start the schedule now: the time spent before (loading a model, say) is not counted as lateness."""

    def wait_until(self, elapsed_s: float) -> None:
        """Wait until :meth:`elapsed` reaches ``elapsed_s`` (no wait when it already has)."""
        left = elapsed_s - self.elapsed()
        if left > 0:
            self.wait(left)


class SimClock(Clock):
    """The simulated world's time: :meth:`wait` advances the world (pins and sensors follow).

    With ``realtime=True`` each wait also sleeps as long on the wall clock (a live demo); ``speed=600`` paces
    the world at 600 simulated seconds per wall second (a day in 2.4 minutes: accelerated, yet the app's
    wall-clock workers, faults and ``kit status`` keep a fixed relation to simulated time). Without either the
    world runs as fast as the machine allows.
    """

    simulated = True

    def __init__(self, world: Any, *, realtime: bool = False, speed: float | None = None) -> None:
        if speed is not None and not (0 < speed < float("inf")):
            from kit.errors import UsageError

            raise UsageError(f"speed={speed!r}: give simulated seconds per wall second, a positive number")
        self.world = world
        self.speed = 1.0 if realtime and speed is None else speed
        #: paced against the wall clock (real time or accelerated), as opposed to as fast as possible
        self.realtime = self.speed is not None
        self._start = world.elapsed
        self._wall_start = time.monotonic()

    def now(self) -> float:
        return self.world.now.replace(tzinfo=UTC).timestamp()

    def elapsed(self) -> float:
        return self.world.elapsed - self._start

    def wait(self, seconds: float) -> None:
        if seconds > 0:
            self.wait_until(self.elapsed() + seconds)

    def wait_until(self, elapsed_s: float) -> None:
        left = elapsed_s - self.elapsed()
        if left <= 0:
            return
        if self.speed is not None:
            # Against the wall clock's absolute schedule: slow work in one tick is made up in the next.
            pause = self._wall_start + elapsed_s / self.speed - time.monotonic()
            if pause > 0:
                time.sleep(pause)
        self.world.advance(left)

    def anchor(self) -> None:
        self._wall_start = time.monotonic() - self.elapsed() / (self.speed or 1.0)

    def lateness(self, elapsed_s: float) -> float:
        """Wall-clock seconds since ``elapsed_s`` was due (paced runs only; 0 as fast as possible)."""
        if self.speed is None:
            return 0.0
        return time.monotonic() - (self._wall_start + elapsed_s / self.speed)

    def __repr__(self) -> str:
        pace = "" if self.speed is None else " realtime" if self.speed == 1 else f" x{self.speed:g}"
        return f"<SimClock {self.world.now:%Y-%m-%d %H:%M:%S}{pace}>"


class RealClock(Clock):
    """The wall clock. :meth:`wait` returns early when ``stop`` (a ``threading.Event``) is set.

    >>> clock = RealClock()
    >>> clock.wait(0.01); clock.elapsed() >= 0.01
    True
    """

    simulated = False

    def __init__(self, stop: threading.Event | None = None) -> None:
        self.stop = stop or threading.Event()
        self._start = time.monotonic()

    def now(self) -> float:
        return time.time()

    def elapsed(self) -> float:
        return time.monotonic() - self._start

    def wait(self, seconds: float) -> None:
        if seconds > 0:
            self.stop.wait(seconds)

    def lateness(self, elapsed_s: float) -> float:
        """Seconds since ``elapsed_s`` was due."""
        return self.elapsed() - elapsed_s

    def wait_until(self, elapsed_s: float) -> None:
        # Event.wait may wake a little early; wait again for the rest so a deadline is never met early.
        while not self.stop.is_set():
            left = elapsed_s - self.elapsed()
            if left <= 0:
                return
            self.stop.wait(left)

    def __repr__(self) -> str:
        return f"<RealClock elapsed={self.elapsed():.3f}s>"


def clock_for(
    board: Any, *, realtime: bool = False, speed: float | None = None, stop: threading.Event | None = None
) -> Clock:
    """The clock a board runs on: the simulated world's, or the wall clock for real pins.

    ``realtime=True`` with a simulated board runs the world at wall-clock speed, ``speed=N`` N times faster.
    """
    world = getattr(board, "world", None)
    if world is not None:
        return SimClock(world, realtime=realtime, speed=speed)
    return RealClock(stop)

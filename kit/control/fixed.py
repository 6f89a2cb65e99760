"""A fixed-time signal plan: the same sequence of phases, each for a set time, round and round.

It is the baseline every smarter controller in the course is measured against. It drives the
board's lights only (a gpiozero ``TrafficLights`` and the pedestrian ``LEDBoard``), so it runs the
same on a Pi (waiting in real time) and in simulation (advancing the world).

    >>> from kit import Board
    >>> from kit.control.fixed import FixedTimeController, Timings
    >>> with Board(seed=0) as board:
    ...     controller = FixedTimeController(board, Timings(car_green_s=20))
    ...     controller.run(minutes=10)
    ...     board.world.stats.served_vehicles > 0
    True
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True)
class Timings:
    """Seconds each phase lasts (names as in the kit's stored parameters)."""

    car_green_s: float = 30.0
    car_amber_s: float = 3.0
    all_red_s: float = 2.0
    ped_green_s: float = 8.0
    ped_clear_s: float = 4.0
    car_red_amber_s: float = 2.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"Timings.{f.name}={value!r}: every phase needs a positive number of seconds")

    @property
    def cycle_s(self) -> float:
        """Length of one full cycle."""
        return sum(getattr(self, f.name) for f in fields(self))


@dataclass(frozen=True)
class Phase:
    """One step of the plan: what the car and pedestrian lights show, and which timing sets its length."""

    name: str
    car: str  # "green", "amber", "red", "red_amber"
    ped: str  # "red", "green"
    timing: str  # a field of Timings


PLAN: tuple[Phase, ...] = (
    Phase("car_green", "green", "red", "car_green_s"),
    Phase("car_amber", "amber", "red", "car_amber_s"),
    Phase("all_red", "red", "red", "all_red_s"),
    Phase("ped_green", "red", "green", "ped_green_s"),
    Phase("ped_clear", "red", "red", "ped_clear_s"),
    Phase("car_red_amber", "red_amber", "red", "car_red_amber_s"),
)
CAR_LAMPS = {
    "green": (0, 0, 1),
    "amber": (0, 1, 0),
    "red": (1, 0, 0),
    "red_amber": (1, 1, 0),
}


def show(board: Any, phase: Phase) -> None:
    """Light the board's lamps for ``phase`` (all lamps set at once, so no wrong combination shows)."""
    board.car_light.value = CAR_LAMPS[phase.car]  # (red, amber, green)
    board.ped_light.value = (1, 0) if phase.ped == "red" else (0, 1)  # (red, green)


class FixedTimeController:
    """Runs :data:`PLAN` on a board with the given :class:`Timings`.

    :param board: a :class:`kit.board.Board`.
    :param timings: phase lengths.
    :param wait: how to let time pass; default: ``board.world.advance`` in simulation, ``time.sleep`` on a Pi.
    """

    def __init__(self, board: Any, timings: Timings | None = None, *, wait: Callable[[float], Any] | None = None):
        self.board = board
        self.timings = timings or Timings()
        if wait is None:
            wait = board.world.advance if getattr(board, "world", None) is not None else time.sleep
        self.wait = wait
        self.index = 0
        self._phase_done = 0.0  # seconds of the current phase already shown
        self.phase_log: list[tuple[str, float]] = []

    @property
    def phase(self) -> Phase:
        return PLAN[self.index]

    def run(self, seconds: float = 0, *, minutes: float = 0, hours: float = 0) -> None:
        """Run the plan for this long (the last phase is cut short at the end)."""
        left = float(seconds) + 60.0 * minutes + 3600.0 * hours
        if left < 0:
            raise ValueError(f"run() needs a positive duration, got {left} s")
        while left > 1e-9:
            phase = self.phase
            # A phase cut short by the end of one run() goes on where it stopped in the next.
            remaining = getattr(self.timings, phase.timing) - self._phase_done
            duration = min(left, remaining)
            show(self.board, phase)
            self.phase_log.append((phase.name, duration))
            self.wait(duration)
            left -= duration
            self._phase_done += duration
            if self._phase_done >= getattr(self.timings, phase.timing) - 1e-9:
                self.index = (self.index + 1) % len(PLAN)
                self._phase_done = 0.0

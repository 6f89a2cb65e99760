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

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any


def _default(name: str) -> float:
    from kit.store.defaults import PARAMETERS

    return float(PARAMETERS[name].default)


@dataclass(frozen=True)
class Timings:
    """Seconds each phase lasts (names and defaults as in the kit's stored parameters, ``kit/store/defaults.py``)."""

    car_green_s: float = _default("car_green_s")
    car_amber_s: float = _default("car_amber_s")
    all_red_s: float = _default("all_red_s")
    ped_green_s: float = _default("ped_green_s")
    ped_clear_s: float = _default("ped_clear_s")
    car_red_amber_s: float = _default("car_red_amber_s")

    @classmethod
    def from_params(cls, params: Any) -> Timings:
        """The fields this class knows, from a parameter mapping (``store.params.all()``, live parameters)."""
        return cls(**{f.name: float(params[f.name]) for f in fields(cls) if _has(params, f.name)})

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


#: Shown once when a controller starts: all red for the clearance time, whatever was shown before.
STARTUP = Phase("startup", "red", "red", "all_red_s")

PLAN: tuple[Phase, ...] = (
    Phase("car_green", "green", "red", "car_green_s"),
    Phase("car_amber", "amber", "red", "car_amber_s"),
    Phase("all_red", "red", "red", "all_red_s"),
    Phase("ped_green", "red", "green", "ped_green_s"),
    Phase("ped_clear", "red", "red", "ped_clear_s"),
    Phase("car_red_amber", "red_amber", "red", "car_red_amber_s"),
)


def _has(params: Any, name: str) -> bool:
    try:
        params[name]
    except (KeyError, TypeError):
        return False
    return True


def show(board: Any, phase: Phase) -> None:
    """Light the board's lamps for ``phase`` through the board's conflict monitor (an unsafe change is refused)."""
    monitor_for(board).request(phase.car, phase.ped)


def monitor_for(board: Any, clock: Any = None) -> Any:
    """The board's one :class:`~kit.control.monitor.ConflictMonitor` (made on first use): every controller
    of a board goes through the same monitor, so switching controllers cannot skip a clearance."""
    monitor = getattr(board, "conflict_monitor", None)
    if monitor is None:
        from kit.clock import clock_for
        from kit.control.monitor import ConflictMonitor

        monitor = ConflictMonitor(board, clock or clock_for(board))
        board.conflict_monitor = monitor
    return monitor


def start_sequence(monitor: Any) -> list[Phase]:
    """The phases that bring whatever the lamps show now safely to all red (then a plan may start)."""
    car = monitor.shown[0]
    if car in ("green", "amber"):
        return [PLAN[1], STARTUP]  # amber first: green never goes straight to red
    return [STARTUP]


class FixedTimeController:
    """Runs :data:`PLAN` on a board with the given :class:`Timings`, or live from the store's parameters.

    :param board: a :class:`kit.board.Board`.
    :param timings: phase lengths (default: the parameter table's defaults).
    :param params: a parameter mapping read at the start of each phase (``store.params.live()``): a change
        takes effect at the next phase. Wins over ``timings``.
    :param wait: how to let time pass; default: the board's clock (:func:`kit.clock.clock_for`).

    Before the plan, the lamps show all red for ``all_red_s`` (the start-up clearance): the board's
    conflict monitor allows no green without it.
    """

    def __init__(
        self,
        board: Any,
        timings: Timings | None = None,
        *,
        params: Any = None,
        wait: Callable[[float], Any] | None = None,
        clock: Any = None,
    ):
        from kit.clock import clock_for

        self.board = board
        self.params = params
        self.timings = Timings.from_params(params) if params is not None else (timings or Timings())
        self.timebase = clock or clock_for(board)
        self.wait = wait or self.timebase.wait
        self.monitor = (
            monitor_for(board, self.timebase)
            if hasattr(board, "car_light") and hasattr(board.car_light, "__iter__")
            else None
        )
        self._queue: list[Phase] = start_sequence(self.monitor) if self.monitor is not None else []
        self.index = 0
        self._phase_done = 0.0  # seconds of the current phase already shown
        self.phase_log: list[tuple[str, float]] = []

    @classmethod
    def from_params(cls, board: Any, params: Any, **kwargs: Any) -> FixedTimeController:
        """A controller reading its timings live from ``params`` (a :class:`kit.store.Store`'s ``params``,
        its ``params.live()``, or any mapping)."""
        return cls(board, params=_live(params), **kwargs)

    @property
    def phase(self) -> Phase:
        return self._queue[0] if self._queue else PLAN[self.index]

    def _length(self, phase: Phase) -> float:
        return float(getattr(self.timings, phase.timing))

    def _show(self, phase: Phase) -> None:
        if self.monitor is not None:
            self.monitor.request(phase.car, phase.ped)
        else:  # lamps without a monitor (a stand-in board in a test)
            self.board.car_light.value = {
                "green": (0, 0, 1),
                "amber": (0, 1, 0),
                "red": (1, 0, 0),
                "red_amber": (1, 1, 0),
            }[phase.car]
            self.board.ped_light.value = (1, 0) if phase.ped == "red" else (0, 1)

    def run(self, seconds: float = 0, *, minutes: float = 0, hours: float = 0) -> None:
        """Run the plan for this long (the last phase is cut short at the end)."""
        left = float(seconds) + 60.0 * minutes + 3600.0 * hours
        if left < 0:
            raise ValueError(f"run() needs a positive duration, got {left} s")
        while left > 1e-9:
            phase = self.phase
            if self._phase_done == 0.0 and self.params is not None:
                self.timings = Timings.from_params(self.params)  # live: takes effect from this phase on
            # A phase cut short by the end of one run() goes on where it stopped in the next.
            remaining = self._length(phase) - self._phase_done
            duration = min(left, remaining)
            self._show(phase)
            if not self._queue:  # the start-up clearance is not part of the plan's log
                self.phase_log.append((phase.name, duration))
            self.wait(duration)
            left -= duration
            self._phase_done += duration
            if self._phase_done >= self._length(phase) - 1e-9:
                if self._queue:
                    self._queue.pop(0)
                else:
                    self.index = (self.index + 1) % len(PLAN)
                self._phase_done = 0.0


def _live(params: Any) -> Any:
    # A Params object (store.params) becomes its in-memory live view; mappings are used as they are.
    return params.live() if hasattr(params, "live") else params

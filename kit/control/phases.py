"""The kit's phase plan as a machine a controller can only ask to *keep* or *advance*.

Every controller on the SUMO junction (fixed-time, the kit's adaptive rule, actuated, max-pressure,
the learned policy) is a function ``policy(view) -> bool``: True asks to end the current green. The
machine owns the safety rules the conflict monitor enforces: amber, all-red, red-amber and the
pedestrian clearance run for their fixed times, and no green ends before its minimum. So a policy,
even a learned one, can choose *when*, never *what*: it cannot skip a clearance or show a conflict.

    >>> machine = PhaseMachine()
    >>> machine.phase, machine.lamps
    ('car_green', ('green', 'red'))
    >>> machine.tick(advance=True, dt=1.0)     # before the minimum green: refused
    >>> machine.phase
    'car_green'
    >>> for _ in range(10): machine.tick(advance=True, dt=1.0)
    >>> machine.phase
    'car_amber'
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields

from kit.errors import UsageError

#: (phase, car lamp, pedestrian lamp) in the kit's order (as kit.control.fixed.PLAN).
PLAN: tuple[tuple[str, str, str], ...] = (
    ("car_green", "green", "red"),
    ("car_amber", "amber", "red"),
    ("all_red", "red", "red"),
    ("ped_green", "red", "green"),
    ("ped_clear", "red", "red"),
    ("car_red_amber", "red_amber", "red"),
)
GREENS = ("car_green", "ped_green")


@dataclass(frozen=True)
class Minimums:
    """Fixed clearance times and minimum greens in seconds (the kit's stored defaults)."""

    car_green_s: float = 10.0  #: minimum car green (min_green_s)
    car_amber_s: float = 3.0
    all_red_s: float = 2.0
    ped_green_s: float = 7.0  #: minimum walk (and side-road) green
    ped_clear_s: float = 5.0
    car_red_amber_s: float = 2.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise UsageError(f"Minimums.{f.name}={value!r}: give a positive number of seconds")

    def of(self, phase: str) -> float:
        return getattr(self, f"{phase.removesuffix('_green')}_green_s" if phase in GREENS else f"{phase}_s")


@dataclass
class View:
    """What a policy sees at one decision (filled by the driver from the junction's sensors).

    Queues and approaching counts are per inbound arm (``w2c`` is the kit's own approach).
    """

    phase: str
    phase_s: float
    queues: dict[str, int] = field(default_factory=dict)  #: halting vehicles (stop-line detectors)
    approaching: dict[str, int] = field(default_factory=dict)  #: moving vehicles near the stop line (loops)
    vehicles: dict[str, int] = field(default_factory=dict)  #: vehicles on the arm's 200 m (lane-area detectors)
    peds_waiting: int = 0  #: pedestrians at the kerb (PIR, camera)
    ped_wait_s: float = 0.0  #: since the oldest unserved crossing request (the button's timer)
    hour: float = 12.0  #: local time of day
    #: the ultrasonic sensor's reading on the kit's approach (model metres; None: the tail of ``queues["w2c"]``)
    echo_m: float | None = None
    #: per arm, how far from the stop line each car the camera sees driving in is (m, nearest first)
    moving: dict[str, tuple[float, ...]] = field(default_factory=dict)


Policy = Callable[[View], bool]


class PhaseMachine:
    """Runs :data:`PLAN`: fixed phases time out, greens end when asked and past their minimum."""

    def __init__(self, minimums: Minimums | None = None) -> None:
        self.minimums = minimums or Minimums()
        self.index = 0
        self.phase_s = 0.0
        self.changes = 0

    @property
    def phase(self) -> str:
        return PLAN[self.index][0]

    @property
    def lamps(self) -> tuple[str, str]:
        """(car lamp, pedestrian lamp) to show now."""
        return PLAN[self.index][1], PLAN[self.index][2]

    @property
    def can_advance(self) -> bool:
        """True in a green past its minimum (the only moment a policy's choice matters)."""
        return self.phase in GREENS and self.phase_s >= self.minimums.of(self.phase) - 1e-9

    def tick(self, *, advance: bool, dt: float) -> None:
        """Let ``dt`` pass after applying the decision: a fixed phase that has timed out always moves on."""
        if self.phase in GREENS:
            if advance and self.can_advance:
                self._next()
        elif self.phase_s >= self.minimums.of(self.phase) - 1e-9:
            self._next()
        self.phase_s += dt

    def _next(self) -> None:
        self.index = (self.index + 1) % len(PLAN)
        self.phase_s = 0.0
        self.changes += 1

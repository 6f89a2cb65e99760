"""An actuated signal plan: the cars keep green until someone needs them to stop.

One approach of the intersection has a single conflicting movement, the pedestrians. A fixed-time plan
stops the cars for a pedestrian phase every cycle, wanted or not; this controller rests on car green and
serves the crossing only when it has been requested (button, or the PIR sees someone waiting), at a
moment that costs the cars least: once the queue has cleared, or when the pedestrians have waited long
enough. The decision is a small pure function, :func:`actuated_policy`, so it can be tested on its own,
swapped for the student's (lab 09), or fed by the camera model instead of the ultrasonic sensor.

    >>> from kit import Board
    >>> from kit.control.adaptive import AdaptiveController
    >>> with Board(seed=0) as board:
    ...     controller = AdaptiveController(board)
    ...     controller.run(minutes=10)
    ...     board.world.stats.served_vehicles > 0
    True
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from kit.control.fixed import PLAN, Phase, show


@dataclass(frozen=True)
class AdaptiveTimings:
    """Phase lengths and limits, in seconds (names as in the kit's stored parameters)."""

    car_amber_s: float = 3.0
    all_red_s: float = 2.0
    ped_green_s: float = 7.0
    ped_clear_s: float = 5.0
    car_red_amber_s: float = 2.0
    min_green_s: float = 10.0
    max_green_s: float = 60.0
    #: Longest a pedestrian request waits for a gap in the queue before the cars are stopped anyway.
    ped_max_wait_s: float = 20.0
    #: Shortest car green at night, when a waiting pedestrian is served almost at once.
    night_min_green_s: float = 5.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"AdaptiveTimings.{f.name}={value!r}: give a positive number of seconds")
        if self.min_green_s > self.max_green_s:
            raise ValueError(
                f"min_green_s={self.min_green_s} exceeds max_green_s={self.max_green_s}: lower min or raise max"
            )

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> AdaptiveTimings:
        """Take the fields this class knows from a parameter mapping (e.g. ``store.params.all()``)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: float(v) for k, v in params.items() if k in known})


@dataclass(frozen=True)
class Observation:
    """What the controller knows when it decides whether to end the car green."""

    phase_s: float  #: seconds the car light has been green
    queue: bool  #: a queue stands at the stop line (ultrasonic sensor, or the camera model)
    ped_request: bool  #: a crossing was requested and not yet served
    ped_wait_s: float  #: seconds since the oldest unserved request (0 when none)
    night: bool  #: night mode (little light)


def actuated_policy(obs: Observation, timings: AdaptiveTimings) -> bool:
    """True when the car green should end now so that the pedestrians can cross.

    >>> t = AdaptiveTimings()
    >>> actuated_policy(Observation(phase_s=100, queue=False, ped_request=False, ped_wait_s=0, night=False), t)
    False
    >>> actuated_policy(Observation(phase_s=12, queue=False, ped_request=True, ped_wait_s=3, night=False), t)
    True
    """
    if not obs.ped_request:
        return False  # nobody needs the cars to stop: rest on green
    min_green = timings.night_min_green_s if obs.night else timings.min_green_s
    if obs.phase_s < min_green:
        return False
    if not obs.queue:
        return True  # a gap: the crossing costs the cars nothing now
    return obs.ped_wait_s >= timings.ped_max_wait_s or obs.phase_s >= timings.max_green_s


Policy = Callable[[Observation, AdaptiveTimings], bool]


def _read(get: Callable[[], Any]) -> Any:
    # gpiozero's sampling thread may append to a smoothed sensor's queue while the average is being
    # computed ("deque mutated during iteration"); the next attempt sees a settled queue.
    for _ in range(4):
        try:
            return get()
        except RuntimeError as exc:
            if "mutated" not in str(exc):
                raise
    return get()


class AdaptiveController:
    """Runs the kit's phase plan (:data:`kit.control.fixed.PLAN`), ending car green when ``policy`` says so.

    :param board: a :class:`kit.board.Board`.
    :param timings: phase lengths and limits (:class:`AdaptiveTimings`).
    :param policy: decides when the car green ends; :func:`actuated_policy` by default.
    :param queue_threshold_m: a car nearer than this to the ultrasonic sensor means a queue stands.
    :param queue_hysteresis_m: the queue counts as gone only beyond threshold + hysteresis (no flicker).
    :param night_daylight: light-sensor level below which night mode applies.
    :param queue_source: optional callable returning True while a queue stands (e.g. the camera model);
        replaces the ultrasonic sensor.
    :param tick_s: how often the controller looks at its sensors.
    :param wait: how time passes: ``board.world.advance`` in simulation, ``time.sleep`` on a Pi.
    """

    def __init__(
        self,
        board: Any,
        timings: AdaptiveTimings | None = None,
        *,
        policy: Policy = actuated_policy,
        queue_threshold_m: float = 1.3,
        queue_hysteresis_m: float = 0.1,
        night_daylight: float = 0.2,
        queue_source: Callable[[], bool] | None = None,
        tick_s: float = 1.0,
        wait: Callable[[float], Any] | None = None,
    ) -> None:
        if not tick_s > 0:
            raise ValueError(f"tick_s={tick_s!r}: the controller needs a positive tick, e.g. 1.0")
        self.board = board
        self.timings = timings or AdaptiveTimings()
        self.policy = policy
        self.queue_threshold_m = queue_threshold_m
        self.queue_hysteresis_m = queue_hysteresis_m
        self.night_daylight = night_daylight
        self.queue_source = queue_source
        self.tick_s = tick_s
        if wait is None:
            wait = board.world.advance if getattr(board, "world", None) is not None else time.sleep
        self.wait = wait
        self.clock = 0.0  # seconds this controller has run
        self.index = 0
        self.phase_s = 0.0
        self.request_since: float | None = None
        self.queue = False
        self.phase_log: list[tuple[str, float]] = []
        board.button.when_pressed = self._requested
        show(board, self.phase)

    # --- inputs -----------------------------------------------------------------------------
    def _requested(self) -> None:
        if self.request_since is None:
            self.request_since = self.clock

    def _read_queue(self) -> bool:
        if self.queue_source is not None:
            return bool(self.queue_source())
        distance = _read(lambda: self.board.distance.distance)
        if self.queue:
            return distance < self.queue_threshold_m + self.queue_hysteresis_m
        return distance < self.queue_threshold_m

    def observe(self) -> Observation:
        """Read the sensors into an :class:`Observation`."""
        self.queue = self._read_queue()
        waiting = self.phase.name == "car_green" and _read(lambda: self.board.pir.motion_detected)
        if self.request_since is None and waiting:
            self._requested()  # someone waits at the kerb without pressing
        waited = 0.0 if self.request_since is None else self.clock - self.request_since
        return Observation(
            phase_s=self.phase_s,
            queue=self.queue,
            ped_request=self.request_since is not None,
            ped_wait_s=waited,
            night=_read(lambda: self.board.light_sensor.value) < self.night_daylight,
        )

    # --- the plan ---------------------------------------------------------------------------
    @property
    def phase(self) -> Phase:
        return PLAN[self.index]

    def _phase_length(self) -> float | None:
        if self.phase.name == "car_green":
            return None  # ends when the policy says so
        return getattr(self.timings, self.phase.timing)

    def _next_phase(self) -> None:
        self.phase_log.append((self.phase.name, self.phase_s))
        self.index = (self.index + 1) % len(PLAN)
        self.phase_s = 0.0
        if self.phase.name == "ped_green":
            self.request_since = None  # this crossing serves everyone waiting now
        show(self.board, self.phase)

    def step(self) -> None:
        """One tick: look at the sensors, perhaps change phase, let ``tick_s`` pass."""
        length = self._phase_length()
        if length is None:
            if self.policy(self.observe(), self.timings):
                self._next_phase()
        elif self.phase_s >= length - 1e-9:
            self._next_phase()
        self.wait(self.tick_s)
        self.clock += self.tick_s
        self.phase_s += self.tick_s

    def run(self, seconds: float = 0, *, minutes: float = 0, hours: float = 0) -> None:
        """Run for this long (in simulated time when the board is simulated)."""
        total = float(seconds) + 60.0 * minutes + 3600.0 * hours
        if total < 0:
            raise ValueError(f"run() needs a positive duration, got {total} s")
        end = self.clock + total
        while self.clock < end - 1e-9:
            self.step()

    def retime(self, **changes: float) -> None:
        """Change timings while running (e.g. from the cloud shadow); checked like new timings."""
        self.timings = replace(self.timings, **changes)

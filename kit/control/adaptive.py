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

from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from kit.control.fixed import PLAN, Phase


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
        values = {}
        for f in fields(cls):
            try:
                values[f.name] = float(params[f.name])
            except (KeyError, TypeError):
                pass  # not in this mapping: the default
        return cls(**values)


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


#: The night plan: flashing amber for the cars, pedestrian lamps dark (``night_mode = "flashing_amber"``).
NIGHT_FLASH = Phase("night_flash", "flashing_amber", "off", "all_red_s")
#: Least time in the night plan once entered (no flapping in and out at dusk).
NIGHT_MIN_S = 300.0
#: Parameters the controller reads (live, when built from parameters).
READS = (
    "car_green_s",
    "car_amber_s",
    "car_red_amber_s",
    "all_red_s",
    "ped_green_s",
    "ped_clear_s",
    "min_green_s",
    "max_green_s",
    "ped_max_wait_s",
    "night_min_green_s",
    "queue_threshold_m",
    "queue_hysteresis_m",
    "night_daylight",
    "night_mode",
    "buzzer_enabled",
    "control_mode",
)


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
    :param pedestrian_source: optional callable returning True while someone waits at the kerb; replaces the
        PIR sensor (the app's leaves the PIR out while it is flagged stuck: the button still calls).
    :param tick_s: how often the controller looks at its sensors.
    :param wait: how time passes (default: the clock's ``wait``).
    :param params: live parameters (``store.params.live()`` or a mapping): when given, every parameter the
        controller uses (:data:`READS`) is read from it, timings at the start of each phase; they win over
        the keyword arguments. Build it with :meth:`from_params`.
    :param clock: a :class:`kit.clock.Clock` (default: the board's, :func:`kit.clock.clock_for`).

    With parameters the controller also knows the ``control_mode`` (``"fixed"``: car green lasts
    ``car_green_s`` and the crossing is served every cycle), the ``night_mode`` (``"flashing_amber"``:
    at night the cars see flashing amber and the pedestrian lamps go dark, as real controllers' night
    plans do) and ``buzzer_enabled`` (the buzzer ticks every other second while pedestrians may walk).
    Every lamp change goes through the board's :class:`~kit.control.monitor.ConflictMonitor`.
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
        pedestrian_source: Callable[[], bool] | None = None,
        tick_s: float = 1.0,
        wait: Callable[[float], Any] | None = None,
        params: Any = None,
        clock: Any = None,
    ) -> None:
        from kit.clock import clock_for
        from kit.control.fixed import Timings, monitor_for, start_sequence
        from kit.store.defaults import defaults

        if not tick_s > 0:
            raise ValueError(f"tick_s={tick_s!r}: the controller needs a positive tick, e.g. 1.0")
        self.board = board
        self.policy = policy
        self.queue_source = queue_source
        self.pedestrian_source = pedestrian_source
        self.tick_s = tick_s
        self.timebase = clock or clock_for(board)
        self.wait = wait
        # Without live parameters, the keyword arguments are the (fixed) parameters.
        base = {
            **defaults(),
            **asdict(timings or AdaptiveTimings()),
            "queue_threshold_m": queue_threshold_m,
            "queue_hysteresis_m": queue_hysteresis_m,
            "night_daylight": night_daylight,
            "night_mode": "normal",
            "buzzer_enabled": False,
            "control_mode": "adaptive",
        }
        self.params = params if params is not None else base
        self.timings = AdaptiveTimings.from_params(self.params)
        self.fixed = Timings.from_params(self.params)
        self.monitor = monitor_for(board, self.timebase)
        self.clock = 0.0  # seconds this controller has run
        self._start = self.timebase.elapsed()
        self.phase_s = 0.0
        self.request_since: float | None = None
        self.queue = False
        self.night = False
        self.phase_log: list[tuple[str, float]] = []
        self.lateness_s: deque[float] = deque(maxlen=100_000)  # how late each phase change was (real time)
        self._queue_phases: list[Phase] = start_sequence(self.monitor)
        self.index = 0
        self._night_since: float | None = None
        self._after_night = False
        self._finishing = False
        self._effective: dict[str, Any] = {}
        self._read_params()
        board.button.when_pressed = self._requested
        self._show()

    @classmethod
    def from_params(cls, board: Any, params: Any, **kwargs: Any) -> AdaptiveController:
        """A controller that reads every parameter it uses live from ``params`` (``store.params``,
        ``store.params.live()`` or a mapping): a change takes effect at the next phase.

            >>> from kit import Board, Store
            >>> store = Store(":memory:")
            >>> with Board(seed=0) as board:
            ...     controller = AdaptiveController.from_params(board, store.params)
            ...     _ = store.params.set("ped_green_s", 12)
            ...     controller.run(minutes=10)
            ...     max(s for name, s in controller.phase_log if name == "ped_green")
            12.0
        """
        return cls(board, params=params.live() if hasattr(params, "live") else params, **kwargs)

    # --- parameters ---------------------------------------------------------------------------
    def _read_params(self) -> None:
        """Take the timings in effect from this phase on (a bad combination keeps the previous ones)."""
        from kit.control.fixed import Timings

        try:
            self.timings = AdaptiveTimings.from_params(self.params)
            self.fixed = Timings.from_params(self.params)
        except ValueError:
            pass  # the store validates every change; a hand-made mapping may not
        timing_names = {f for f in (*AdaptiveTimings.__dataclass_fields__, *Timings.__dataclass_fields__)}
        self._effective.update(
            {
                n: getattr(self.timings, n, None)
                if n in AdaptiveTimings.__dataclass_fields__
                else getattr(self.fixed, n)
                for n in timing_names
            }
        )

    def _param(self, name: str) -> Any:
        value = self.params[name]
        self._effective[name] = value
        return value

    # The detection settings in effect, as attributes (as in earlier versions of the kit).
    queue_threshold_m = property(lambda self: self.params["queue_threshold_m"])
    queue_hysteresis_m = property(lambda self: self.params["queue_hysteresis_m"])
    night_daylight = property(lambda self: self.params["night_daylight"])

    def effective(self) -> dict[str, Any]:
        """The parameter values in effect now (what the shadow reports as applied)."""
        return dict(self._effective)

    # --- inputs -----------------------------------------------------------------------------
    def _requested(self) -> None:
        if self.request_since is None:
            self.request_since = self.clock

    def _read_queue(self) -> bool:
        if self.queue_source is not None:
            return bool(self.queue_source())
        distance = _read(lambda: self.board.distance.distance)
        threshold = self._param("queue_threshold_m")
        if self.queue:
            return distance < threshold + self._param("queue_hysteresis_m")
        return distance < threshold

    def observe(self) -> Observation:
        """Read the sensors into an :class:`Observation`."""
        self.queue = self._read_queue()
        if self.phase.name != "car_green":
            waiting = False
        elif self.pedestrian_source is not None:
            waiting = bool(self.pedestrian_source())
        else:
            waiting = _read(lambda: self.board.pir.motion_detected)
        if self.request_since is None and waiting:
            self._requested()  # someone waits at the kerb without pressing
        waited = 0.0 if self.request_since is None else self.clock - self.request_since
        self.night = _read(lambda: self.board.light_sensor.value) < self._param("night_daylight")
        return Observation(
            phase_s=self.phase_s,
            queue=self.queue,
            ped_request=self.request_since is not None,
            ped_wait_s=waited,
            night=self.night,
        )

    # --- the plan ---------------------------------------------------------------------------
    @property
    def phase(self) -> Phase:
        return self._queue_phases[0] if self._queue_phases else PLAN[self.index]

    def _phase_length(self) -> float | None:
        name = self.phase.name
        if name == "car_green" or name == "night_flash":
            return None  # ends when the policy (or the daylight) says so
        source = self.timings if hasattr(self.timings, self.phase.timing) else self.fixed
        return float(getattr(source, self.phase.timing))

    def _show(self) -> None:
        phase = self.phase
        self.monitor.request(phase.car, phase.ped)

    def _next_phase(self, to: Phase | None = None) -> None:
        self.phase_log.append((self.phase.name, self.phase_s))
        if to is not None:
            self._queue_phases = [to]
        elif self._queue_phases:
            self._queue_phases.pop(0)
            if not self._queue_phases and self._after_night:
                self.index = len(PLAN) - 1  # out of the night plan: red+amber, then green
                self._after_night = False
        else:
            self.index = (self.index + 1) % len(PLAN)
        self.phase_s = 0.0
        if self.phase.name == "ped_green":
            self.request_since = None  # this crossing serves everyone waiting now
        self._read_params()  # a changed parameter takes effect from the new phase on
        self._show()
        late = self.lateness_now()
        if late:
            self.lateness_s.append(late)

    def _green_ends(self) -> Phase | None:
        """At car green: None to stay, else the phase that follows (amber)."""
        obs = self.observe()
        night_plan = self.night and self._param("night_mode") == "flashing_amber"
        if self._param("control_mode") == "fixed":
            ends = self.phase_s >= self.fixed.car_green_s - 1e-9
        else:
            ends = self.policy(obs, self.timings)
        if night_plan and self.phase_s >= self.timings.night_min_green_s - 1e-9:
            self._night_since = self.clock
            return NIGHT_FLASH
        return PLAN[1] if ends else None

    def anchor(self) -> None:
        """Schedule the next ticks from now (after a pause the controller does not rush to catch up)."""
        self.timebase.anchor()
        self._start = self.timebase.elapsed() - self.clock

    def lateness_now(self) -> float:
        """Wall-clock seconds this tick is late (0 in fast simulation)."""
        return self.timebase.lateness(self._start + self.clock)

    def step(self) -> None:
        """One tick: look at the sensors, perhaps change phase, let ``tick_s`` pass."""
        self.decide()
        self.advance()

    def finish(self) -> None:
        """Switch the signals off as an engineer would, over the next ticks: the phase shown runs to its end (a
        car green to its minimum), then amber and the all-red clearance, and the lamps stay all red (the
        conflict monitor's safe state). Keep calling :meth:`step` until :attr:`finished`.

            >>> from kit import Board
            >>> with Board(seed=0) as board:
            ...     controller = AdaptiveController(board)
            ...     controller.run(minutes=1)
            ...     controller.finish()
            ...     while not controller.finished:
            ...         controller.step()
            ...     board.world.car_light_state(), board.world.ped_light_state()
            ('red', 'red')
        """
        self._finishing = True

    @property
    def finished(self) -> bool:
        """True once :meth:`finish` has brought the lamps to all red for a whole clearance."""
        phase = self.phase
        if not self._finishing or phase.car != "red" or phase.ped == "green":
            return False
        return self.phase_s >= (self._phase_length() or 0.0) - 1e-9

    def _wind_down(self) -> None:
        phase = self.phase
        if phase.car == "red" and phase.ped != "green":
            return  # the clearance: hold it
        if phase.name == "car_green":
            least = self.timings.night_min_green_s if self.night else self.timings.min_green_s
            ends = self.phase_s >= least - 1e-9
        elif phase.name == "night_flash":
            ends = True
        else:
            ends = self.phase_s >= (self._phase_length() or 0.0) - 1e-9
        if ends:
            amber, all_red, ped_clear = PLAN[1], PLAN[2], PLAN[4]
            way_out = {"car_amber": [all_red], "ped_green": [ped_clear], "car_red_amber": [all_red]}
            self._queue_phases = [phase, *way_out.get(phase.name, [amber, all_red])]
            self._next_phase()

    def decide(self) -> None:
        """The first half of a tick: look at the sensors and perhaps change phase (no waiting)."""
        if self._finishing:
            self._wind_down()
            self._buzz()
            self.monitor.tick()
            return
        if self.monitor.restart:  # back from a stall: the lamps show all red; restart with the clearance
            from kit.control.fixed import STARTUP

            self.monitor.restart = False
            self._queue_phases = [STARTUP]
            self._after_night = True  # then red+amber and green
            self.phase_s = 0.0
            self._show()
        name = self.phase.name
        length = self._phase_length()
        if name == "car_green":
            after = self._green_ends()
            if after is NIGHT_FLASH:
                self._queue_phases = [PLAN[1], NIGHT_FLASH]  # amber first, then the night plan
                self.phase_log.append((name, self.phase_s))
                self.phase_s = 0.0
                self._read_params()
                self._show()
            elif after is not None:
                self._next_phase()
        elif name == "night_flash":
            self.observe()
            over = self.clock - (self._night_since or 0.0) >= NIGHT_MIN_S
            if over and (not self.night or self._param("night_mode") != "flashing_amber"):
                from kit.control.fixed import STARTUP

                self._after_night = True
                self._queue_phases = [NIGHT_FLASH, PLAN[1], STARTUP]  # steady amber, all red, red+amber
                self._next_phase()
        elif self.phase_s >= length - 1e-9:
            self._next_phase()
        self._buzz()
        self.monitor.tick()

    def advance(self) -> None:
        """The second half of a tick: let ``tick_s`` pass (to an absolute schedule: no drift)."""
        self.clock += self.tick_s
        self.phase_s += self.tick_s
        if self.wait is not None:
            self.wait(self.tick_s)
        else:
            self.timebase.wait_until(self._start + self.clock)

    def _buzz(self) -> None:
        # An accessible crossing: the buzzer ticks (every other second) while pedestrians may walk.
        on = self.phase.name == "ped_green" and bool(self._param("buzzer_enabled")) and int(self.phase_s) % 2 == 0
        buzzer = getattr(self.board, "buzzer", None)
        if buzzer is not None and bool(buzzer.is_active) != on:
            buzzer.value = on

    def run(self, seconds: float = 0, *, minutes: float = 0, hours: float = 0) -> None:
        """Run for this long (in simulated time when the board is simulated)."""
        total = float(seconds) + 60.0 * minutes + 3600.0 * hours
        if total < 0:
            raise ValueError(f"run() needs a positive duration, got {total} s")
        end = self.clock + total
        while self.clock < end - 1e-9:
            self.step()

    def retime(self, **changes: float) -> None:
        """Change timings while running (without live parameters); checked like new timings."""
        self.timings = replace(self.timings, **changes)
        if isinstance(self.params, dict):
            self.params.update(changes)

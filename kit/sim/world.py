"""The simulated intersection: a seeded, deterministic model of one approach and its crossing.

Vehicles arrive at a rate that follows the time of day, queue while the car light is not green and
leave one by one on green. Pedestrians arrive, press the button, wait and cross on the pedestrian
green. Daylight follows the sun (with seeded clouds); leaves can cover the sensors; road works slow
the traffic down. Time only moves when you call :meth:`World.advance`, as fast as you like.

The world never imports gpiozero: :mod:`kit.sim.wiring` reads it to drive the mock pins, and tells
it which lamps are lit.

    >>> from kit.sim.world import World
    >>> world = World(seed=1, start="2026-10-15T08:00:00")
    >>> world.set_lights(car="red", ped="red")
    >>> world.advance(minutes=2)
    >>> queued = world.queue_length
    >>> queued > 10
    True
    >>> world.set_lights(car="green", ped="red")
    >>> world.advance(minutes=1)
    >>> world.queue_length < queued
    True
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

CAR_STATES = ("red", "red_amber", "green", "amber", "off", "invalid")
PED_STATES = ("red", "green", "off", "invalid")

# One hour of vehicle arrivals per hour of day (a weekday profile with two peaks).
VEHICLES_PER_HOUR = (
    40,
    25,
    20,
    20,
    30,
    80,
    250,
    600,
    650,
    420,
    330,
    340,
    380,
    360,
    350,
    400,
    560,
    640,
    520,
    330,
    220,
    160,
    110,
    70,
)
PEDESTRIANS_PER_HOUR = (
    2,
    1,
    1,
    1,
    2,
    6,
    30,
    80,
    90,
    50,
    45,
    60,
    80,
    70,
    55,
    60,
    85,
    95,
    60,
    35,
    20,
    12,
    6,
    4,
)

STEP_S = 0.5  # simulation step: fine enough for button presses and one car every two seconds
HEADWAY_S = 2.0  # one car crosses the stop line every 2 s on green (1800 vehicles/h)
ROAD_WORKS_HEADWAY_S = 3.5  # one narrowed lane past the works
START_LOST_S = 2.0  # drivers need a moment to move off when the light turns green
MAX_QUEUE = 40  # beyond this the approach is full and arriving drivers take another road
CROSSING_S = 8.0  # time to walk across
PRESS_S = 0.5  # how long a finger stays on the button

# Model-scale geometry of the approach (the ultrasonic sensor looks down the lane at the queue's tail).
LANE_M = 1.6  # sensor to stop line when the lane is empty
CAR_SPACING_M = 0.2  # one queued car (model scale)
MIN_ECHO_M = 0.05


@dataclass
class WorldStats:
    """What happened so far: counts and every individual wait, in seconds."""

    arrived_vehicles: int = 0
    served_vehicles: int = 0
    diverted_vehicles: int = 0
    vehicle_waits: list[float] = field(default_factory=list)
    arrived_pedestrians: int = 0
    served_pedestrians: int = 0
    gave_up_pedestrians: int = 0
    pedestrian_waits: list[float] = field(default_factory=list)
    button_presses: int = 0

    @staticmethod
    def _percentile(values: list[float], q: float) -> float:
        if not values:
            return 0.0
        ordered = sorted(values)
        rank = q / 100 * (len(ordered) - 1)
        low = math.floor(rank)
        high = min(low + 1, len(ordered) - 1)
        return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)

    @property
    def mean_vehicle_wait(self) -> float:
        return sum(self.vehicle_waits) / len(self.vehicle_waits) if self.vehicle_waits else 0.0

    @property
    def p95_vehicle_wait(self) -> float:
        return self._percentile(self.vehicle_waits, 95)

    @property
    def mean_pedestrian_wait(self) -> float:
        return sum(self.pedestrian_waits) / len(self.pedestrian_waits) if self.pedestrian_waits else 0.0

    @property
    def p95_pedestrian_wait(self) -> float:
        return self._percentile(self.pedestrian_waits, 95)

    def summary(self) -> dict[str, float]:
        """A flat dict of the headline figures (rounded to 0.1 s), handy for printing or a table."""
        return {
            "vehicles_arrived": self.arrived_vehicles,
            "vehicles_served": self.served_vehicles,
            "vehicles_diverted": self.diverted_vehicles,
            "mean_vehicle_wait_s": round(self.mean_vehicle_wait, 1),
            "p95_vehicle_wait_s": round(self.p95_vehicle_wait, 1),
            "pedestrians_arrived": self.arrived_pedestrians,
            "pedestrians_served": self.served_pedestrians,
            "pedestrians_gave_up": self.gave_up_pedestrians,
            "mean_pedestrian_wait_s": round(self.mean_pedestrian_wait, 1),
            "p95_pedestrian_wait_s": round(self.p95_pedestrian_wait, 1),
            "button_presses": self.button_presses,
        }


@dataclass
class _Pedestrian:
    arrived: float
    patience: float
    crossing_until: float | None = None


def _parse_start(start: str | datetime) -> datetime:
    if isinstance(start, datetime):
        return start
    try:
        return datetime.fromisoformat(start)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"start={start!r} is not a date and time; give an ISO string such as '2026-10-15T06:00:00'"
        ) from exc


def _fraction(name: str, value: float) -> float:
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name}={value!r} is outside 0..1; use 0 for none and 1 for fully covered")
    return value


class World:
    """A seeded, deterministic intersection. Two worlds with one seed (and the same lights) are identical.

    :param seed: seeds every random stream (vehicles, pedestrians, clouds, temperatures).
    :param start: local date and time the simulation starts at.
    :param leaves: how much of the sensors and the camera lens leaves cover (0..1).
    :param road_works: works narrow the lane: cars leave more slowly and the camera sees cones.
    :param diverted: the works close the lane instead (implies ``road_works``): the camera sees the queue wait
        in the other lane behind a temporary stop line (``kit.sim.camera.Scene.diverted``), a layout no shipped
        model was trained on. Either may be switched on while the world runs (works that start at an hour).
    :param button_bounce: extra contact bounces per button press (0 = a clean switch).

        >>> world = World(seed=0, start="2026-10-15T23:00:00")
        >>> world.daylight
        0.0
        >>> world.advance(hours=12)
        >>> world.now.hour, world.daylight > 0.5
        (11, True)
    """

    def __init__(
        self,
        seed: int = 0,
        *,
        start: str | datetime = "2026-10-15T06:00:00",
        leaves: float = 0.0,
        road_works: bool = False,
        button_bounce: int = 0,
        diverted: bool = False,
    ) -> None:
        self.seed = int(seed)
        self.start = _parse_start(start)
        self._leaves = _fraction("leaves", leaves)
        self.diverted = bool(diverted)
        self.road_works = bool(road_works) or self.diverted
        if int(button_bounce) < 0:
            raise ValueError(f"button_bounce={button_bounce!r} must be 0 (clean switch) or a positive count")
        self.button_bounce = int(button_bounce)
        self.pot_position = 0.5
        # Hands-on settings (a notebook's sliders, a test): None / 1.0 / 0.0 leave the modelled world alone.
        self.traffic = 1.0  # multiplies the hour's vehicle arrival rate
        self.daylight_override: float | None = None  # fixes daylight (0..1) instead of the sun and clouds
        self.temperature_offset_c = 0.0  # added to the modelled air (and so road and CPU) temperature
        #: faults: a sensor that reads one value whatever happens (``stick``); the camera still sees the world
        self.stuck: dict[str, float] = {}
        self.elapsed = 0.0
        self.stats = WorldStats()
        # Separate streams, so that e.g. more pedestrians never change which cars arrive.
        self._rng_cars = random.Random(f"{self.seed}/vehicles")
        self._rng_peds = random.Random(f"{self.seed}/pedestrians")
        self._rng_sky = random.Random(f"{self.seed}/sky")
        self._clouds: dict[int, float] = {}
        self._temp_offset = random.Random(f"{self.seed}/temperature").uniform(-2.0, 2.0)
        self._queue: deque[float] = deque()  # arrival times of queued vehicles
        self._next_departure: float | None = None
        self._green_since: float | None = None
        self._peds_waiting: list[_Pedestrian] = []
        self._peds_crossing: list[_Pedestrian] = []
        self._press_until = -1.0
        self._presses: list[tuple[float, int]] = []  # (time, bounces) not yet seen by the wiring
        self._next_car = self._draw_next(self._rng_cars, VEHICLES_PER_HOUR, 0.0)
        self._next_ped = self._draw_next(self._rng_peds, PEDESTRIANS_PER_HOUR, 0.0)
        self._lights = ("off", "off")
        self._signals: Callable[[], tuple[str, str]] | None = None
        self._listeners: list[Callable[[World], None]] = []
        self._advance_listeners: list[Callable[[World], None]] = []

    # --- time -------------------------------------------------------------------------------
    @property
    def now(self) -> datetime:
        """The simulated local date and time."""
        return self.start + timedelta(seconds=self.elapsed)

    def advance(self, seconds: float = 0, *, minutes: float = 0, hours: float = 0) -> None:
        """Run the world forward (much faster than real time). Callbacks on the pins fire as it runs.

        Raises ValueError for a negative or non-finite duration: time only runs forward.
        """
        total = float(seconds) + 60.0 * float(minutes) + 3600.0 * float(hours)
        if not math.isfinite(total) or total < 0:
            raise ValueError(
                f"advance(seconds={seconds!r}, minutes={minutes!r}, hours={hours!r}) asks for {total} s; "
                "time only runs forward: pass a positive duration (or make a new World to start again)"
            )
        end = self.elapsed + total
        while self.elapsed < end - 1e-9:
            self._step(min(STEP_S, end - self.elapsed))
        for listener in list(self._advance_listeners):
            listener(self)

    def _step(self, dt: float) -> None:
        t0 = self.elapsed
        t1 = t0 + dt
        car, ped = self.car_light_state(), self.ped_light_state()
        self._vehicles(t0, t1, car)
        self._pedestrians(t0, t1, ped)
        self.elapsed = t1
        for listener in list(self._listeners):
            listener(self)

    @staticmethod
    def _rate_at(profile: tuple[int, ...], hour: float) -> float:
        # Linear between hourly values so that rates never jump at the top of an hour.
        h0 = int(hour) % 24
        frac = hour - int(hour)
        return (profile[h0] * (1 - frac) + profile[(h0 + 1) % 24] * frac) / 3600.0

    def _hour_at(self, t: float) -> float:
        moment = self.start + timedelta(seconds=t)
        return moment.hour + moment.minute / 60 + moment.second / 3600

    def _draw_next(self, rng: random.Random, profile: tuple[int, ...], t: float) -> float:
        # Arrivals form a Poisson process whose rate follows the time of day (thinning keeps it exact).
        scale = self.traffic if profile is VEHICLES_PER_HOUR else 1.0
        if scale <= 0:
            return math.inf  # no traffic until the slider moves again
        peak = scale * max(profile) / 3600.0
        while True:
            t += rng.expovariate(peak)
            if rng.random() * peak <= scale * self._rate_at(profile, self._hour_at(t)):
                return t

    # --- vehicles ---------------------------------------------------------------------------
    def _vehicles(self, t0: float, t1: float, car: str) -> None:
        green = car == "green"
        if green and self._green_since is None:
            self._green_since = t0
            self._next_departure = t0 + START_LOST_S
        elif not green:
            self._green_since = None
            self._next_departure = None
        while self._next_car < t1:
            t = self._next_car
            self.stats.arrived_vehicles += 1
            if green and not self._queue and self._next_departure is not None and t >= self._next_departure:
                # A free-flowing lane: the car does not stop.
                self.stats.served_vehicles += 1
                self.stats.vehicle_waits.append(0.0)
            elif len(self._queue) >= MAX_QUEUE:
                self.stats.diverted_vehicles += 1
            else:
                self._queue.append(t)
            self._next_car = self._draw_next(self._rng_cars, VEHICLES_PER_HOUR, t)
        if green:
            headway = ROAD_WORKS_HEADWAY_S if self.road_works else HEADWAY_S
            while self._queue and self._next_departure is not None and self._next_departure < t1:
                leave = max(self._next_departure, self._queue[0])
                if leave >= t1:
                    break
                arrived = self._queue.popleft()
                self.stats.served_vehicles += 1
                self.stats.vehicle_waits.append(leave - arrived)
                self._next_departure = leave + headway
            if not self._queue and self._next_departure is not None and self._next_departure < t1:
                self._next_departure = t1  # the lane is clear: the next car flows straight through

    # --- pedestrians ------------------------------------------------------------------------
    def _pedestrians(self, t0: float, t1: float, ped: str) -> None:
        self._peds_crossing = [p for p in self._peds_crossing if p.crossing_until > t0]
        while self._next_ped < t1:
            t = self._next_ped
            self.stats.arrived_pedestrians += 1
            person = _Pedestrian(arrived=t, patience=self._rng_peds.uniform(60.0, 240.0))
            # Nearly everyone presses when nobody is waiting; fewer bother when others already wait.
            presses = self._rng_peds.random() < (0.95 if not self._peds_waiting else 0.35)
            self._peds_waiting.append(person)
            if presses:
                self.stats.button_presses += 1
                self._press_until = t + PRESS_S
                self._presses.append((t, self.button_bounce))
            self._next_ped = self._draw_next(self._rng_peds, PEDESTRIANS_PER_HOUR, t)
        still = []
        for person in self._peds_waiting:
            if ped == "green":
                person.crossing_until = t1 + CROSSING_S
                self._peds_crossing.append(person)
                self.stats.served_pedestrians += 1
                self.stats.pedestrian_waits.append(max(0.0, t1 - person.arrived))
            elif t1 - person.arrived > person.patience:
                self.stats.gave_up_pedestrians += 1  # crosses on red, or walks away
            else:
                still.append(person)
        self._peds_waiting = still

    # --- hands-on: what a person at the kerb (or a notebook's buttons) does ----------------------
    def press_button(self) -> None:
        """Someone presses the crossing button now (the pin goes low at the next step, with any bounce)."""
        self.stats.button_presses += 1
        self._press_until = self.elapsed + PRESS_S
        self._presses.append((self.elapsed, self.button_bounce))

    def wave(self) -> None:
        """Someone walks up to the kerb now: the PIR sees a pedestrian waiting (they wait up to 2 minutes)."""
        self.stats.arrived_pedestrians += 1
        self._peds_waiting.append(_Pedestrian(arrived=self.elapsed, patience=120.0))

    def stick(self, sensor: str, value: float | bool | None) -> None:
        """Make a sensor read one value from now on (a fault), or ``None``: read the world again.

        ``"distance"`` (metres the HC-SR04 reports) or ``"pir"`` (True: motion, False: none). Only the
        sensor's reading is stuck; the camera and the controller's world run on.

            >>> world = World(seed=0)
            >>> world.stick("pir", True); world.stuck
            {'pir': 1.0}
            >>> world.stick("pir", None); world.stuck
            {}
        """
        if sensor not in ("distance", "pir"):
            raise ValueError(f"only 'distance' and 'pir' can be stuck, got {sensor!r}")
        if value is None:
            self.stuck.pop(sensor, None)
            return
        v = float(value)
        if not math.isfinite(v) or v < 0 or (sensor == "pir" and v not in (0.0, 1.0)):
            raise ValueError(
                f"a stuck {sensor} reads {'True or False' if sensor == 'pir' else 'metres >= 0'}, got {value!r}"
            )
        self.stuck[sensor] = v

    def add_cars(self, n: int = 1) -> None:
        """``n`` cars join the queue now (cars beyond the lane's length are diverted)."""
        for _ in range(int(n)):
            self.stats.arrived_vehicles += 1
            if len(self._queue) >= MAX_QUEUE:
                self.stats.diverted_vehicles += 1
            else:
                self._queue.append(self.elapsed)

    def set_traffic(self, factor: float) -> None:
        """Scale the vehicle arrival rate (1 = the modelled day, 0 = no cars, 3 = rush hour all day) from now on."""
        factor = float(factor)
        if not math.isfinite(factor) or factor < 0:
            raise ValueError(f"traffic factor {factor!r} must be 0 or more (1 = the modelled day)")
        self.traffic = factor
        self._next_car = self._draw_next(self._rng_cars, VEHICLES_PER_HOUR, self.elapsed)

    # --- what the sensors see ---------------------------------------------------------------
    @property
    def queue_length(self) -> int:
        """Vehicles queued on the approach."""
        return len(self._queue)

    @property
    def queue_distance(self) -> float:
        """Metres from the ultrasonic sensor to the tail of the queue (the stop line when empty)."""
        return max(MIN_ECHO_M, LANE_M - CAR_SPACING_M * len(self._queue))

    @property
    def pedestrians_waiting(self) -> int:
        """Pedestrians waiting at the kerb (what the PIR sensor sees)."""
        return len(self._peds_waiting)

    @property
    def pedestrians_crossing(self) -> int:
        """Pedestrians on the crossing right now."""
        return len(self._peds_crossing)

    @property
    def button_pressed(self) -> bool:
        """True while a finger is on the crossing button."""
        return self.elapsed < self._press_until

    def take_presses(self) -> list[tuple[float, int]]:
        """Button presses since the last call, as (time, extra bounces); the wiring turns them into pin edges."""
        presses, self._presses = self._presses, []
        return presses

    def _cloud(self, hour_index: int) -> float:
        if hour_index not in self._clouds:
            # Drawn from a stream keyed by the hour so that the sky never depends on the order of reads.
            self._clouds[hour_index] = random.Random(f"{self.seed}/sky/{hour_index}").uniform(0.55, 1.0)
        return self._clouds[hour_index]

    @property
    def daylight(self) -> float:
        """Ambient light from 0 (night) to 1 (a clear noon), with seeded clouds (or ``daylight_override``)."""
        if self.daylight_override is not None:
            return _fraction("daylight_override", self.daylight_override)
        now = self.now
        day = now.timetuple().tm_yday
        # Day length at about 50 degrees north: 8 h in December to 16.5 h in June.
        length = 12.25 + 4.25 * math.sin(2 * math.pi * (day - 80) / 365.25)
        sunrise = 12.5 - length / 2  # solar noon near 12:30 local time
        hour = now.hour + now.minute / 60 + now.second / 3600
        sun = math.sin(math.pi * (hour - sunrise) / length)
        if sun <= 0:
            return 0.0
        hours = self.elapsed / 3600 + self.start.hour + self.start.minute / 60
        i = math.floor(hours)
        f = hours - i
        cloud = self._cloud(i) * (1 - f) + self._cloud(i + 1) * f
        return round(min(1.0, sun**0.6 * cloud), 6)

    @property
    def leaf_cover(self) -> float:
        """How much of the light sensor and the camera lens leaves cover (0..1); settable."""
        return self._leaves

    @leaf_cover.setter
    def leaf_cover(self, value: float) -> None:
        self._leaves = _fraction("leaf_cover", value)

    @property
    def light_level(self) -> float:
        """Light reaching the LDR (0..1): daylight, a little street light at night, dimmed by leaves."""
        street = 0.04
        return (street + (1 - street) * self.daylight) * (1 - 0.85 * self._leaves)

    @property
    def air_temperature_c(self) -> float:
        """Air temperature: an October day, coldest before dawn and warmest mid-afternoon."""
        now = self.now
        hour = now.hour + now.minute / 60
        return 10.0 + self._temp_offset + self.temperature_offset_c + 4.5 * math.sin(2 * math.pi * (hour - 9.0) / 24)

    @property
    def road_temperature_c(self) -> float:
        """Road surface temperature (what the TMP36 on ADC channel 0 reads): air plus sun on tarmac."""
        return self.air_temperature_c + 6.0 * self.daylight

    @property
    def cpu_temperature_c(self) -> float:
        """The Pi's CPU temperature: idle heat above the air, more in the sun."""
        return 38.0 + 0.8 * self.air_temperature_c + 6.0 * self.daylight

    # --- lights -----------------------------------------------------------------------------
    def connect(self, signals: Callable[[], tuple[str, str]] | None) -> None:
        """Let a board's pins say which lamps are lit: ``signals()`` returns (car state, pedestrian state).

        Pass None to disconnect (the world then keeps its own lights, see :meth:`set_lights`).
        """
        self._signals = signals

    def set_lights(self, *, car: str = "off", ped: str = "off") -> None:
        """Set the lights of a world that is not wired to a board (tests, datasets, drawings)."""
        if self._signals is not None:
            raise RuntimeError(
                "this world is wired to a Board, whose pins decide the lights: "
                "drive board.car_light and board.ped_light instead of world.set_lights()"
            )
        if car not in CAR_STATES:
            raise ValueError(f"car={car!r} is not a car light state; use one of {', '.join(CAR_STATES)}")
        if ped not in PED_STATES:
            raise ValueError(f"ped={ped!r} is not a pedestrian light state; use one of {', '.join(PED_STATES)}")
        self._lights = (car, ped)

    def car_light_state(self) -> str:
        """'red', 'red_amber', 'green', 'amber', 'off' (or 'invalid' when, e.g., red and green are both lit)."""
        return (self._signals() if self._signals is not None else self._lights)[0]

    def ped_light_state(self) -> str:
        """'red', 'green', 'off' (or 'invalid' when both are lit)."""
        return (self._signals() if self._signals is not None else self._lights)[1]

    # --- observers --------------------------------------------------------------------------
    def add_listener(self, listener: Callable[[World], None], *, each_step: bool = True) -> None:
        """Call ``listener(world)`` after every simulation step (``each_step=False``: once per :meth:`advance`)."""
        (self._listeners if each_step else self._advance_listeners).append(listener)

    def remove_listener(self, listener: Callable[[World], None]) -> None:
        """Stop calling ``listener``; unknown listeners are ignored."""
        for listeners in (self._listeners, self._advance_listeners):
            if listener in listeners:
                listeners.remove(listener)

    def snapshot(self) -> dict[str, Any]:
        """Everything observable now, as plain values (for logs, tests and plots)."""
        return {
            "time": self.now.isoformat(),
            "elapsed_s": round(self.elapsed, 3),
            "car_light": self.car_light_state(),
            "ped_light": self.ped_light_state(),
            "queue_length": self.queue_length,
            "queue_distance_m": round(self.queue_distance, 3),
            "pedestrians_waiting": self.pedestrians_waiting,
            "pedestrians_crossing": self.pedestrians_crossing,
            "daylight": self.daylight,
            "leaf_cover": self.leaf_cover,
            "road_works": self.road_works,
            "road_temperature_c": round(self.road_temperature_c, 3),
        }

    def scene(self):
        """What the camera sees now, as a :class:`kit.sim.camera.Scene`."""
        from kit.sim.camera import Scene

        return Scene(
            queue_length=self.queue_length,
            pedestrians_waiting=self.pedestrians_waiting,
            daylight=self.daylight,
            leaves=self.leaf_cover,
            road_works=self.road_works or self.diverted,
            diverted=self.diverted,
        )

    def _repr_svg_(self) -> str:
        from kit.sim.render import render_svg

        return render_svg(self)

    def __repr__(self) -> str:
        return (
            f"<World seed={self.seed} {self.now:%Y-%m-%d %H:%M:%S} car={self.car_light_state()} "
            f"ped={self.ped_light_state()} queue={self.queue_length} waiting={self.pedestrians_waiting}>"
        )

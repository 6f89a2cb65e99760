"""One libsumo run of the kit's junction: set the lamps, step, read what the kit's sensors would see.

The kit's two signal groups drive SUMO's signals: the car light is the main road (west-east), the
pedestrian light is the crossing over the main road. The side road (north-south) runs with the
pedestrians, as at a real junction where the crossing's walk phase is the side road's green: it shows
green while the pedestrian light is green, then amber for :data:`SIDE_AMBER_S`, then red.

What a controller may read: queues per arm as stop-line detectors count them (halting vehicles),
pedestrians waiting at the kerb, and the time. What the results report comes from SUMO's trip
records (time lost per vehicle, stops, throughput) and each pedestrian's wait at the kerb.
libsumo holds one simulation per process, so one :class:`SumoJunction` is open at a time.

    >>> with SumoJunction(seed=1000, start="2026-10-15T08:00:00", hours=0.1) as junction:
    ...     junction.set_lights(car="red", ped="red")
    ...     junction.run(seconds=120)
    ...     junction.queues()["w2c"] > 5
    True
"""

from __future__ import annotations

import math
import shutil
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from kit.errors import KitRuntimeError, UsageError
from kit.sim.sumo import require
from kit.sim.sumo.demand import ARM_SHARE, arrivals, write_routes
from kit.sim.sumo.network import build_network
from kit.sim.world import CAR_SPACING_M, LANE_M, MIN_ECHO_M, _parse_start

TLS = "C"
ARMS = tuple(ARM_SHARE)  # w2c, e2c, n2c, s2c
MAIN = ("w2c", "e2c")
SIDE = ("n2c", "s2c")
SIDE_AMBER_S = 3.0
CAR_LENGTH_M = 7.5  # a SUMO passenger car and its gap: one queued car
#: How far up each arm the kit sees cars (camera) or the ultrasonic reaches: the model junction's 8 car lengths.
CAMERA_REACH_M = LANE_M / CAR_SPACING_M * CAR_LENGTH_M
CAR_LETTERS = {"green": "G", "amber": "y", "red": "r", "red_amber": "u", "off": "O", "invalid": "r"}


class SumoBusyError(KitRuntimeError):
    """A SumoJunction is already open in this process (libsumo runs one simulation per process)."""


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = q / 100 * (len(ordered) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class Results:
    """Per-vehicle delay (SUMO's time loss plus any wait to enter the network), stops, pedestrian waits."""

    vehicles: int  #: vehicles that arrived at the junction's arms during the run
    finished: int  #: vehicles that left the network
    mean_delay_s: float
    p95_delay_s: float
    mean_stops: float
    pedestrians: int
    mean_ped_wait_s: float
    p95_ped_wait_s: float
    hours: float

    @property
    def throughput_per_h(self) -> float:
        return self.finished / self.hours if self.hours else 0.0

    def row(self) -> dict[str, float]:
        """Rounded figures for a table."""
        out = {k: (round(v, 2) if isinstance(v, float) else v) for k, v in asdict(self).items()}
        out["throughput_per_h"] = round(self.throughput_per_h, 1)
        return out


_open: list[Any] = []


class SumoJunction:
    """The kit's junction in SUMO for ``hours`` of seeded demand starting at ``start``.

    :param seed: demand seed (:mod:`kit.sim.sumo.demand`); also SUMO's own seed.
    :param start: local date and time the run starts at (demand follows the time of day).
    :param hours: how much demand to generate; running past it just empties the junction.
    :param step_s: SUMO's step length.
    :param scale: demand multiplier (1 = the kit's profile).
    """

    def __init__(
        self,
        seed: int = 0,
        *,
        start: str | datetime = "2026-10-15T00:00:00",
        hours: float = 24.0,
        step_s: float = 1.0,
        scale: float = 1.0,
    ) -> None:
        require()
        import libsumo

        if _open:
            raise SumoBusyError("a SumoJunction is already open in this process: close it (or use `with`) first")
        if not (hours > 0 and step_s > 0):
            raise UsageError(f"hours={hours!r}, step_s={step_s!r}: both must be positive")
        self._sumo = libsumo
        self.seed, self.hours, self.step_s, self.scale = int(seed), float(hours), float(step_s), float(scale)
        self.start = _parse_start(start)
        self._dir = Path(tempfile.mkdtemp(prefix="kit-sumo-"))
        routes = write_routes(self._dir / "demand.rou.xml", self.seed, start=self.start, hours=hours, scale=scale)
        self._tripinfo = self._dir / "tripinfo.xml"
        libsumo.start(
            [
                "sumo",
                "-n",
                str(build_network()),
                "-r",
                str(routes),
                "--step-length",
                str(step_s),
                "--seed",
                str(self.seed),
                "--no-step-log",
                "--no-warnings",
                "--time-to-teleport",
                "-1",
                "--tripinfo-output",
                str(self._tripinfo),
                "--tripinfo-output.write-unfinished",
            ]
        )
        _open.append(self)
        self.elapsed = 0.0
        self._groups = self._signal_groups()
        self._lanes = {arm: f"{arm}_1" for arm in ARMS}  # lane 0 is the sidewalk
        self._ped_wait: dict[str, float] = {}
        self._side = "r"
        self._side_amber_left = 0.0
        self._lamps = ("red", "red")
        self._state = ""
        self._results: Results | None = None
        self.set_lights(car="red", ped="red")

    # --- signals ----------------------------------------------------------------------------
    def _signal_groups(self) -> list[tuple[str, str]]:
        """(group, green letter) per controlled link: group is main, side or walk."""
        tl = self._sumo.trafficlight
        default = tl.getAllProgramLogics(TLS)[0].phases
        groups = []
        for i, links in enumerate(tl.getControlledLinks(TLS)):
            lanes = [lane for link in links for lane in link]
            if any(lane.startswith(f":{TLS}_c") for lane in lanes):
                groups.append(("walk", "G"))
                continue
            edge = lanes[0].rsplit("_", 1)[0]
            group = "main" if edge in MAIN else "side"
            # Keep netconvert's priority letter (G: protected, g: yields to a conflicting stream).
            letter = next((p.state[i] for p in default if p.state[i] in "Gg"), "G")
            groups.append((group, letter))
        return groups

    def set_lights(self, *, car: str, ped: str) -> None:
        """Show the kit's two signal groups (as the kit's lamps name them); the side road follows the crossing."""
        if car not in CAR_LETTERS or ped not in ("red", "green", "off", "invalid"):
            raise UsageError(f"car={car!r}, ped={ped!r}: use the kit's lamp states (car green/amber/red/red_amber)")
        if ped == "green":
            self._side, self._side_amber_left = "G", 0.0
        elif self._side == "G":
            self._side, self._side_amber_left = "y", SIDE_AMBER_S
        self._lamps = (car, ped)
        self._apply()

    def _apply(self) -> None:
        car, ped = self._lamps
        letters = []
        for group, green in self._groups:
            if group == "main":
                letters.append(green if car == "green" else CAR_LETTERS[car])
            elif group == "side":
                letters.append(green if self._side == "G" else self._side)
            else:
                letters.append("G" if ped == "green" else "r")
        state = "".join(letters)
        if state != self._state:
            self._sumo.trafficlight.setRedYellowGreenState(TLS, state)
            self._state = state

    @property
    def side_light(self) -> str:
        """The side road's signal: 'green', 'amber' or 'red'."""
        return {"G": "green", "y": "amber", "r": "red"}[self._side]

    # --- time -------------------------------------------------------------------------------
    @property
    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.elapsed)

    def step(self) -> None:
        """Advance SUMO by one step."""
        if self._side == "y":
            self._side_amber_left -= self.step_s
            if self._side_amber_left <= 1e-9:
                self._side = "r"
                self._apply()
        self._sumo.simulationStep()
        self.elapsed += self.step_s
        person = self._sumo.person
        for p in person.getIDList():
            waited = person.getWaitingTime(p)
            if waited > 0 and waited > self._ped_wait.get(p, 0.0):
                self._ped_wait[p] = waited
            else:
                self._ped_wait.setdefault(p, 0.0)

    def run(self, seconds: float) -> None:
        """Step for ``seconds`` with the lamps as they are."""
        for _ in range(int(round(seconds / self.step_s))):
            self.step()

    # --- what sensors see -------------------------------------------------------------------
    def queues(self) -> dict[str, int]:
        """Halting vehicles per inbound arm (stop-line queue detectors)."""
        lane = self._sumo.lane
        return {arm: lane.getLastStepHaltingNumber(name) for arm, name in self._lanes.items()}

    def vehicles(self) -> dict[str, int]:
        """Vehicles on each inbound arm, moving or not (lane-area detectors over the whole arm)."""
        lane = self._sumo.lane
        return {arm: lane.getLastStepVehicleNumber(name) for arm, name in self._lanes.items()}

    def time_lost(self) -> float:
        """Vehicle-seconds lost this second, over every inbound arm (a training signal: no kit sensor reads it).

        Each vehicle on an inbound lane loses ``1 - speed / limit`` of the second (a standing car all of it, a car
        braking or pulling away part of it, as SUMO's ``timeLoss`` counts), and a vehicle that cannot yet enter a
        full arm loses the whole second.
        """
        lane = self._sumo.lane
        lost = float(len(self._sumo.simulation.getPendingVehicles()))
        for name in self._lanes.values():
            n = lane.getLastStepVehicleNumber(name)
            if n:
                lost += max(0.0, n - n * lane.getLastStepMeanSpeed(name) / lane.getMaxSpeed(name))
        return lost

    def pedestrians_waiting(self) -> int:
        """Pedestrians standing at the kerb waiting to cross."""
        person = self._sumo.person
        return sum(1 for p in person.getIDList() if person.getWaitingTime(p) > 0)

    def approaching(self, arm: str, within_m: float = 40.0) -> int:
        """Moving vehicles within ``within_m`` of the stop line on ``arm`` (an upstream loop's view)."""
        lane = self._lanes[arm]
        length = self._sumo.lane.getLength(lane)
        vehicle = self._sumo.vehicle
        return sum(
            1
            for v in self._sumo.lane.getLastStepVehicleIDs(lane)
            if length - vehicle.getLanePosition(v) <= within_m and vehicle.getSpeed(v) > 0.1
        )

    def moving(self, arm: str, reach_m: float = CAMERA_REACH_M) -> tuple[float, ...]:
        """How far from the stop line each moving vehicle on ``arm`` is, nearest first, within ``reach_m``.

        What the kit's camera model sees of an arm's traffic beside its queue class: cars in view that are
        driving (told from two successive frames), not SUMO's whole lane.
        """
        lane = self._lanes[arm]
        length = self._sumo.lane.getLength(lane)
        vehicle = self._sumo.vehicle
        return tuple(
            sorted(
                d
                for v in self._sumo.lane.getLastStepVehicleIDs(lane)
                if (d := length - vehicle.getLanePosition(v)) <= reach_m and vehicle.getSpeed(v) > 0.1
            )
        )

    def echo_m(self, arm: str = "w2c") -> float:
        """What the kit's ultrasonic sensor reads on ``arm``, in the kit's model metres.

        The sensor looks from :data:`~kit.sim.world.LANE_M` upstream of the stop line towards it, so it sees
        the vehicle nearest to it within that range (8 car lengths of SUMO's lane), standing or moving:
        the tail of a standing queue or a car still driving in. With the range empty it reads the full
        lane. Its scale is the World's: one car length (7.5 m here) is 0.2 m of model lane.
        """
        lane = self._lanes[arm]
        length = self._sumo.lane.getLength(lane)
        reach = CAMERA_REACH_M  # the sensor's range in SUMO metres
        vehicle = self._sumo.vehicle
        farthest = -1.0
        for v in self._sumo.lane.getLastStepVehicleIDs(lane):
            back = length - vehicle.getLanePosition(v) + vehicle.getLength(v)  # the side facing the sensor
            if back - vehicle.getLength(v) <= reach:
                farthest = max(farthest, min(back, reach))
        if farthest < 0:
            return LANE_M
        return max(MIN_ECHO_M, LANE_M - farthest / CAR_LENGTH_M * CAR_SPACING_M)

    # --- results ----------------------------------------------------------------------------
    def close(self) -> Results:
        """End the run and return its :class:`Results` (idempotent)."""
        if self._results is not None:
            return self._results
        pending = list(self._sumo.simulation.getPendingVehicles())
        end = self.elapsed
        self._sumo.close()
        _open.remove(self)
        departs = arrivals(self.seed, start=self.start, hours=self.hours, scale=self.scale)
        delays: list[float] = []
        stops: list[int] = []
        finished = 0
        for trip in ET.parse(self._tripinfo).getroot().iter("tripinfo"):
            delays.append(float(trip.get("timeLoss")) + float(trip.get("departDelay", 0)))
            stops.append(int(trip.get("waitingCount")))
            finished += float(trip.get("arrival")) >= 0
        for vid in pending:  # never got onto a full arm: their whole wait so far is delay
            arm, i = vid.split(".")
            if departs[arm][int(i)] < end:
                delays.append(end - departs[arm][int(i)])
                stops.append(1)
        shutil.rmtree(self._dir, ignore_errors=True)
        waits = list(self._ped_wait.values())
        self._results = Results(
            vehicles=len(delays),
            finished=finished,
            mean_delay_s=sum(delays) / len(delays) if delays else 0.0,
            p95_delay_s=_percentile(delays, 95),
            mean_stops=sum(stops) / len(stops) if stops else 0.0,
            pedestrians=len(waits),
            mean_ped_wait_s=sum(waits) / len(waits) if waits else 0.0,
            p95_ped_wait_s=_percentile(waits, 95),
            hours=end / 3600,
        )
        return self._results

    def results(self) -> Results:
        """Close the run and return its results."""
        return self.close()

    def __enter__(self) -> SumoJunction:
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._results is None:
            try:
                self.close()
            except Exception:
                if exc[0] is None:
                    raise

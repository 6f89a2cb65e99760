"""Co-simulation: the kit's ``World`` with its vehicles and pedestrians taken from SUMO.

:class:`SumoWorld` is a :class:`kit.sim.world.World` whose traffic is SUMO's: every world step is a
libsumo step, the lamps the Board's pins light (through the same gpiozero devices and the same
controllers) are SUMO's signals for the kit's approach and crossing, and what the Board's sensors read
comes back from SUMO: the ultrasonic sensor sees the queue on the kit's approach (``w2c``), the PIR and
the button see the pedestrians waiting at the kerb, the camera draws SUMO's queue. Daylight, leaves,
temperatures stay the kit's own.

    >>> from kit import Board
    >>> from kit.control.adaptive import AdaptiveController
    >>> from kit.pins import SimFactory
    >>> world = SumoWorld(seed=1000, start="2026-10-15T08:00:00", hours=0.1)
    >>> with Board(world, pin_factory=SimFactory()) as board:
    ...     AdaptiveController(board).run(minutes=5)
    >>> world.close().vehicles > 50
    True
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from kit.sim.sumo.junction import SumoJunction
from kit.sim.world import CAR_SPACING_M, LANE_M, MIN_ECHO_M, PRESS_S, STEP_S, World

APPROACH = "w2c"  # the kit's own approach: where its ultrasonic sensor and camera look


class SumoWorld(World):
    """A :class:`World` whose vehicles and pedestrians come from SUMO (same seed, same demand profile).

    :param seed: seeds the demand (and the world's own sky and temperatures).
    :param start: local date and time.
    :param hours: how much SUMO demand to generate.
    Other keyword arguments are :class:`World`'s.
    """

    def __init__(
        self, seed: int = 0, *, start: str | datetime = "2026-10-15T06:00:00", hours: float = 24.0, **kwargs: Any
    ) -> None:
        super().__init__(seed, start=start, **kwargs)
        self.junction = SumoJunction(seed, start=self.start, hours=hours, step_s=STEP_S)
        self._carry = 0.0
        self._queued = 0
        self._waiting: set[str] = set()
        self._seen: set[str] = set()
        self._on_approach: dict[str, float] = {}
        self._ped_waits: dict[str, float] = {}

    def _step(self, dt: float) -> None:
        car, ped = self.car_light_state(), self.ped_light_state()
        self.junction.set_lights(car=car if car != "off" else "off", ped=ped if ped == "green" else "red")
        self._carry += dt
        while self._carry >= self.junction.step_s - 1e-9:
            self._carry -= self.junction.step_s
            self.junction.step()
            self._observe()
        self.elapsed += dt
        for listener in list(self._listeners):
            listener(self)

    def _observe(self) -> None:
        sumo = self.junction._sumo
        j = self.junction
        self._queued = j.queues()[APPROACH]
        # Vehicles on the kit's approach: count arrivals, and each one's wait when it leaves the arm.
        now_on = {}
        for v in sumo.lane.getLastStepVehicleIDs(j._lanes[APPROACH]):
            now_on[v] = max(self._on_approach.get(v, 0.0), sumo.vehicle.getAccumulatedWaitingTime(v))
            if v not in self._seen:
                self._seen.add(v)
                self.stats.arrived_vehicles += 1
        for v, waited in self._on_approach.items():
            if v not in now_on:
                self.stats.served_vehicles += 1
                self.stats.vehicle_waits.append(waited)
        self._on_approach = now_on
        # Pedestrians: a new person at the kerb presses the button; one who walks on was served.
        person = sumo.person
        waiting = {p for p in person.getIDList() if person.getWaitingTime(p) > 0}
        for _person in waiting - self._waiting:
            self.stats.arrived_pedestrians += 1
            if not self._waiting:  # nearly everyone presses when nobody else is waiting already
                self.stats.button_presses += 1
                self._press_until = self.elapsed + PRESS_S
                self._presses.append((self.elapsed, self.button_bounce))
        for p in self._waiting - waiting:
            self.stats.served_pedestrians += 1
            self.stats.pedestrian_waits.append(j._ped_wait.get(p, 0.0))
        self._waiting = waiting

    # --- what the sensors see: SUMO's traffic -----------------------------------------------
    @property
    def queue_length(self) -> int:
        """Vehicles standing on the kit's approach in SUMO."""
        return self._queued

    @property
    def queue_distance(self) -> float:
        """Metres from the ultrasonic sensor to the tail of SUMO's queue (the kit's model scale)."""
        return max(MIN_ECHO_M, LANE_M - CAR_SPACING_M * self._queued)

    @property
    def pedestrians_waiting(self) -> int:
        """Pedestrians waiting at the kerb in SUMO."""
        return len(self._waiting)

    @property
    def pedestrians_crossing(self) -> int:
        person = self.junction._sumo.person
        return sum(1 for p in person.getIDList() if person.getRoadID(p).startswith(":C_c"))

    def close(self) -> Any:
        """End the SUMO run; returns its :class:`~kit.sim.sumo.junction.Results` (all arms)."""
        return self.junction.close()

    def __repr__(self) -> str:
        return "<Sumo" + super().__repr__()[1:]

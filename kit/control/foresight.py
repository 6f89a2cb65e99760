"""A yardstick, not a controller: how much better could anyone control this junction?

:func:`foresight` drives the SUMO junction like :func:`kit.control.evaluate.drive`, but it cheats in
every way a real controller cannot: whenever a green may end and somebody waits for the other phase,
it forks the whole simulation and plays each choice, *advance now* or *keep the green* 1, 5, 10 or 20 s
(``holds_s``), each followed by a base policy (actuated control) for ``horizon_s`` seconds of the demand
that is really coming, and advances only when that loses no more vehicle- and pedestrian-seconds than
every hold. It sees SUMO's full state (every vehicle on every arm) and the future arrivals. This is one
step of policy iteration on the base policy (a *rollout* controller, Bertsekas' term), so it should do
better than the base, and the gap measures what knowing everything is worth here. No sensor could feed
it; its figure tells what the junction's phase plan allows apart from what a controller can see.

With ``future="sampled"`` the rollouts stop knowing the future: each plays ``samples`` draws of the arrivals
still to come from the demand's own model (the Poisson rates of the hour that
:mod:`kit.sim.sumo.demand` draws every day from), the same draws for every choice of one decision, and the
real arrivals are taken out of the child's run. It still knows the present exactly (every vehicle on every
arm, those waiting to enter, every pedestrian at the kerb): more than any sensor, but nothing a controller
could not in principle know. The gap between the two futures is what knowing the coming demand is worth.

It forks the process (Linux: a Pi, a laptop, CI). A child plays one choice, writes its cost to a
pipe and exits without touching the parent's run (it reads its own copy of the demand file, and its
trip output goes to /dev/null).

    >>> r = foresight(seed=990, start="2026-10-15T08:00:00", hours=0.05)     # doctest: +SKIP
    >>> r.mean_delay_s > 0                                                   # doctest: +SKIP
    True
"""

from __future__ import annotations

import math
import os
import random
import struct
from datetime import datetime
from typing import Any

from kit.control.actuated import ARMS, SERVED
from kit.control.evaluate import Sensors, step
from kit.control.phases import PhaseMachine, Policy
from kit.errors import KitRuntimeError, UsageError


def _cost_of(junction: Any, pedestrian_weight: float) -> float:
    return junction.time_lost() + pedestrian_weight * junction.pedestrians_waiting()


#: What a rollout plays after the moment of decision (see the module doc).
FUTURES = ("real", "sampled")


class SampledFuture:
    """In a rollout: the arrivals still to come replaced by one draw of the demand's model.

    Draw ``draw`` at one moment of one run is the same draw in every child (common random numbers: the choices
    of a decision differ by the choice, not by their luck). The rates are the hour's at the moment of decision;
    over a rollout of a minute or two the daily profile hardly moves.
    """

    def __init__(self, junction: Any, draw: int, horizon_s: float) -> None:
        from kit.sim.sumo.demand import ARM_SHARE, WALKS, pedestrian_rate, vehicle_rate

        self.junction = junction
        sumo = junction._sumo
        rng = random.Random(f"{junction.seed}/{junction.elapsed:.1f}/{draw}")
        now = junction.now
        hour = now.hour + now.minute / 60 + now.second / 3600
        self.vehicles: list[tuple[float, str]] = []  # (seconds after the decision, arm)
        for arm in ARM_SHARE:
            self.vehicles += [(t, arm) for t in _poisson_times(rng, vehicle_rate(arm, hour, junction.scale), horizon_s)]
        self.vehicles.sort()
        self.people = [
            (t, WALKS[rng.randrange(len(WALKS))])
            for t in _poisson_times(rng, pedestrian_rate(hour, junction.scale), horizon_s)
        ]
        # The present: vehicles on the arms or waiting to enter, people already walking or waiting.
        self._backlog = set(sumo.simulation.getPendingVehicles())
        self._present_people = set(sumo.person.getIDList())
        self._added = 0

    def before_step(self, t: float) -> None:
        """Put in this step's sampled vehicles and pedestrians (``t``: seconds since the decision)."""
        from kit.sim.sumo.demand import WALK_FROM_M, WALK_TO_M

        sumo = self.junction._sumo
        while self.vehicles and self.vehicles[0][0] <= t:
            _, arm = self.vehicles.pop(0)
            sumo.vehicle.add(f"sampled.{self._added}", routeID=arm, departLane="best", departSpeed="max")
            self._added += 1
        while self.people and self.people[0][0] <= t:
            _, (start, end) = self.people.pop(0)
            person = f"sampled.{self._added}"
            sumo.person.add(person, start, WALK_FROM_M)  # where the demand file's walks start and end
            sumo.person.appendWalkingStage(person, [start, end], WALK_TO_M)
            self._added += 1

    def after_step(self) -> None:
        """Take out the real arrivals of the step: the rollout knows only the sampled ones."""
        sumo = self.junction._sumo
        for v in (*sumo.simulation.getDepartedIDList(), *sumo.simulation.getPendingVehicles()):
            if not v.startswith("sampled.") and v not in self._backlog:
                sumo.vehicle.remove(v)
        for p in sumo.person.getIDList():
            if not p.startswith("sampled.") and p not in self._present_people:
                sumo.person.remove(p)


def _poisson_times(rng: random.Random, rate: float, horizon_s: float) -> list[float]:
    times, t = [], 0.0
    while rate > 0:
        t += rng.expovariate(rate)
        if t >= horizon_s:
            break
        times.append(t)
    return times


def _play(
    junction, machine, sensors, base: Policy, hold_s: float, horizon_s: float, weight: float, draw: int | None = None
) -> float:
    """Cost of advancing now (``hold_s`` 0) or keeping the green ``hold_s`` seconds, then ``base`` to the horizon;
    with ``draw``, against that draw of the future (:class:`SampledFuture`) instead of the real one."""
    future = None if draw is None else SampledFuture(junction, draw, horizon_s)
    cost = 0.0
    for t in range(int(round(horizon_s / junction.step_s))):
        advance = False
        if machine.can_advance:
            elapsed = t * junction.step_s
            advance = (hold_s == 0) if t == 0 else (elapsed >= hold_s and bool(base(sensors.view(machine))))
        if future is not None:
            future.before_step(t * junction.step_s)
        step(junction, machine, sensors, advance)
        if future is not None:
            future.after_step()
        cost += _cost_of(junction, weight)
    return cost


def _detach_files(junction: Any) -> None:
    """In a child: give it its own copies of the run's files.

    A forked child shares the parent's open file descriptions, offsets included: SUMO reading the demand
    file ahead in a child would move the parent's place in it, and trips it writes would land in the
    parent's output. So the child reopens every file of the run at the same offset, and its trip output
    goes to /dev/null.
    """
    run = os.path.realpath(junction._dir)
    trips = os.path.realpath(junction._tripinfo)
    for fd in os.listdir("/proc/self/fd"):
        try:
            path = os.path.realpath(f"/proc/self/fd/{fd}")
            if path == trips:
                own = os.open(os.devnull, os.O_WRONLY)
            elif path.startswith(run + os.sep) and os.path.isfile(path):
                own = os.open(path, os.O_RDONLY)
                os.lseek(own, os.lseek(int(fd), 0, os.SEEK_CUR), os.SEEK_SET)
            else:
                continue
            os.dup2(own, int(fd))
            os.close(own)
        except OSError:
            continue


def _forked_cost(junction, machine, sensors, base, hold_s, horizon_s, weight, draw: int | None = None) -> float:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: play, report, leave without running any of the parent's exit handlers
        code = 1
        try:
            os.close(read)
            _detach_files(junction)
            cost = _play(junction, machine, sensors, base, hold_s, horizon_s, weight, draw)
            os.write(write, struct.pack("d", cost))
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    data = b""
    while len(data) < 8:
        chunk = os.read(read, 8 - len(data))
        if not chunk:
            break
        data += chunk
    os.close(read)
    _, status = os.waitpid(pid, 0)
    if len(data) != 8 or status != 0:
        raise KitRuntimeError(f"a foresight rollout failed (exit status {status})")
    return struct.unpack("d", data)[0]


def _someone_waits(view) -> bool:
    other = [arm for arm in ARMS if arm not in SERVED[view.phase]]
    waiting = sum(view.queues.get(a, 0) + view.approaching.get(a, 0) for a in other)
    return bool(waiting or (view.phase == "car_green" and view.peds_waiting))


def foresight(
    *,
    seed: int,
    start: str | datetime = "2026-10-15T00:00:00",
    hours: float = 24.0,
    base: Policy | None = None,
    horizon_s: float = 90.0,
    pedestrian_weight: float = 2.0,
    holds_s: tuple[float, ...] = (1.0, 5.0, 10.0, 20.0),
    future: str = "real",
    samples: int = 4,
) -> Any:
    """Run the rollout controller on one demand seed and return its :class:`~kit.sim.sumo.junction.Results`.

    :param base: the policy each rollout follows after its first choice (default: actuated control).
    :param horizon_s: how far each rollout looks ahead (long enough to see the whole next phase).
    :param pedestrian_weight: a waiting pedestrian's second against a vehicle's lost second (at 1 the held-out
        days' pedestrian p95 wait came out 0.6 s above actuated control's; at 2 it is 4.7 s below).
    :param holds_s: the other choices: keep the green this many seconds, then follow ``base``; *advance now* wins
        when it costs no more than every one of them. More holds look further along the green, at a fork each.
    :param future: ``"real"``, the rollouts play the demand really coming; ``"sampled"``, ``samples`` draws of it
        from the demand's model, a choice's cost their mean (a fork per draw and choice: ``samples`` times slower).
    """
    from kit.control.actuated import actuated
    from kit.sim.sumo.junction import SumoJunction

    if not (hasattr(os, "fork") and os.path.isdir("/proc/self/fd")):
        raise UsageError(
            "foresight() forks the simulation and needs Linux's /proc: run it on Linux (a Pi, a laptop, CI)"
        )
    if not (hours > 0 and horizon_s > 0 and pedestrian_weight >= 0 and holds_s and min(holds_s) > 0):
        raise UsageError(
            f"hours={hours!r}, horizon_s={horizon_s!r}, pedestrian_weight={pedestrian_weight!r}, holds_s={holds_s!r}: "
            "hours, horizon and every hold must be positive (at least one hold), the weight 0 or more"
        )
    if future not in FUTURES or isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise UsageError(
            f"future={future!r}, samples={samples!r}: future is one of {', '.join(FUTURES)}, samples a whole number "
            "of draws, 1 or more"
        )
    base = base or actuated()
    draws: list[int | None] = [None] if future == "real" else list(range(samples))

    def cost(hold: float) -> float:
        costs = [_forked_cost(junction, machine, sensors, base, hold, horizon_s, pedestrian_weight, d) for d in draws]
        return math.fsum(costs) / len(costs)

    with SumoJunction(seed, start=start, hours=hours) as junction:
        machine = PhaseMachine()
        sensors = Sensors(junction, moving=getattr(base, "sees_moving", True))
        for _ in range(int(round(hours * 3600 / junction.step_s))):
            advance = False
            if machine.can_advance and _someone_waits(sensors.view(machine)):
                now = cost(0.0)
                advance = all(now <= cost(hold) for hold in holds_s)
            step(junction, machine, sensors, advance)
    return junction.results()

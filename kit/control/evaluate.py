"""Run phase policies on the SUMO junction and put them on one table.

:func:`drive` is the control loop of the SUMO studies: each tick it reads the junction's sensors into
a :class:`~kit.control.phases.View`, asks the policy (only when a green may end), lets the
:class:`~kit.control.phases.PhaseMachine` apply it, shows the lamps and steps SUMO. :func:`evaluate`
runs a policy over held-out demand seeds and pools every vehicle and pedestrian; :func:`table` does
it for several policies on the same seeds (what ``bench/control.py`` prints).

    >>> from kit.control.classic import fixed_time
    >>> r = evaluate(fixed_time(), seeds=[1000], start="2026-10-15T08:00:00", hours=0.25)
    >>> r.vehicles > 100 and r.mean_delay_s > 0
    True
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kit.control.actuated import ARMS
from kit.control.phases import Minimums, PhaseMachine, Policy, View
from kit.errors import UsageError

DEFAULT_START = "2026-10-15T00:00:00"


class Sensors:
    """Turns a junction's detectors into a :class:`View` and keeps the crossing request's timer."""

    def __init__(self, junction: Any, *, detectors: bool = True, moving: bool = True) -> None:
        self.junction = junction
        # False: skip the baselines' loops and lane-area counts (a learned policy never reads them).
        self.detectors = detectors
        # False: skip the camera's cars driving in (a baseline never reads them; they cost more than a step of SUMO).
        self.moving = moving
        self.request_since: float | None = None

    def view(self, machine: PhaseMachine) -> View:
        j = self.junction
        waiting = j.pedestrians_waiting()
        if machine.phase == "ped_green":
            self.request_since = None  # the walk serves everyone waiting
        elif waiting and self.request_since is None:
            self.request_since = j.elapsed
        now = j.now
        return View(
            phase=machine.phase,
            phase_s=machine.phase_s,
            queues=j.queues(),
            approaching={arm: j.approaching(arm) for arm in ARMS} if self.detectors else {},
            vehicles=j.vehicles() if self.detectors else {},
            peds_waiting=waiting,
            ped_wait_s=0.0 if self.request_since is None else j.elapsed - self.request_since,
            hour=now.hour + now.minute / 60 + now.second / 3600,
            echo_m=j.echo_m("w2c") if hasattr(j, "echo_m") else None,
            moving={arm: j.moving(arm) for arm in ARMS} if self.moving and hasattr(j, "moving") else {},
        )


def drive(
    junction: Any,
    policy: Policy,
    *,
    seconds: float,
    minimums: Minimums | None = None,
    on_tick: Callable[[View, bool], None] | None = None,
    detectors: bool = True,
) -> PhaseMachine:
    """Control ``junction`` with ``policy`` for ``seconds`` (one decision per SUMO step)."""
    machine = PhaseMachine(minimums)
    sensors = Sensors(junction, detectors=detectors, moving=getattr(policy, "sees_moving", True))
    for _ in range(int(round(seconds / junction.step_s))):
        advance = False
        if machine.can_advance:
            view = sensors.view(machine)
            advance = bool(policy(view))
            if on_tick is not None:
                on_tick(view, advance)
        step(junction, machine, sensors, advance)
    return machine


def step(junction: Any, machine: PhaseMachine, sensors: Sensors, advance: bool) -> None:
    """One control step: apply the decision, show the lamps, step SUMO (the button's timer runs in any phase)."""
    if not machine.can_advance and machine.phase != "ped_green":
        if sensors.request_since is None and junction.pedestrians_waiting():
            sensors.request_since = junction.elapsed
    machine.tick(advance=advance, dt=junction.step_s)
    car, ped = machine.lamps
    junction.set_lights(car=car, ped=ped)
    junction.step()


def evaluate(
    policy: Policy | Callable[[], Policy],
    *,
    seeds: Sequence[int],
    start: str | datetime = DEFAULT_START,
    hours: float = 24.0,
    minimums: Minimums | None = None,
    detectors: bool = True,
) -> Any:
    """Pooled :class:`~kit.sim.sumo.junction.Results` of ``policy`` over ``seeds`` (each a fresh run).

    ``policy`` may be a factory (called once per seed) for policies that keep state. ``detectors=False``
    leaves the baselines' loop and lane-area counts out of the views (faster, for policies that never read them).
    """
    from kit.sim.sumo.junction import SumoJunction

    if not seeds:
        raise UsageError("seeds=[]: give at least one demand seed, e.g. kit.sim.sumo.demand.HELD_OUT_SEEDS")
    runs = []
    for seed in seeds:
        p = policy() if getattr(policy, "is_factory", False) else policy
        with SumoJunction(seed, start=start, hours=hours) as junction:
            drive(junction, p, seconds=hours * 3600, minimums=minimums, detectors=detectors)
        runs.append(junction.results())
    return pool(runs) if len(runs) > 1 else runs[0]


def pool(runs: Iterable[Any]) -> Any:
    """Results of several runs as one (means weighted by counts; p95 as the count-weighted mean of p95s)."""
    from kit.sim.sumo.junction import Results

    runs = list(runs)
    nv = sum(r.vehicles for r in runs) or 1
    np_ = sum(r.pedestrians for r in runs) or 1
    return Results(
        vehicles=sum(r.vehicles for r in runs),
        finished=sum(r.finished for r in runs),
        mean_delay_s=sum(r.mean_delay_s * r.vehicles for r in runs) / nv,
        p95_delay_s=sum(r.p95_delay_s * r.vehicles for r in runs) / nv,
        mean_stops=sum(r.mean_stops * r.vehicles for r in runs) / nv,
        pedestrians=sum(r.pedestrians for r in runs),
        mean_ped_wait_s=sum(r.mean_ped_wait_s * r.pedestrians for r in runs) / np_,
        p95_ped_wait_s=sum(r.p95_ped_wait_s * r.pedestrians for r in runs) / np_,
        hours=sum(r.hours for r in runs),
    )


@dataclass(frozen=True)
class Row:
    name: str
    results: Any


def baselines() -> dict[str, Policy]:
    """The non-learned controllers of the table, with their documented settings."""
    from kit.control.actuated import actuated
    from kit.control.classic import fixed_time, kit_adaptive
    from kit.control.max_pressure import max_pressure

    return {"fixed": fixed_time(), "adaptive": kit_adaptive(), "actuated": actuated(), "max_pressure": max_pressure()}


def table(
    policies: dict[str, Policy], *, seeds: Sequence[int], start: str | datetime = DEFAULT_START, hours: float = 24.0
) -> list[Row]:
    """Every policy on the same demand seeds."""
    return [Row(name, evaluate(p, seeds=seeds, start=start, hours=hours)) for name, p in policies.items()]


COLUMNS = (
    ("mean_delay_s", "veh mean s"),
    ("p95_delay_s", "veh p95 s"),
    ("mean_stops", "stops"),
    ("mean_ped_wait_s", "ped mean s"),
    ("p95_ped_wait_s", "ped p95 s"),
    ("throughput_per_h", "veh/h"),
)


def format_table(rows: Sequence[Row]) -> str:
    """The table as text, one controller per line."""
    width = max([13] + [len(row.name) + 1 for row in rows])
    head = f"{'controller':<{width}}" + "".join(f"{label:>11}" for _, label in COLUMNS)
    lines = [head]
    for row in rows:
        r = row.results
        lines.append(f"{row.name:<{width}}" + "".join(f"{getattr(r, key):>11.1f}" for key, _ in COLUMNS))
    return "\n".join(lines)

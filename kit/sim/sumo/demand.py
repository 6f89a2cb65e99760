"""Demand for the SUMO junction from the kit's own seeded profile (:mod:`kit.sim.world`).

The kit's approach (west arm, eastbound) gets exactly the arrivals a ``World`` with the same seed
draws (same profile, same random stream, same thinned Poisson process); the opposite arm and the
side road draw from the same daily profile, scaled, on their own streams. Pedestrians follow the
kit's pedestrian profile and cross the main road. Seeds below :data:`HELD_OUT_SEEDS` are for
training and tuning; the held-out seeds are only for the final table.

    >>> from kit.sim.sumo.demand import arrivals
    >>> cars = arrivals(seed=1000, start="2026-10-15T08:00:00", hours=1)
    >>> 500 < len(cars["w2c"]) < 800, sorted(cars)
    (True, ['e2c', 'n2c', 's2c', 'w2c'])
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from pathlib import Path
from xml.sax.saxutils import quoteattr

from kit.sim.world import PEDESTRIANS_PER_HOUR, VEHICLES_PER_HOUR, World, _parse_start

#: Seeds kept out of training and tuning: the bench's table is measured on these only.
HELD_OUT_SEEDS = (1000, 1001, 1002)

#: Share of the kit profile on each inbound arm (w2c is the kit's own approach).
ARM_SHARE = {"w2c": 1.0, "e2c": 0.8, "n2c": 0.25, "s2c": 0.25}
ROUTES = {"w2c": "w2c c2e", "e2c": "e2c c2w", "n2c": "n2c c2s", "s2c": "s2c c2n"}
#: Pedestrians walk along the side road and cross the main road (where the kit's crossing is).
WALKS = (("n2c", "c2s"), ("s2c", "c2n"))
#: Where a walk starts and ends on its edges (m): 15 m before the kerb of a 200 m arm, 15 m beyond it.
WALK_FROM_M, WALK_TO_M = 185.0, 15.0


def _poisson(rng: random.Random, profile: tuple[int, ...], share: float, start: datetime, end_s: float) -> list[float]:
    # The same thinned Poisson process as World._draw_next, so w2c equals a World's cars for one seed.
    peak = max(profile) * share / 3600.0
    times: list[float] = []
    t = 0.0
    while True:
        while True:
            t += rng.expovariate(peak)
            moment = start + timedelta(seconds=t)
            hour = moment.hour + moment.minute / 60 + moment.second / 3600
            if rng.random() * peak <= World._rate_at(profile, hour) * share:
                break
        if t >= end_s:
            return times
        times.append(t)


def vehicle_rate(arm: str, hour: float, scale: float = 1.0) -> float:
    """Vehicles per second arriving on ``arm`` at ``hour`` of the day: the rate :func:`arrivals` draws from."""
    return World._rate_at(VEHICLES_PER_HOUR, hour) * ARM_SHARE[arm] * scale


def pedestrian_rate(hour: float, scale: float = 1.0) -> float:
    """Pedestrians per second arriving at ``hour`` of the day: the rate :func:`pedestrians` draws from."""
    return World._rate_at(PEDESTRIANS_PER_HOUR, hour) * scale


def arrivals(
    seed: int, *, start: str | datetime = "2026-10-15T00:00:00", hours: float = 24.0, scale: float = 1.0
) -> dict[str, list[float]]:
    """Vehicle arrival times (s after ``start``) per inbound arm."""
    begin = _parse_start(start)
    out = {}
    for arm, share in ARM_SHARE.items():
        stream = f"{seed}/vehicles" if arm == "w2c" else f"{seed}/vehicles/{arm}"
        out[arm] = _poisson(random.Random(stream), VEHICLES_PER_HOUR, share * scale, begin, hours * 3600)
    return out


def pedestrians(
    seed: int, *, start: str | datetime = "2026-10-15T00:00:00", hours: float = 24.0, scale: float = 1.0
) -> list[tuple[float, int]]:
    """Pedestrian arrivals as (time s, walk index into :data:`WALKS`)."""
    begin = _parse_start(start)
    times = _poisson(random.Random(f"{seed}/pedestrians"), PEDESTRIANS_PER_HOUR, scale, begin, hours * 3600)
    side = random.Random(f"{seed}/pedestrians/side")
    return [(t, side.randrange(len(WALKS))) for t in times]


def write_routes(
    path: str | Path,
    seed: int,
    *,
    start: str | datetime = "2026-10-15T00:00:00",
    hours: float = 24.0,
    scale: float = 1.0,
) -> Path:
    """Write a SUMO route file (vehicles and persons, sorted by departure) and return its path."""
    items: list[tuple[float, str]] = []
    for arm, times in arrivals(seed, start=start, hours=hours, scale=scale).items():
        for i, t in enumerate(times):
            items.append(
                (t, f'    <vehicle id="{arm}.{i}" route="{arm}" depart="{t:.2f}" departLane="best" departSpeed="max"/>')
            )
    for i, (t, k) in enumerate(pedestrians(seed, start=start, hours=hours, scale=scale)):
        a, b = WALKS[k]
        # The walk is the crossing and its wait (WALK_FROM_M, WALK_TO_M).
        items.append(
            (
                t,
                f'    <person id="p.{i}" depart="{t:.2f}" departPos="{WALK_FROM_M:g}">\n'
                f'        <walk from={quoteattr(a)} to={quoteattr(b)} arrivalPos="{WALK_TO_M:g}"/>\n    </person>',
            )
        )
    items.sort(key=lambda item: item[0])
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', "<routes>"]
    lines += [f'    <route id="{arm}" edges="{edges}"/>' for arm, edges in ROUTES.items()]
    lines += [text for _, text in items]
    lines.append("</routes>")
    path = Path(path)
    path.write_text("\n".join(lines) + "\n")
    return path

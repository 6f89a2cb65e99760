from __future__ import annotations

from kit.sim.sumo.demand import arrivals, pedestrians, write_routes
from kit.sim.world import World


def test_the_kits_approach_gets_exactly_the_worlds_cars():
    start = "2026-10-15T07:30:00"
    cars = arrivals(seed=4, start=start, hours=1)["w2c"]
    world = World(seed=4, start=start)
    world.set_lights(car="green", ped="red")
    world.advance(hours=1)
    assert len(cars) == world.stats.arrived_vehicles > 300


def test_demand_follows_the_day_and_the_seed():
    night = arrivals(seed=1000, start="2026-10-15T02:00:00", hours=1)
    peak = arrivals(seed=1000, start="2026-10-15T08:00:00", hours=1)
    assert sum(map(len, peak.values())) > 10 * sum(map(len, night.values()))
    assert arrivals(seed=1001, hours=1) != arrivals(seed=1000, hours=1)
    assert arrivals(seed=1000, hours=1) == arrivals(seed=1000, hours=1)
    assert len(pedestrians(seed=1000, start="2026-10-15T08:00:00", hours=1)) > 40


def test_route_file_is_sorted_by_departure(tmp_path):
    path = write_routes(tmp_path / "r.rou.xml", 1000, start="2026-10-15T08:00:00", hours=0.2)
    import re

    departs = [float(x) for x in re.findall(r'depart="([0-9.]+)"', path.read_text())]
    assert departs == sorted(departs) and len(departs) > 50

from __future__ import annotations

import pytest

from kit.sim.world import LANE_M, MIN_ECHO_M, World, WorldStats


def _run(world: World, cycles: int = 40) -> World:
    for _ in range(cycles):
        world.set_lights(car="green", ped="red")
        world.advance(30)
        world.set_lights(car="red", ped="green")
        world.advance(20)
    return world


def test_same_seed_same_run():
    a = _run(World(seed=7, start="2026-10-15T07:30:00"))
    b = _run(World(seed=7, start="2026-10-15T07:30:00"))
    assert a.stats == b.stats
    assert a.snapshot() == b.snapshot()
    assert a.stats.served_vehicles > 100


def test_different_seed_different_run():
    a = _run(World(seed=1, start="2026-10-15T07:30:00"))
    b = _run(World(seed=2, start="2026-10-15T07:30:00"))
    assert a.stats.vehicle_waits != b.stats.vehicle_waits


def test_step_size_of_advance_does_not_change_the_run():
    a, b = World(seed=3), World(seed=3)
    a.set_lights(car="red", ped="red")
    b.set_lights(car="red", ped="red")
    a.advance(minutes=10)
    for _ in range(600):
        b.advance(1)
    assert a.snapshot() == b.snapshot() and a.stats == b.stats


def test_cars_queue_on_red_and_leave_on_green():
    world = World(seed=0, start="2026-10-15T08:00:00")
    world.set_lights(car="red", ped="red")
    world.advance(minutes=2)
    queued = world.queue_length
    assert queued >= 10
    assert world.queue_distance < LANE_M
    world.set_lights(car="green", ped="red")
    world.advance(minutes=3)
    assert world.queue_length <= 2
    assert world.stats.served_vehicles >= queued
    assert max(world.stats.vehicle_waits) > 60  # the first cars waited through the whole red


def test_amber_and_off_do_not_release_the_queue():
    for state in ("amber", "red_amber", "off", "invalid"):
        world = World(seed=0, start="2026-10-15T08:00:00")
        world.set_lights(car=state)
        world.advance(minutes=1)
        assert world.stats.served_vehicles == 0, state


def test_queue_distance_is_clamped():
    world = World(seed=0, start="2026-10-15T08:00:00")
    assert world.queue_distance == LANE_M
    world.set_lights(car="red")
    world.advance(minutes=10)
    assert world.queue_distance == MIN_ECHO_M


def test_full_approach_diverts_traffic():
    world = World(seed=0, start="2026-10-15T08:00:00")
    world.set_lights(car="red")
    world.advance(hours=1)
    assert world.queue_length == 40
    assert world.stats.diverted_vehicles > 0
    s = world.stats
    assert s.arrived_vehicles == s.served_vehicles + s.diverted_vehicles + world.queue_length


def test_more_traffic_at_the_morning_peak_than_at_night():
    def arrivals(start: str) -> int:
        world = World(seed=5, start=start)
        world.set_lights(car="green")
        world.advance(hours=1)
        return world.stats.arrived_vehicles

    assert arrivals("2026-10-15T08:00:00") > 5 * arrivals("2026-10-15T02:00:00")


def test_pedestrians_press_wait_and_cross():
    world = World(seed=0, start="2026-10-15T08:00:00")
    world.set_lights(car="green", ped="red")
    world.advance(minutes=3)
    assert world.pedestrians_waiting > 0
    assert world.stats.button_presses > 0
    assert world.take_presses()  # the presses are handed out once...
    assert world.take_presses() == []  # ...and then gone
    waiting = world.pedestrians_waiting
    world.set_lights(car="red", ped="green")
    world.advance(1)
    assert world.pedestrians_waiting == 0
    assert world.pedestrians_crossing == waiting
    assert len(world.stats.pedestrian_waits) == waiting
    world.set_lights(car="green", ped="red")
    world.advance(10)
    assert world.pedestrians_crossing == 0  # across after 8 s


def test_impatient_pedestrians_give_up():
    world = World(seed=0, start="2026-10-15T08:00:00")
    world.set_lights(car="green", ped="red")
    world.advance(minutes=20)
    assert world.stats.gave_up_pedestrians > 0


def test_daylight_follows_the_day():
    world = World(seed=0, start="2026-10-15T00:00:00")
    assert world.daylight == 0.0
    world.advance(hours=12)
    assert world.daylight > 0.5
    world.advance(hours=10)
    assert world.daylight == 0.0


def test_light_level_dims_with_leaves():
    clear = World(seed=0, start="2026-10-15T12:00:00")
    leafy = World(seed=0, start="2026-10-15T12:00:00", leaves=0.8)
    assert leafy.light_level < 0.5 * clear.light_level
    leafy.leaf_cover = 0.0
    assert leafy.light_level == clear.light_level


def test_temperatures_are_plausible():
    world = World(seed=0, start="2026-10-15T04:00:00")
    night = world.road_temperature_c
    world.advance(hours=10)
    afternoon = world.road_temperature_c
    assert -5 < night < afternoon < 35
    assert 30 < world.cpu_temperature_c < 80


def test_now_and_elapsed():
    world = World(seed=0, start="2026-10-15T06:00:00")
    world.advance(90, minutes=1, hours=1)
    assert world.elapsed == pytest.approx(3600 + 60 + 90)
    assert world.now.isoformat() == "2026-10-15T07:02:30"


@pytest.mark.parametrize("kwargs", [{"seconds": -1}, {"minutes": -0.5}, {"seconds": float("nan")}])
def test_negative_time_is_a_clear_error(kwargs):
    world = World()
    with pytest.raises(ValueError, match="time only runs forward"):
        world.advance(**kwargs)
    assert world.elapsed == 0


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="ISO"):
        World(start="yesterday")
    with pytest.raises(ValueError, match="leaves=1.5"):
        World(leaves=1.5)
    with pytest.raises(ValueError, match="button_bounce"):
        World(button_bounce=-1)
    world = World()
    with pytest.raises(ValueError, match="'blue'"):
        world.set_lights(car="blue")
    with pytest.raises(ValueError, match="ped='amber'"):
        world.set_lights(ped="amber")


def test_wired_world_refuses_set_lights():
    world = World()
    world.connect(lambda: ("green", "red"))
    assert world.car_light_state() == "green" and world.ped_light_state() == "red"
    with pytest.raises(RuntimeError, match="board.car_light"):
        world.set_lights(car="red")
    world.connect(None)
    world.set_lights(car="red")
    assert world.car_light_state() == "red"


def test_listeners_each_step_and_each_advance():
    world = World()
    steps, advances = [], []
    world.add_listener(lambda w: steps.append(w.elapsed))
    world.add_listener(lambda w: advances.append(w.elapsed), each_step=False)
    world.advance(5)
    assert steps == [0.5 * i for i in range(1, 11)]
    assert advances == [5.0]
    world.remove_listener(world.remove_listener)  # unknown: ignored


def test_stats_percentiles():
    stats = WorldStats(vehicle_waits=[float(i) for i in range(101)], pedestrian_waits=[10.0, 20.0])
    assert stats.mean_vehicle_wait == 50
    assert stats.p95_vehicle_wait == pytest.approx(95)
    assert stats.mean_pedestrian_wait == 15
    assert WorldStats().p95_vehicle_wait == 0.0
    assert WorldStats().summary()["mean_vehicle_wait_s"] == 0.0


def test_scene_is_what_the_camera_needs():
    world = World(seed=0, start="2026-10-15T08:00:00", leaves=0.3, road_works=True)
    world.set_lights(car="red")
    world.advance(minutes=1)
    scene = world.scene()
    assert scene.queue_length == world.queue_length > 0
    assert scene.pedestrians_waiting == world.pedestrians_waiting
    assert scene.daylight == world.daylight and scene.leaves == 0.3 and scene.road_works and not scene.diverted
    closed = World(seed=0, start="2026-10-15T08:00:00", diverted=True)
    assert closed.road_works and closed.scene().diverted and closed.scene().road_works


def test_road_works_slow_the_discharge():
    def served(road_works: bool) -> int:
        world = World(seed=0, start="2026-10-15T08:00:00", road_works=road_works)
        world.set_lights(car="red")
        world.advance(minutes=3)
        world.set_lights(car="green")
        world.advance(30)
        return world.stats.served_vehicles

    assert served(True) < served(False)

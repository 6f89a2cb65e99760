from __future__ import annotations

import pytest

from kit.errors import KitError
from kit.sim.sumo.junction import SumoBusyError, SumoJunction
from kit.sim.world import CAR_SPACING_M, LANE_M, MIN_ECHO_M


def test_the_kits_lamps_drive_the_main_road_the_walk_and_the_side_road():
    with SumoJunction(seed=1000, start="2026-10-15T08:00:00", hours=0.2) as j:
        groups = {g for g, _ in j._groups}
        assert groups == {"main", "side", "walk"}
        j.set_lights(car="red", ped="red")
        j.run(seconds=120)
        queued = j.queues()["w2c"]
        assert queued > 5
        assert j.echo_m("w2c") <= LANE_M - CAR_SPACING_M * 5  # the ultrasonic sees the standing queue's tail
        j.set_lights(car="green", ped="red")
        echoes, moving = [], []
        for _ in range(40):
            j.step()
            echoes.append(j.echo_m("w2c"))
            moving.append(j.queues()["w2c"] == 0 and j.approaching("w2c", within_m=60.0) > 0)
        assert j.queues()["w2c"] < queued
        # With the queue gone, cars still driving in show as echoes nearer than the empty lane's.
        assert any(m and e < LANE_M for m, e in zip(moving, echoes))
        assert all(MIN_ECHO_M <= e <= LANE_M for e in echoes)
        j.set_lights(car="red", ped="green")
        assert j.side_light == "green"
        j.run(seconds=10)
        j.set_lights(car="red", ped="red")
        assert j.side_light == "amber"
        j.run(seconds=3)
        assert j.side_light == "red"
        result = j.close()
    assert result.vehicles > 50 and result.pedestrians > 0
    assert result.mean_delay_s > 0 and result.p95_delay_s >= result.mean_delay_s


def test_one_junction_per_process_and_bad_lamps_are_refused():
    with SumoJunction(seed=1000, hours=0.05) as j:
        with pytest.raises(SumoBusyError):
            SumoJunction(seed=1001, hours=0.05)
        with pytest.raises(KitError, match="lamp states"):
            j.set_lights(car="blue", ped="red")


def test_vehicles_that_never_get_in_still_count_their_delay():
    # All red for an hour at the peak: the arms fill up and later cars wait to enter.
    with SumoJunction(seed=1000, start="2026-10-15T08:00:00", hours=0.5) as j:
        j.set_lights(car="red", ped="red")
        j.run(seconds=1800)
        result = j.close()
    assert result.finished == 0
    assert result.vehicles > 500 and result.mean_delay_s > 300

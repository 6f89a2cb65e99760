from __future__ import annotations

import pytest

from kit.control.actuated import actuated
from kit.control.classic import fixed_time, kit_adaptive
from kit.control.max_pressure import max_pressure, pressures
from kit.control.phases import View
from kit.errors import UsageError

ARMS = ("w2c", "e2c", "n2c", "s2c")


def view(phase="car_green", phase_s=15.0, queues=(0, 0, 0, 0), approaching=(0, 0, 0, 0), vehicles=None, **kw):
    return View(
        phase,
        phase_s,
        queues=dict(zip(ARMS, queues)),
        approaching=dict(zip(ARMS, approaching)),
        vehicles=dict(zip(ARMS, vehicles or queues)),
        **kw,
    )


def test_fixed_time_ignores_traffic():
    policy = fixed_time(car_green_s=20)
    assert not policy(view(phase_s=19, queues=(0, 0, 9, 9)))
    assert policy(view(phase_s=20, queues=(9, 9, 0, 0)))


def test_kit_adaptive_rests_on_green_until_a_request():
    policy = kit_adaptive()
    assert not policy(view(phase_s=200))
    assert policy(view(phase_s=12, peds_waiting=1, ped_wait_s=2))  # a gap on the kit's approach
    assert not policy(view(phase_s=12, queues=(3, 0, 0, 0), peds_waiting=1, ped_wait_s=2))
    assert policy(view(phase_s=12, queues=(3, 0, 0, 0), peds_waiting=1, ped_wait_s=25))


def test_actuated_extends_while_traffic_flows_and_rests_without_demand():
    policy = actuated(max_car_green_s=60)
    assert not policy(view(approaching=(1, 0, 0, 0), queues=(0, 0, 2, 0)))
    assert policy(view(approaching=(0, 0, 0, 0), queues=(0, 0, 2, 0)))
    assert policy(view(phase_s=60, approaching=(1, 0, 0, 0), queues=(0, 0, 2, 0)))
    assert not policy(view(phase_s=200))


def test_max_pressure_serves_the_heavier_phase_and_caps_the_pedestrians_wait():
    policy = max_pressure(ped_max_wait_s=60)
    assert pressures(view(vehicles=(2, 1, 3, 0), peds_waiting=1)) == {"car_green": 3, "ped_green": 4}
    assert policy(view(vehicles=(2, 1, 3, 0), peds_waiting=1))
    assert not policy(view(vehicles=(5, 5, 3, 0), peds_waiting=1, ped_wait_s=30))
    assert policy(view(vehicles=(5, 5, 3, 0), peds_waiting=1, ped_wait_s=60))
    assert policy(view("ped_green", 8.0, vehicles=(5, 0, 1, 0)))


def test_actuated_on_the_kits_sensors_sees_only_what_the_kit_sees():
    from kit.control.actuated import kit_actuated

    # Cars driving in on the opposite arm, one waiting on the side road: the loops and the camera see the flow.
    view = View("car_green", 15.0, queues={"n2c": 1}, approaching={"e2c": 3})
    assert actuated()(view) is False
    assert kit_actuated()(view) is True  # the loops' count is not the kit's: it sees the camera's view
    assert kit_actuated()(View("car_green", 15.0, queues={"n2c": 1}, moving={"e2c": (20.0, 35.0)})) is False
    # a standing queue shows to the camera as a class: five or fifty cars look the same, and both hold the green
    assert kit_actuated()(View("car_green", 15.0, queues={"n2c": 1, "e2c": 5})) is False


def test_actuated_on_the_kits_sensors_can_serve_the_crossing_after_a_limit():
    from kit.control.actuated import kit_actuated

    capped = kit_actuated(ped_max_wait_s=19.0)
    # the main road still flows (a car driving in on the opposite arm) and someone waits at the kerb
    flowing = dict(queues={"w2c": 2}, moving={"e2c": (30.0,)}, peds_waiting=2)
    assert capped(View("car_green", 30.0, ped_wait_s=18.0, **flowing)) is False  # not yet: the gap rule decides
    assert capped(View("car_green", 30.0, ped_wait_s=19.0, **flowing)) is True
    assert kit_actuated()(View("car_green", 30.0, ped_wait_s=50.0, **flowing)) is False  # no limit: the flow holds it
    # the walk is running: the limit has nothing to serve, the side road's flow decides
    assert capped(View("ped_green", 9.0, queues={"n2c": 1}, peds_waiting=1, ped_wait_s=30.0)) is False
    for bad in (0, -5.0):
        with pytest.raises(UsageError, match="ped_max_wait_s"):
            kit_actuated(ped_max_wait_s=bad)

from __future__ import annotations

import pytest

from kit.board import Board
from kit.control.adaptive import AdaptiveController, AdaptiveTimings, Observation, actuated_policy
from kit.sim.world import World

T = AdaptiveTimings()


def obs(**kw):
    base = dict(phase_s=30.0, queue=False, ped_request=False, ped_wait_s=0.0, night=False)
    base.update(kw)
    return Observation(**base)


def test_rests_on_green_without_a_request():
    assert actuated_policy(obs(phase_s=1000, queue=False), T) is False


def test_serves_a_request_at_a_gap_after_min_green():
    assert actuated_policy(obs(phase_s=T.min_green_s - 1, ped_request=True), T) is False
    assert actuated_policy(obs(phase_s=T.min_green_s, ped_request=True), T) is True


def test_a_queue_holds_green_until_the_pedestrians_waited_long_enough():
    assert actuated_policy(obs(queue=True, ped_request=True, ped_wait_s=T.ped_max_wait_s - 1), T) is False
    assert actuated_policy(obs(queue=True, ped_request=True, ped_wait_s=T.ped_max_wait_s), T) is True
    assert actuated_policy(obs(phase_s=T.max_green_s, queue=True, ped_request=True, ped_wait_s=1), T) is True


def test_night_serves_pedestrians_sooner():
    early = obs(phase_s=T.night_min_green_s, ped_request=True)
    assert actuated_policy(early, T) is False
    assert actuated_policy(Observation(**{**early.__dict__, "night": True}), T) is True


def test_timings_are_checked():
    with pytest.raises(ValueError, match="min_green_s"):
        AdaptiveTimings(min_green_s=90, max_green_s=60)
    with pytest.raises(ValueError, match="ped_green_s"):
        AdaptiveTimings(ped_green_s=-1)
    assert AdaptiveTimings.from_params({"min_green_s": 12, "device_id": "x"}).min_green_s == 12.0


def test_controller_serves_the_button_and_keeps_the_phase_order(mock_factory):
    world = World(seed=4, start="2026-10-15T08:00:00")
    with Board(world, pin_factory=mock_factory) as board:
        controller = AdaptiveController(board)
        controller.run(minutes=30)
        assert controller.phase_log[0] == ("startup", 2.0), "the start-up clearance: all red for all_red_s"
        names = [name for name, _ in controller.phase_log[1:]]
        assert "ped_green" in names, "pedestrians pressed the button but were never served"
        # the sequence always follows the plan: green, amber, all red, walk, clear, red+amber
        order = ["car_green", "car_amber", "all_red", "ped_green", "ped_clear", "car_red_amber"]
        for a, b in zip(names, names[1:]):
            assert order[(order.index(a) + 1) % len(order)] == b
        assert world.stats.served_pedestrians > 0 and world.stats.gave_up_pedestrians == 0


def test_controller_with_no_pedestrians_never_stops_the_cars(mock_factory):
    world = World(seed=4, start="2026-10-15T08:00:00")
    with Board(world, pin_factory=mock_factory) as board:
        controller = AdaptiveController(board, policy=lambda o, t: False)
        controller.run(minutes=5)
        assert controller.phase_log == [("startup", 2.0)] and world.car_light_state() == "green"


def test_negative_run_is_refused(mock_factory):
    with Board(World(seed=0), pin_factory=mock_factory) as board:
        with pytest.raises(ValueError, match="positive"):
            AdaptiveController(board).run(-1)

from __future__ import annotations

import pytest

from kit.board import Board
from kit.control.fixed import PLAN, FixedTimeController, Timings, monitor_for, show
from kit.sim.world import World


def test_plan_is_the_uk_sequence():
    assert [p.car for p in PLAN] == ["green", "amber", "red", "red", "red", "red_amber"]
    assert [p.ped for p in PLAN] == ["red", "red", "red", "green", "red", "red"]
    # pedestrians only ever walk while cars see red
    assert all(p.car == "red" for p in PLAN if p.ped == "green")


def test_timings():
    assert Timings().cycle_s == 20 + 3 + 2 + 7 + 5 + 2  # the parameter table's defaults
    with pytest.raises(ValueError, match="car_amber_s=0"):
        Timings(car_amber_s=0)
    with pytest.raises(ValueError, match="positive"):
        Timings(ped_green_s="long")


def test_show_lights_the_right_lamps(mock_factory):
    with Board(pin_factory=mock_factory) as board:
        monitor_for(board)  # the board's conflict monitor starts all red: the clearance shows first
        board.world.advance(Timings().all_red_s)
        for phase in PLAN:
            show(board, phase)
            assert board.world.car_light_state() == phase.car
            assert board.world.ped_light_state() == phase.ped
            board.world.advance(getattr(Timings(), phase.timing))
        assert board.conflict_monitor.fault is None


def test_show_refuses_an_unsafe_change(mock_factory):
    with Board(pin_factory=mock_factory) as board:
        monitor_for(board)
        board.world.advance(2)
        show(board, PLAN[0])  # car green
        show(board, PLAN[3])  # pedestrians green straight after car green: refused
        assert board.world.car_light_state() == "red" and board.world.ped_light_state() == "red"
        assert "amber skipped" in board.conflict_monitor.fault


def test_run_cycles_through_the_plan(mock_factory):
    world = World(seed=0, start="2026-10-15T08:00:00")
    with Board(world, pin_factory=mock_factory) as board:
        controller = FixedTimeController(board, Timings(car_green_s=20))
        controller.run(minutes=10)
        assert world.elapsed == pytest.approx(600)
        names = [name for name, _ in controller.phase_log]
        assert names[:7] == [p.name for p in PLAN] + ["car_green"]
        # the start-up clearance (all red for all_red_s) comes first and is not part of the plan's log
        assert sum(d for _, d in controller.phase_log) == pytest.approx(600 - Timings().all_red_s)
        assert world.stats.served_vehicles > 50
        assert world.stats.served_pedestrians > 0
        # the plan carries on where it stopped
        before = controller.phase
        controller.run(1)
        assert controller.phase_log[-1][0] == before.name


def test_custom_wait_without_a_world():
    waited = []

    class Lights:  # stands in for a board on real pins: only the lamp values are used
        class _L:
            value = None

        car_light = _L()
        ped_light = _L()
        world = None

    controller = FixedTimeController(Lights(), wait=waited.append)
    controller.run(Timings().cycle_s)
    assert waited == [20, 3, 2, 7, 5, 2]


def test_negative_run_is_an_error(mock_factory):
    with Board(pin_factory=mock_factory) as board:
        with pytest.raises(ValueError, match="positive"):
            FixedTimeController(board).run(-1)


def test_short_runs_add_up_to_the_plan(mock_factory):
    # Many calls shorter than a phase must still walk through the whole plan, as one long call does.
    from kit.board import Board
    from kit.control.fixed import FixedTimeController
    from kit.sim.world import World

    with Board(World(seed=0), pin_factory=mock_factory) as board:
        controller = FixedTimeController(board)
        for _ in range(120):
            controller.run(seconds=1)
        names = {name for name, _ in controller.phase_log}
        assert {"car_green", "car_amber", "ped_green"} <= names

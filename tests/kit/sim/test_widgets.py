"""The clickable simulator: each control changes the world, lets time run and redraws the picture."""

from __future__ import annotations

import pytest

pytest.importorskip("ipywidgets")

from kit import Board  # noqa: E402
from kit.sim.widgets import Simulator  # noqa: E402


@pytest.fixture
def board():
    with Board(seed=0) as b:
        yield b


def test_pressing_the_button_fires_the_students_callback_and_changes_the_picture(board):
    board.car_light.green.on()
    board.ped_light.red.on()
    board.button.when_pressed = lambda: (
        board.car_light.green.off(),
        board.car_light.red.on(),
        board.ped_light.red.off(),
        board.ped_light.green.on(),
    )
    sim = Simulator(board, step_s=1)
    before = sim.picture.value
    sim.buttons["press"].click()
    assert board.ped_light.green.is_lit and board.world.ped_light_state() == "green"
    assert sim.picture.value != before and sim.picture.value == board._repr_svg_()


def test_wave_and_cars_reach_the_sensors(board):
    board.car_light.red.on()
    sim = Simulator(board, step_s=1)
    waiting, queued = board.world.pedestrians_waiting, board.world.queue_length
    sim.buttons["wave"].click()
    assert board.world.pedestrians_waiting == waiting + 1 and board.pir.motion_detected
    sim.buttons["cars"].click()
    assert board.world.queue_length == queued + 3
    assert "queue" in sim.status.value


def test_sliders_set_the_world(board):
    sim = Simulator(board)
    sim.leaves.value = 0.5
    assert board.world.leaf_cover == 0.5
    sim.auto_daylight.value = False
    sim.daylight.value = 0.0
    assert board.world.daylight == 0.0 and not sim.daylight.disabled
    sim.auto_daylight.value = True
    assert board.world.daylight_override is None
    sim.road_works.value = True
    assert board.world.road_works
    warm = board.world.road_temperature_c
    sim.temperature.value = 10
    assert board.world.road_temperature_c == pytest.approx(warm + 10)


def test_no_traffic_means_no_cars(board):
    board.car_light.red.on()
    sim = Simulator(board)
    sim.traffic.value = 0
    queued = board.world.queue_length
    sim.advance(600)
    assert board.world.queue_length == queued
    sim.traffic.value = 4
    sim.advance(600)
    assert board.world.queue_length > queued


def test_a_board_without_a_world_is_refused_with_the_fix():
    class PiBoard:
        world = None

    with pytest.raises(ValueError, match="simulated board"):
        Simulator(PiBoard())

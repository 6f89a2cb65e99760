"""The world drives the board's sensors through gpiozero's own mock pins."""

from __future__ import annotations

import pytest
from gpiozero import Button
from gpiozero.pins.mock import MockChargingPin, MockTriggerPin

from kit.board import PINS, Board
from kit.sim.wiring import SimWiring, tmp36_volts
from kit.sim.world import World


def test_sensor_pins_are_gpiozero_mock_pins(mock_factory):
    with Board(pin_factory=mock_factory) as board:
        assert isinstance(board.distance.trigger, MockTriggerPin)
        assert board.distance.trigger.echo_pin is board.distance.echo
        assert isinstance(board.light_sensor.pin, MockChargingPin)


def test_distance_shrinks_when_cars_queue(mock_factory):
    world = World(seed=0, start="2026-10-15T08:00:00")
    with Board(world, pin_factory=mock_factory) as board:
        board.car_light.red.on()
        empty = board.distance.distance
        assert empty == pytest.approx(world.queue_distance, abs=0.01)
        world.advance(30)
        assert 0 < world.queue_length < 8
        queued = board.distance.distance
        assert queued == pytest.approx(world.queue_distance, abs=0.01)
        assert queued < empty - 0.2
        assert board.distance.in_range == (queued < board.distance.threshold_distance)


def test_light_sensor_darker_at_night_and_under_leaves(mock_factory):
    world = World(seed=0, start="2026-10-15T12:30:00")
    with Board(world, pin_factory=mock_factory) as board:
        noon = board.light_sensor.value
        assert noon == pytest.approx(world.light_level, abs=0.02)
        world.leaf_cover = 0.8
        world.advance(1)
        leafy = board.light_sensor.value
        assert leafy == pytest.approx(world.light_level, abs=0.02)
        world.leaf_cover = 0.0
        world.advance(hours=12)
        night = board.light_sensor.value
        assert not board.light_sensor.light_detected
    assert noon > 0.5
    assert night < 0.06
    assert leafy < noon / 2


def test_pir_sees_waiting_pedestrians(mock_factory):
    world = World(seed=0, start="2026-10-15T08:00:00")
    with Board(world, pin_factory=mock_factory) as board:
        board.ped_light.red.on()
        assert not board.pir.motion_detected
        while world.pedestrians_waiting == 0:
            world.advance(10)
        assert board.pir.wait_for_motion(timeout=2)
        board.ped_light.value = (0, 1)  # green: everybody crosses
        world.advance(1)
        assert world.pedestrians_waiting == 0
        assert board.pir.wait_for_no_motion(timeout=2)


def test_button_events_fire_once_per_press(mock_factory):
    world = World(seed=1, start="2026-10-15T08:00:00")
    with Board(world, pin_factory=mock_factory) as board:
        board.car_light.green.on()
        board.ped_light.red.on()
        pressed, released = [], []
        board.button.when_pressed = lambda: pressed.append(world.elapsed)
        board.button.when_released = lambda: released.append(world.elapsed)
        world.advance(minutes=10)
        assert len(pressed) == world.stats.button_presses > 0
        assert len(released) == len(pressed)
        assert all(r - p == pytest.approx(0.5) for p, r in zip(pressed, released))


def test_polling_misses_short_presses(mock_factory):
    world = World(seed=1, start="2026-10-15T08:00:00")
    with Board(world, pin_factory=mock_factory) as board:
        board.ped_light.red.on()
        seen = 0
        for _ in range(60):  # look every 10 s
            world.advance(10)
            seen += board.button.is_pressed
        assert seen < world.stats.button_presses


def test_bouncy_button_fires_extra_events(mock_factory):
    world = World(seed=1, start="2026-10-15T08:00:00", button_bounce=3)
    with Board(world, pin_factory=mock_factory) as board:
        board.ped_light.red.on()
        pressed = []
        board.button.when_pressed = lambda: pressed.append(world.elapsed)
        world.advance(minutes=5)
        assert world.stats.button_presses > 0
        assert len(pressed) == 4 * world.stats.button_presses


def test_cpu_file_written_and_removed(mock_factory):
    world = World()
    wiring = SimWiring(world, mock_factory, PINS)
    path = wiring.cpu_temperature_file
    with open(path) as f:
        assert int(f.read()) == pytest.approx(world.cpu_temperature_c * 1000, abs=250)
    wiring.close()
    wiring.close()
    import os

    assert not os.path.exists(path)


def test_wiring_needs_mock_pins():
    from gpiozero.pins.pi import PiFactory

    class FakeReal(PiFactory):
        def _get_revision(self):
            return 0xA02082

    with pytest.raises(TypeError, match="SimFactory"):
        SimWiring(World(), FakeReal(), PINS)


def test_closing_the_board_freezes_the_lights_in_the_world(mock_factory):
    world = World(seed=0)
    board = Board(world, pin_factory=mock_factory)
    board.car_light.green.on()
    board.close()
    assert world.car_light_state() == "green"
    world.set_lights(car="red")  # the world is free again
    world.advance(5)


def test_wiring_only_some_devices(mock_factory):
    world = World(seed=2, start="2026-10-15T08:00:00")
    wiring = SimWiring(world, mock_factory, PINS)
    button = Button(PINS["button"], pin_factory=mock_factory)
    wiring.attach(button=button)
    assert world.car_light_state() == "off"  # no lamps attached: the world's own lights
    world.advance(minutes=5)
    button.close()
    wiring.close()


def test_tmp36():
    assert tmp36_volts(0) == 0.5
    assert tmp36_volts(25) == pytest.approx(0.75)


def test_sampled_pins_keep_a_bounded_history(mock_factory):
    from kit.sim.wiring import STATES_KEPT

    with Board(pin_factory=mock_factory) as board:
        echo = board.distance.echo
        for _ in range(3 * STATES_KEPT):
            board.distance.trigger.state = True
            board.distance.trigger.state = False
        assert STATES_KEPT <= len(echo.states) <= 2 * STATES_KEPT
        assert len(board.distance.trigger.states) <= 2 * STATES_KEPT


def test_a_stuck_sensor_reads_one_value_while_the_world_runs_on(mock_factory):
    world = World(seed=0, start="2026-10-15T08:00:00")
    with Board(world, pin_factory=mock_factory) as board:
        board.car_light.red.on()
        world.stick("distance", 0.8)
        world.stick("pir", True)
        world.advance(60)
        assert world.queue_length > 0 and world.queue_distance != pytest.approx(0.8, abs=0.05)
        assert board.distance.distance == pytest.approx(0.8, abs=0.01)
        assert board.pir.motion_detected
        world.stick("pir", None)
        world.stick("distance", None)
        world.advance(1)
        assert board.distance.distance == pytest.approx(world.queue_distance, abs=0.01)
        assert board.pir.motion_detected == bool(world.pedestrians_waiting)
    with pytest.raises(ValueError, match="only 'distance' and 'pir'"):
        world.stick("light", 0.5)
    with pytest.raises(ValueError, match="True or False"):
        world.stick("pir", 0.5)

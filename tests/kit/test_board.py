from __future__ import annotations

import gc

import pytest
from gpiozero import (
    LED,
    MCP3008,
    Button,
    Buzzer,
    CPUTemperature,
    Device,
    DistanceSensor,
    LEDBoard,
    LightSensor,
    MotionSensor,
    TrafficLights,
)
from gpiozero.exc import GPIOPinInUse

from kit.board import PINS, Board, PinError, check_pins, wiring_table
from kit.pins import ENV_FACTORY
from kit.sim.world import World


def test_every_part_is_a_real_gpiozero_device(mock_factory):
    with Board(pin_factory=mock_factory) as board:
        expected = {
            "car_light": TrafficLights,
            "ped_light": LEDBoard,
            "button": Button,
            "buzzer": Buzzer,
            "pir": MotionSensor,
            "distance": DistanceSensor,
            "light_sensor": LightSensor,
            "road_temp": MCP3008,
            "pot": MCP3008,
            "cpu": CPUTemperature,
        }
        for name, cls in expected.items():
            device = getattr(board, name)
            assert isinstance(device, cls), f"board.{name} is {type(device).__name__}"
            assert device.pin_factory is mock_factory
        assert board.car_light.red.pin.info.name == f"GPIO{PINS['car_red']}"
        assert board.ped_light.green.pin.info.name == f"GPIO{PINS['ped_green']}"
        assert board.button.pin.info.name == f"GPIO{PINS['button']}"
        assert board.road_temp.channel == 0 and board.pot.channel == 1


def test_board_without_arguments_simulates_a_world(monkeypatch):
    monkeypatch.delenv(ENV_FACTORY, raising=False)
    with Board(seed=5) as board:
        assert board.simulated and isinstance(board.world, World) and board.world.seed == 5
        assert "not a Raspberry Pi" in board.factory_reason


def test_given_world_is_used(mock_factory):
    world = World(seed=9, start="2026-10-15T12:00:00")
    with Board(world, pin_factory=mock_factory) as board:
        assert board.world is world


def test_lights_are_read_by_the_world(mock_factory):
    with Board(pin_factory=mock_factory) as board:
        world = board.world
        assert world.car_light_state() == "off" and world.ped_light_state() == "off"
        for value, state in [
            ((1, 0, 0), "red"),
            ((1, 1, 0), "red_amber"),
            ((0, 0, 1), "green"),
            ((0, 1, 0), "amber"),
            ((1, 0, 1), "invalid"),
        ]:
            board.car_light.value = value
            assert world.car_light_state() == state
        board.ped_light.value = (0, 1)  # (red, green)
        assert world.ped_light_state() == "green"
        board.ped_light.red.value = 0.2  # a dimmed lamp is still lit
        assert world.ped_light_state() == "invalid"


def test_pwm_brightness_reaches_the_pin(mock_factory):
    with Board(pin_factory=mock_factory) as board:
        board.car_light.amber.value = 0.25
        assert mock_factory.pin(PINS["car_amber"]).state == pytest.approx(0.25)


def test_buzzer_drives_its_pin(mock_factory):
    with Board(pin_factory=mock_factory) as board:
        board.buzzer.on()
        assert mock_factory.pin(PINS["buzzer"]).state
        board.buzzer.off()
        assert not mock_factory.pin(PINS["buzzer"]).state


def test_road_temperature_from_the_tmp36(mock_factory):
    world = World(seed=0, start="2026-10-15T14:00:00")
    with Board(world, pin_factory=mock_factory) as board:
        expected = world.road_temperature_c
        assert board.road_temperature_c == pytest.approx(expected, abs=0.4)  # one ADC step is 0.32 °C
        assert 0.5 < board.road_temp.voltage < 1.0


def test_pot_reads_the_knob(mock_factory):
    with Board(pin_factory=mock_factory) as board:
        board.world.pot_position = 0.25
        assert board.pot.value == pytest.approx(0.25, abs=0.002)
        board.world.pot_position = 1.0
        assert board.pot.voltage == pytest.approx(3.3, abs=0.01)


def test_cpu_temperature(mock_factory):
    with Board(pin_factory=mock_factory) as board:
        assert board.cpu.temperature == pytest.approx(board.world.cpu_temperature_c, abs=0.25)
        board.world.advance(hours=8)
        assert board.cpu.temperature == pytest.approx(board.world.cpu_temperature_c, abs=0.25)


def test_several_boards_in_one_process():
    temps = []
    for seed in range(3):
        board = Board(seed=seed)
        temps.append(round(board.road_temperature_c, 1))
        board.close()
    # and two at once (a notebook cell re-run before the old board is closed)
    a, b = Board(seed=0), Board(seed=1)
    try:
        assert a.road_temperature_c == pytest.approx(temps[0], abs=0.4)
        assert b.road_temperature_c == pytest.approx(temps[1], abs=0.4)
        a.car_light.green.on()
        assert a.world.car_light_state() == "green" and b.world.car_light_state() == "off"
    finally:
        a.close()
        b.close()
    gc.collect()
    with Board(seed=2) as c:
        assert c.road_temperature_c == pytest.approx(temps[2], abs=0.4)


def test_close_is_idempotent_and_frees_the_pins(mock_factory):
    board = Board(pin_factory=mock_factory)
    board.close()
    board.close()
    assert board.closed and repr(board) == "<Board closed>"
    led = LED(PINS["car_red"], pin_factory=mock_factory)  # the pin is free again
    led.close()
    with Board(pin_factory=mock_factory) as again:  # and the same factory can wire a new board
        assert again.road_temperature_c == pytest.approx(again.world.road_temperature_c, abs=0.4)


def test_devices_made_without_pin_factory_land_on_the_board(monkeypatch):
    monkeypatch.delenv(ENV_FACTORY, raising=False)
    with Board() as board:
        assert Device.pin_factory is board.pin_factory
        with pytest.raises(GPIOPinInUse):
            LED(PINS["car_red"])


def test_pins_can_be_moved():
    assert check_pins({"button": 16})["button"] == 16
    with Board(pins={"button": 16}) as board:
        assert board.button.pin.info.name == "GPIO16"


@pytest.mark.parametrize(
    "pins, message",
    [
        ({"button": 9}, "clashes with SPI0"),
        ({"pir": 8}, "clashes with SPI0"),
        ({"button": PINS["pir"]}, f"GPIO {PINS['pir']} is used twice"),
        ({"button": 40}, "does not exist"),
        ({"button": 1}, "does not exist"),
        ({"button": "GPIO16"}, "not a pin number"),
        ({"button": True}, "not a pin number"),
        ({"horn": 16}, "'horn' is not a part of the kit"),
        ({"spi_clock": 21}, "cannot move"),
    ],
)
def test_bad_pin_maps_are_clear_errors(pins, message):
    with pytest.raises(PinError, match=message):
        Board(pins=pins)


def test_error_suggests_free_pins():
    with pytest.raises(PinError) as err:
        check_pins({"button": 9})
    assert "such as 12" in str(err.value)


def test_non_pwm_mock_pins_are_a_clear_error(monkeypatch):
    monkeypatch.setenv(ENV_FACTORY, "mock")
    monkeypatch.setenv("GPIOZERO_MOCK_PIN_CLASS", "mockpin")
    with pytest.raises(PinError, match="mockpwmpin"):
        Board()


def test_world_with_real_pins_is_refused():
    from gpiozero.pins.pi import PiFactory

    class FakeReal(PiFactory):  # a factory that is not a mock: only its type matters here
        def _get_revision(self):
            return 0xA02082

    with pytest.raises(ValueError, match="only drives mock pins"):
        Board(World(), pin_factory=FakeReal())


def test_camera_gives_frames_of_the_world(mock_factory):
    with Board(pin_factory=mock_factory) as board:
        frame = board.camera.capture()
        assert frame.shape == (64, 64) and frame.dtype.name == "uint8"
        assert board.camera is board.camera


def test_camera_missing_is_a_clear_error(mock_factory, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_camera(name, *args, **kwargs):
        if name == "kit.camera":
            raise ModuleNotFoundError("No module named 'kit.camera'", name="kit.camera")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_camera)
    with Board(pin_factory=mock_factory) as board:
        with pytest.raises(RuntimeError, match="kit.camera"):
            board.camera  # noqa: B018 - reading the property is the test


def test_wiring_table_lists_every_pin():
    table = wiring_table()
    for name, number in PINS.items():
        assert f"| `{name}` | {number} |" in table


def test_docs_wiring_table_is_current():
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "wiring.md").read_text()
    assert wiring_table() in doc, "docs/wiring.md is stale: paste kit.board.wiring_table() between the wiring markers"

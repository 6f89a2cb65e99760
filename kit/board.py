"""The kit: one intersection approach wired to a Raspberry Pi, or simulated anywhere else.

:data:`PINS` is the kit's single wiring table (BCM numbers). :class:`Board` builds every part as the
real gpiozero device on those pins. On a Pi the pins are real; elsewhere they are gpiozero mock pins
driven by a :class:`~kit.sim.world.World` (see :mod:`kit.pins` for how the choice is made).

    >>> from kit import Board
    >>> board = Board(seed=1)
    >>> board.car_light.green.on()
    >>> board.world.car_light_state()
    'green'
    >>> board.close()
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from contextlib import nullcontext
from types import MappingProxyType
from typing import Any

from gpiozero import (
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
from gpiozero.exc import GPIOPinInUse, PinPWMUnsupported

from kit.errors import UsageError
from kit.pins import choose_factory

#: The kit's wiring, BCM numbers. SPI0 (GPIO 8-11) belongs to the MCP3008 ADC.
PINS: Mapping[str, int] = MappingProxyType(
    {
        "car_red": 17,
        "car_amber": 27,
        "car_green": 22,
        "ped_red": 5,
        "ped_green": 6,
        "button": 26,
        "buzzer": 13,
        "pir": 4,
        "distance_trigger": 23,
        "distance_echo": 24,
        "light_sensor": 25,
        "spi_clock": 11,
        "spi_mosi": 10,
        "spi_miso": 9,
        "spi_select": 8,
    }
)
SPI_PINS = frozenset({8, 9, 10, 11})
#: MCP3008 inputs: a TMP36 on the road surface and a potentiometer (a knob on the kit).
ADC_CHANNELS: Mapping[str, int] = MappingProxyType({"road_temp": 0, "pot": 1})
#: The lane the ultrasonic sensor watches is 1.6 m long (model scale); 2 m covers it.
DISTANCE_MAX_M = 2.0
VALID_GPIO = range(2, 28)  # BCM 0 and 1 are the HAT EEPROM's I2C; 28+ are not on the header


class PinError(UsageError):
    """A pin map the kit cannot use: an unknown part, a bad number, a pin used twice or an SPI pin taken."""


def wiring_table() -> str:
    """The pin map as a Markdown table (the README and docs/wiring.md show it)."""
    parts = {
        "car_red": "car light, red LED",
        "car_amber": "car light, amber LED",
        "car_green": "car light, green LED",
        "ped_red": "pedestrian light, red LED",
        "ped_green": "pedestrian light, green LED",
        "button": "pedestrian push button (to GND, internal pull-up)",
        "buzzer": "active buzzer",
        "pir": "PIR motion sensor (pedestrian waiting)",
        "distance_trigger": "HC-SR04 trigger",
        "distance_echo": "HC-SR04 echo (through a 5 V to 3.3 V divider)",
        "light_sensor": "LDR with a 1 uF capacitor to GND",
        "spi_clock": "MCP3008 CLK (SPI0 SCLK)",
        "spi_mosi": "MCP3008 DIN (SPI0 MOSI)",
        "spi_miso": "MCP3008 DOUT (SPI0 MISO)",
        "spi_select": "MCP3008 CS (SPI0 CE0)",
    }
    rows = ["| part | BCM GPIO | wiring |", "|---|---|---|"]
    rows += [f"| `{name}` | {number} | {parts[name]} |" for name, number in PINS.items()]
    rows += [
        f"| `{name}` | MCP3008 CH{ch} | {'TMP36 road-temperature sensor' if ch == 0 else 'potentiometer (knob)'} |"
        for name, ch in ADC_CHANNELS.items()
    ]
    return "\n".join(rows)


def check_pins(overrides: Mapping[str, int] | None = None) -> dict[str, int]:
    """The kit's :data:`PINS` with ``overrides`` applied, after checking the result is wireable.

    >>> check_pins({"button": 16})["button"]
    16
    >>> check_pins({"button": 9})
    Traceback (most recent call last):
    ...
    kit.board.PinError: button on GPIO 9 clashes with SPI0 (GPIO 8-11), which the MCP3008 ADC needs; choose a free pin such as 12, 16, 18, 19, 20, 21
    """
    pins = dict(PINS)
    for name, number in dict(overrides or {}).items():
        if name not in PINS:
            raise PinError(f"{name!r} is not a part of the kit; the parts are: {', '.join(PINS)}")
        if name.startswith("spi_"):
            raise PinError(
                f"{name} cannot move: the MCP3008 sits on SPI0 (GPIO 11, 10, 9, 8); leave the spi_* pins out"
            )
        if isinstance(number, bool) or not isinstance(number, int):
            raise PinError(f"{name}={number!r} is not a pin number; give the BCM GPIO number as an int, e.g. 16")
        pins[name] = number
    free = [n for n in VALID_GPIO if n not in pins.values() and n not in SPI_PINS and n not in (2, 3, 7, 14, 15)]
    hint = ", ".join(str(n) for n in free[:6])
    for name, number in pins.items():
        if number not in VALID_GPIO:
            raise PinError(
                f"{name} on GPIO {number} does not exist on the 40-pin header; use a BCM number from 2 to 27 "
                f"(free now: {hint})"
            )
        if number in SPI_PINS and not name.startswith("spi_"):
            raise PinError(
                f"{name} on GPIO {number} clashes with SPI0 (GPIO 8-11), which the MCP3008 ADC needs; "
                f"choose a free pin such as {hint}"
            )
    seen: dict[int, str] = {}
    for name, number in pins.items():
        if number in seen:
            raise PinError(
                f"GPIO {number} is used twice, by {seen[number]} and by {name}; give one of them a free pin "
                f"such as {hint}"
            )
        seen[number] = name
    return pins


class Board:
    """The whole kit as gpiozero devices: lights, button, buzzer, sensors, ADC, CPU temperature, camera.

    :param world: the simulated world to wire to (a new ``World(seed=seed)`` when simulated and None).
    :param seed: seed of the world created when ``world`` is None.
    :param pin_factory: a gpiozero pin factory; None chooses one (:func:`kit.pins.choose_factory`).
    :param pins: parts to move to other pins, e.g. ``{"button": 16}`` (checked by :func:`check_pins`).

    On a Pi ``board.world`` is None. Use it as a context manager, or call :meth:`close`, so that the
    pins are free for the next board (re-running a notebook cell that makes a Board is fine in
    simulation; on a Pi close the old board first).

        >>> with Board(seed=3) as board:
        ...     board.car_light.red.on()
        ...     board.world.advance(minutes=2)
        ...     board.world.queue_length > 0
        True
    """

    def __init__(
        self,
        world: Any = None,
        *,
        seed: int = 0,
        pin_factory: Any = None,
        pins: Mapping[str, int] | None = None,
    ) -> None:
        self.pins = check_pins(pins)
        self._devices: list[Any] = []
        self._wiring = None
        self._camera = None
        self._own_factory = pin_factory is None
        self._saved_default = Device.pin_factory
        self._closed = False
        if pin_factory is None:
            choice = choose_factory()
            pin_factory, self.factory_reason = choice.factory, choice.reason
            simulated = choice.simulated
        else:
            from gpiozero.pins.mock import MockFactory

            simulated = isinstance(pin_factory, MockFactory)
            self.factory_reason = f"pin_factory={type(pin_factory).__name__} given to Board()"
        self.pin_factory = pin_factory
        if simulated:
            from kit.sim.world import World

            self.world = world if world is not None else World(seed=seed)
            # gpiozero builds parts of software SPI with the process-wide default factory; make it ours, so
            # that devices created without pin_factory (LED(17) in a notebook) also land on this board.
            Device.pin_factory = pin_factory
        else:
            if world is not None:
                raise ValueError(
                    f"world={world!r} was given but the pins are real ({type(pin_factory).__name__}): "
                    "a simulated world only drives mock pins; drop world= or set GPIOZERO_PIN_FACTORY=mock"
                )
            self.world = None
        try:
            self._build(simulated)
        except BaseException:
            self.close()
            raise

    def _add(self, device: Any) -> Any:
        self._devices.append(device)
        return device

    def _build(self, simulated: bool) -> None:
        p, f = self.pins, self.pin_factory
        if simulated:
            from kit.sim.wiring import SimWiring

            self._wiring = SimWiring(self.world, f, p)
        try:
            self.car_light = self._add(
                TrafficLights(red=p["car_red"], amber=p["car_amber"], green=p["car_green"], pwm=True, pin_factory=f)
            )
            # _order makes ped_light.value read (red, green), like TrafficLights, not alphabetical
            self.ped_light = self._add(
                LEDBoard(red=p["ped_red"], green=p["ped_green"], pwm=True, _order=("red", "green"), pin_factory=f)
            )
        except PinPWMUnsupported as exc:
            raise PinError(
                f"the kit's lamps are PWMLEDs (brightness), but {type(f).__name__} pins cannot do PWM "
                f"({exc}); with GPIOZERO_PIN_FACTORY=mock set GPIOZERO_MOCK_PIN_CLASS=mockpwmpin or unset it"
            ) from exc
        except GPIOPinInUse as exc:
            raise PinError(
                f"{exc}: another Board (or device) still holds the kit's pins; call board.close() on it first "
                "or use `with Board() as board:`"
            ) from exc
        self.button = self._add(Button(p["button"], pull_up=True, pin_factory=f))
        self.buzzer = self._add(Buzzer(p["buzzer"], pin_factory=f))
        self.pir = self._add(MotionSensor(p["pir"], pin_factory=f))
        sensors = self._wiring.sensor_pins() if self._wiring else nullcontext()
        with sensors, warnings.catch_warnings():
            if simulated:
                # "use pigpio for more accurate readings" is advice for real hardware, not for the simulation
                warnings.simplefilter("ignore")
            # Simulated echoes and charge times are exact, so a long median only adds lag after the world
            # jumps ahead; three samples still outvote one taken just before a jump. Real pins: gpiozero's defaults.
            smoothing = {"queue_len": 3} if simulated else {}
            self.distance = self._add(
                DistanceSensor(
                    echo=p["distance_echo"],
                    trigger=p["distance_trigger"],
                    max_distance=DISTANCE_MAX_M,
                    threshold_distance=0.8,
                    pin_factory=f,
                    **smoothing,
                )
            )
            self.light_sensor = self._add(LightSensor(p["light_sensor"], pin_factory=f, **smoothing))
            self.road_temp = self._add(MCP3008(channel=ADC_CHANNELS["road_temp"], pin_factory=f))
            self.pot = self._add(MCP3008(channel=ADC_CHANNELS["pot"], pin_factory=f))
        if self._wiring is not None:
            self.cpu = self._add(CPUTemperature(sensor_file=self._wiring.cpu_temperature_file, pin_factory=f))
            self._wiring.attach(
                car_light=self.car_light,
                ped_light=self.ped_light,
                button=self.button,
                pir=self.pir,
                distance=self.distance,
                light_sensor=self.light_sensor,
            )
        else:
            self.cpu = self._add(CPUTemperature(pin_factory=f))

    # --- helpers -------------------------------------------------------------------------------
    @property
    def simulated(self) -> bool:
        """True when the board's pins are simulated (then ``board.world`` is the world they show)."""
        return self.world is not None

    @property
    def road_temperature_c(self) -> float:
        """Road temperature in °C from the TMP36 on ADC channel 0 (0.5 V at 0 °C, 10 mV per °C)."""
        return (self.road_temp.voltage - 0.5) * 100.0

    @property
    def camera(self) -> Any:
        """The camera: rendered frames in simulation, the Pi Camera on a Pi (opened on first use)."""
        if self._camera is None:
            try:
                from kit.camera import open_camera
            except ModuleNotFoundError as exc:
                if exc.name not in ("kit.camera", "kit.sim.camera"):
                    raise
                raise RuntimeError(
                    "the camera module (kit.camera) is not part of this installation; "
                    "update the kit (pip install -e .) to use board.camera"
                ) from exc
            self._camera = open_camera(self.world)
        return self._camera

    # --- life ----------------------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Release every pin (and the simulated wiring). Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self._camera is not None and hasattr(self._camera, "close"):
            self._camera.close()
        if self._wiring is not None:
            self._wiring.close()
        for device in self._devices:
            # DistanceSensor.close() drops its trigger before stopping its sampling thread, which can
            # then crash mid-reading; stopping every sampler first closes the devices cleanly.
            queue = getattr(device, "_queue", None)
            if queue is not None:
                queue.stop()
        for device in reversed(self._devices):
            device.close()
        self._devices.clear()
        if self._own_factory and self.world is not None:
            self.pin_factory.close()
            self.pin_factory.reset()
        if Device.pin_factory is self.pin_factory and self.world is not None:
            saved = self._saved_default
            Device.pin_factory = None if saved is self.pin_factory else saved

    def __del__(self) -> None:
        # A notebook cell re-run rebinds `board`; the old one should not keep sampling in the background.
        try:
            self.close()
        except Exception:
            pass

    def __enter__(self) -> Board:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def _repr_svg_(self) -> str:
        """The intersection as SVG (what a notebook shows): lamps as the board drives them, and the world."""
        from kit.sim.render import lamps_from_board, render_svg

        if self._closed:
            return render_svg(None, title="board closed")
        return render_svg(self.world, lamps=lamps_from_board(self))

    def __repr__(self) -> str:
        if self._closed:
            return "<Board closed>"
        where = f"simulated, {self.world!r}" if self.world is not None else f"pins: {type(self.pin_factory).__name__}"
        return f"<Board {where}>"

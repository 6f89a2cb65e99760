"""Wires the simulated world to gpiozero's mock pins, so the kit's devices are the real gpiozero classes.

Before the board builds its devices, :class:`SimWiring` puts gpiozero's own mock pins on the sensor
pins: a :class:`~gpiozero.pins.mock.MockTriggerPin` whose echo time comes from the nearest queued
car, a :class:`~gpiozero.pins.mock.MockChargingPin` whose charge time comes from the light (and the
leaves on the LDR) -- both with their edges stamped at exact times, so readings do not depend on
how busy the machine is -- an emulated MCP3008 on SPI0, and a CPU temperature file. After every step of
the world it drives the PIR and button pins from the pedestrians; and the world reads the lamps'
pins to know whether cars may go.

    >>> from gpiozero import Button, Device
    >>> from kit.board import PINS
    >>> from kit.pins import SimFactory
    >>> from kit.sim.world import World
    >>> from kit.sim.wiring import SimWiring
    >>> world, factory = World(seed=2, start="2026-10-15T08:00:00"), SimFactory()
    >>> wiring = SimWiring(world, factory, PINS)
    >>> button = Button(PINS["button"], pin_factory=factory)
    >>> presses = []
    >>> button.when_pressed = lambda: presses.append(world.now)
    >>> wiring.attach(button=button)
    >>> world.advance(minutes=10)
    >>> len(presses) == world.stats.button_presses > 0
    True
    >>> button.close(); wiring.close(); factory.close()
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections import deque
from collections.abc import Iterator, Mapping
from time import monotonic
from typing import Any

from gpiozero.pins.mock import MockChargingPin, MockFactory, MockPin, MockPWMPin, MockTriggerPin, PinState

from kit.sim.mcp3008 import VREF, MCP3008Slave
from kit.sim.world import World

SPEED_OF_SOUND = 343.26  # m/s, the value gpiozero's DistanceSensor uses
CHARGE_TIME_LIMIT = 0.01  # s, LightSensor's default charge_time_limit
ADC_CHANNELS = {"road_temp": 0, "pot": 1}
CPU_STEP_C = 0.5  # the Pi's thermal sensor reports in steps of about half a degree


def tmp36_volts(celsius: float) -> float:
    """The TMP36's output: 0.5 V at 0 °C and 10 mV per degree."""
    return 0.5 + 0.01 * celsius


STATES_KEPT = 1000  # sampled sensor pins change dozens of times a second; keep recent history only


def _trim(pin: MockPin) -> None:
    if len(pin.states) > 2 * STATES_KEPT:
        del pin.states[:-STATES_KEPT]


class EchoPin(MockPin):
    """A :class:`~gpiozero.pins.mock.MockPin` that can show an edge at an exact tick.

    gpiozero's sensors time edges with the ticks the pin reports. Stamping the edges with the
    simulated durations (instead of sleeping for them) keeps readings exact on a busy machine, where
    a sleeping thread may wake milliseconds late (1 ms is 17 cm to an ultrasonic sensor).
    """

    def edge_at(self, value: bool, ticks: float) -> None:
        assert self._function == "input"
        if self._state == value:
            return
        self._state = value
        self.states.append(PinState(ticks - self._last_change, value))
        self._last_change = ticks
        _trim(self)
        wanted = ("both", "rising") if value else ("both", "falling")
        if self._edges in wanted and self._when_changed is not None:
            self._call_when_changed()


class SimTriggerPin(MockTriggerPin):
    """gpiozero's :class:`~gpiozero.pins.mock.MockTriggerPin` whose echo pulse is stamped, not slept."""

    def _set_state(self, value):
        MockPin._set_state(self, value)
        _trim(self)
        if value:
            rise = monotonic() + 0.0005
            self.echo_pin.edge_at(True, rise)
            self.echo_pin.edge_at(False, rise + self.echo_time)


class SimChargingPin(MockChargingPin):
    """gpiozero's :class:`~gpiozero.pins.mock.MockChargingPin`; the capacitor's charge time is stamped, not slept."""

    def _set_function(self, value):
        MockPin._set_function(self, value)
        _trim(self)
        if value == "input":
            EchoPin.edge_at(self, True, monotonic() + self.charge_time)


class SimWiring:
    """The connection between one :class:`~kit.sim.world.World` and one mock pin factory.

    Create it before the devices (it claims the sensor pins with the right mock pin classes), build the
    sensors inside :meth:`sensor_pins`, then call :meth:`attach` with the devices.
    """

    def __init__(self, world: World, factory: MockFactory, pins: Mapping[str, int]) -> None:
        if not isinstance(factory, MockFactory):
            raise TypeError(
                f"the simulated world drives gpiozero mock pins, but the pin factory is {type(factory).__name__}; "
                "use kit.pins.SimFactory() (or unset GPIOZERO_PIN_FACTORY)"
            )
        self.world = world
        self.factory = factory
        self.pins = dict(pins)
        self._devices: dict[str, Any] = {}
        self._lamps: dict[str, Any] = {}
        self._last = {"distance": None, "light": None}
        self._closed = False
        with self.sensor_pins():
            echo = self._fresh_pin(self.pins["distance_echo"], EchoPin)
            self.trigger = self._fresh_pin(
                self.pins["distance_trigger"], SimTriggerPin, echo_pin=echo, echo_time=self._echo_time()
            )
            self.ldr = self._fresh_pin(self.pins["light_sensor"], SimChargingPin, charge_time=self._charge_time())
            self.adc = MCP3008Slave(self._adc_volts, vref=VREF, pin_factory=factory)
        shm = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
        self._dir = tempfile.mkdtemp(prefix="kit-sim-", dir=shm)  # in memory where possible: rewritten often
        self.cpu_temperature_file = os.path.join(self._dir, "temp")
        self._cpu_text = ""
        self._write_cpu()

    # --- pins ----------------------------------------------------------------------------------
    def _fresh_pin(self, number: int, pin_class: type, **kwargs: Any) -> MockPin:
        # A factory keeps pins after their devices close; a pin of another class left by an earlier
        # board on this factory would be handed back unchanged, so replace it.
        for _header, info in self.factory.board_info.find_pin(number):
            old = self.factory.pins.get(info)
            if old is not None and type(old) is not pin_class:
                del self.factory.pins[info]
        pin = self.factory.pin(number, pin_class=pin_class, **kwargs)
        for name, value in kwargs.items():
            setattr(pin, name, value)
        return pin

    @contextlib.contextmanager
    def sensor_pins(self) -> Iterator[None]:
        """Build sensors inside this block: their pins are plain mock pins, not PWM ones.

        ``MockFactory.pin`` refuses to hand a non-PWM pin (trigger, charging, SPI) to a device that asks
        with a PWM pin class, so the factory's default class is plain while the sensors are built.
        """
        saved = self.factory.pin_class
        if issubclass(saved, MockPWMPin):
            self.factory.pin_class = MockPin
        try:
            yield
        finally:
            self.factory.pin_class = saved

    def attach(self, **devices: Any) -> None:
        """Connect the board's devices: lamps tell the world the lights, the world drives the inputs.

        Known names: car_light, ped_light, button, pir, distance, light_sensor (all optional).
        """
        self._devices.update(devices)
        car = devices.get("car_light")
        if car is not None:
            self._lamps.update(car_red=car.red.pin, car_amber=car.amber.pin, car_green=car.green.pin)
        ped = devices.get("ped_light")
        if ped is not None:
            self._lamps.update(ped_red=ped.red.pin, ped_green=ped.green.pin)
        if self._lamps:
            self.world.connect(self.signals)
        if self._on_step not in self.world._listeners:
            self.world.add_listener(self._on_step)
            self.world.add_listener(self._on_advance, each_step=False)
        self._on_step(self.world)

    def signals(self) -> tuple[str, str]:
        """(car light state, pedestrian light state) read from the lamps' pins."""
        lit = {name: bool(pin.state) for name, pin in self._lamps.items()}
        car = {
            (True, False, False): "red",
            (True, True, False): "red_amber",
            (False, False, True): "green",
            (False, True, False): "amber",
            (False, False, False): "off",
        }.get((lit.get("car_red", False), lit.get("car_amber", False), lit.get("car_green", False)), "invalid")
        ped = {(True, False): "red", (False, True): "green", (False, False): "off"}.get(
            (lit.get("ped_red", False), lit.get("ped_green", False)), "invalid"
        )
        return car, ped

    # --- world -> pins -------------------------------------------------------------------------
    def _distance(self) -> float:
        # what the HC-SR04 measures: the queue's tail, unless the sensor is stuck (World.stick)
        return self.world.stuck.get("distance", self.world.queue_distance)

    def _motion(self) -> bool:
        return bool(self.world.stuck.get("pir", self.world.pedestrians_waiting))

    def _echo_time(self) -> float:
        return 2.0 * self._distance() / SPEED_OF_SOUND

    def _charge_time(self) -> float:
        # LightSensor reads 1 - charge_time / charge_time_limit, so this makes its value track the light.
        return max(2e-4, CHARGE_TIME_LIMIT * (1.0 - self.world.light_level))

    def _adc_volts(self, channel: int) -> float:
        if channel == ADC_CHANNELS["road_temp"]:
            return tmp36_volts(self.world.road_temperature_c)
        if channel == ADC_CHANNELS["pot"]:
            return self.world.pot_position * VREF
        return 0.0

    def _write_cpu(self) -> None:
        # Like the kernel's thermal file: whole millidegrees. Rewritten only when it changes (a write per
        # advance would cost more than the simulation step itself on a slow disk).
        text = f"{round(self.world.cpu_temperature_c / CPU_STEP_C) * CPU_STEP_C * 1000:.0f}\n"
        if text != self._cpu_text:
            with open(self.cpu_temperature_file, "w") as f:
                f.write(text)
            self._cpu_text = text

    def _on_step(self, world: World) -> None:
        self.trigger.echo_time = self._echo_time()
        self.ldr.charge_time = self._charge_time()
        pir = self._devices.get("pir")
        if pir is not None and pir.pin is not None and pir.pin.function == "input":
            if self._motion():
                pir.pin.drive_high()
            else:
                pir.pin.drive_low()
        button = self._devices.get("button")
        presses = world.take_presses()
        if button is not None and button.pin is not None and button.pin.function == "input":
            pin = button.pin
            for _time, bounces in presses:
                if not pin.state:
                    continue  # already held down by someone else
                for _ in range(bounces):  # a cheap switch chatters before it settles
                    pin.drive_low()
                    pin.drive_high()
                pin.drive_low()
            if not world.button_pressed and not pin.state:
                pin.drive_high()

    def _on_advance(self, world: World) -> None:
        self._write_cpu()
        # Smoothed sensors average the last few samples. After a jump in simulated time those samples
        # describe the old world, while a real sensor would have kept sampling all along: give the
        # average what it would hold now (the exact reading of the current echo / charge time), so a
        # read after advance() is fresh and does not wait in real time for new samples.
        distance, light = round(self._distance(), 3), round(world.light_level, 2)
        sensor = self._devices.get("distance")
        if distance != self._last["distance"] and sensor is not None:
            self._refill_average(sensor, min(1.0, self._distance() / sensor.max_distance))
            self._last["distance"] = distance
        sensor = self._devices.get("light_sensor")
        if light != self._last["light"] and sensor is not None:
            self._refill_average(sensor, 1.0 - min(1.0, self._charge_time() / sensor.charge_time_limit))
            self._last["light"] = light
        sensor = self._devices.get("pir")
        if sensor is not None and getattr(sensor, "_queue", None) is not None:
            self._refill_average(sensor, 1.0 if self._motion() else 0.0)

    @staticmethod
    def _refill_average(device: Any, sample: float) -> None:
        queue = getattr(device, "_queue", None)
        if queue is not None and getattr(device, "closed", True) is False:
            # A new deque, swapped in whole: gpiozero's sampling thread may be averaging the old one
            # right now, and mutating a deque under an iteration raises in that thread.
            queue.queue = deque([sample] * queue.queue.maxlen, maxlen=queue.queue.maxlen)
            queue.full.set()

    # --- life ----------------------------------------------------------------------------------
    def close(self) -> None:
        """Disconnect from the world, stop the emulated ADC and remove the temperature file. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self.world.remove_listener(self._on_step)
        self.world.remove_listener(self._on_advance)
        if self.world._signals == self.signals:
            # Freeze the last lights so the world stays consistent after the board is gone.
            lights = self.signals()
            self.world.connect(None)
            self.world._lights = lights
        self._devices.clear()
        self._lamps.clear()
        self.adc.close()
        shutil.rmtree(self._dir, ignore_errors=True)

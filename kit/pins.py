"""Which gpiozero pin factory the kit uses, and why.

The rule, in order:

1. ``GPIOZERO_PIN_FACTORY`` set by the user always wins (``mock``, ``lgpio``, ``rpigpio``, ...).
2. On a Raspberry Pi: gpiozero's own default factory (lgpio on a Pi 5).
3. Anywhere else: a fresh :class:`SimFactory` (gpiozero's ``MockFactory`` with PWM-capable pins),
   which :class:`kit.board.Board` wires to the simulated intersection.

    >>> from kit.pins import choose_factory
    >>> choice = choose_factory()
    >>> choice.name, choice.simulated
    ('mock', True)
    >>> print(choice.reason)
    not a Raspberry Pi and GPIOZERO_PIN_FACTORY is not set: simulated pins
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

from gpiozero import Device, OutputDevice
from gpiozero.pins import Factory
from gpiozero.pins.mock import MockFactory, MockPWMPin, MockSPIInterface, MockSPIInterfaceShared
from gpiozero.pins.spi import SPISoftware, SPISoftwareBus

from kit.errors import UsageError

ENV_FACTORY = "GPIOZERO_PIN_FACTORY"
ENV_MOCK_PIN_CLASS = "GPIOZERO_MOCK_PIN_CLASS"
_MODEL_FILES = ("/proc/device-tree/model", "/sys/firmware/devicetree/base/model")


class PinFactoryError(UsageError):
    """The pin factory asked for cannot be used (unknown name, or it fails to start here)."""


# gpiozero shares one software-SPI interface (and its bus) per set of pin numbers across the whole
# process, whatever the factory. Two simulated boards each have their own pins, so here the key
# includes the factory: otherwise a second board's MCP3008 would clock the first board's pins.
class _FactorySPIBus(SPISoftwareBus):
    @classmethod
    def _shared_key(cls, clock_pin, mosi_pin, miso_pin, *, pin_factory=None):
        return (id(pin_factory), clock_pin, mosi_pin, miso_pin)


class _FactorySPIShared(MockSPIInterfaceShared):
    @classmethod
    def _shared_key(cls, clock_pin, mosi_pin, miso_pin, select_pin, pin_factory):
        return (id(pin_factory), clock_pin, select_pin)

    def __init__(self, clock_pin, mosi_pin, miso_pin, select_pin, *, pin_factory):
        # SPISoftware.__init__ with the factory-keyed bus (gpiozero names its bus class inline).
        self._bus = None
        self._select = None
        super(SPISoftware, self).__init__(pin_factory=pin_factory)
        try:
            self._clock_phase = False
            self._lsb_first = False
            self._bits_per_word = 8
            self._bus = _FactorySPIBus(clock_pin, mosi_pin, miso_pin, pin_factory=pin_factory)
            self._select = OutputDevice(select_pin, active_high=False, pin_factory=pin_factory)
        except BaseException:
            self.close()
            raise


class SimFactory(MockFactory):
    """gpiozero's :class:`~gpiozero.pins.mock.MockFactory` with PWM-capable pins by default.

    The only change: software-SPI interfaces are shared per factory, not per process, so that
    several simulated boards (each with its own factory) can be open at the same time.

        >>> from gpiozero import PWMLED
        >>> from kit.pins import SimFactory
        >>> factory = SimFactory()
        >>> led = PWMLED(17, pin_factory=factory)
        >>> led.value = 0.25
        >>> factory.pin(17).state
        0.25
        >>> led.close(); factory.close()
    """

    def __init__(self, revision: str | None = None, pin_class: type | str | None = None) -> None:
        if pin_class is None:
            pin_class = os.environ.get(ENV_MOCK_PIN_CLASS) or MockPWMPin
        super().__init__(revision=revision, pin_class=pin_class)

    def _get_spi_class(self, shared, hardware):
        return _FactorySPIShared if shared else MockSPIInterface


@dataclass(frozen=True)
class FactoryChoice:
    """A pin factory together with the reason it was chosen (``kit doctor`` prints both)."""

    factory: Factory
    name: str
    reason: str

    @property
    def simulated(self) -> bool:
        """True when the pins are gpiozero mock pins (the kit then wires them to a simulated world)."""
        return isinstance(self.factory, MockFactory)


def raspberry_pi_model() -> str | None:
    """The Pi's model string (e.g. ``"Raspberry Pi 5 Model B Rev 1.0"``), or None on other machines."""
    for name in _MODEL_FILES:
        try:
            model = Path(name).read_bytes().decode("ascii", "replace").strip("\x00 \n")
        except OSError:
            continue
        if "raspberry pi" in model.lower():
            return model
    return None


def is_raspberry_pi() -> bool:
    """True on a Raspberry Pi (read from the device tree, so it is cheap and never touches GPIO)."""
    return raspberry_pi_model() is not None


def factory_names() -> list[str]:
    """Names accepted in ``GPIOZERO_PIN_FACTORY`` (gpiozero's installed pin-factory entry points)."""
    return sorted({ep.name for ep in entry_points(group="gpiozero_pin_factories")})


def _by_name(name: str) -> Factory:
    if name.lower() == "mock":
        return SimFactory()
    matches = [ep for ep in entry_points(group="gpiozero_pin_factories") if ep.name.lower() == name.lower()]
    if not matches:
        raise PinFactoryError(
            f"{ENV_FACTORY}={name!r} is not a pin factory gpiozero knows. "
            f"Use one of {', '.join(factory_names())} (mock = simulated pins), or unset it to let the kit choose."
        )
    try:
        return matches[0].load()()
    except Exception as exc:  # each factory fails in its own way off a Pi (missing library, no /dev/gpiochip)
        raise PinFactoryError(
            f"{ENV_FACTORY}={name!r} could not start on this machine ({type(exc).__name__}: {exc}). "
            f"On a laptop use {ENV_FACTORY}=mock or unset it; on a Pi check that the library behind {name!r} is installed."
        ) from exc


def choose_factory() -> FactoryChoice:
    """Pick the pin factory by the kit's rule (see the module docstring). Raises :class:`PinFactoryError`."""
    name = os.environ.get(ENV_FACTORY, "").strip()
    if name:
        return FactoryChoice(
            _by_name(name), name.lower(), f"{ENV_FACTORY}={name} is set (the user's choice always wins)"
        )
    model = raspberry_pi_model()
    if model is not None:
        if Device.pin_factory is None:
            Device.pin_factory = Device._default_pin_factory()
        factory = Device.pin_factory
        return FactoryChoice(factory, type(factory).__name__, f"running on a {model}: gpiozero's default pins")
    return FactoryChoice(SimFactory(), "mock", f"not a Raspberry Pi and {ENV_FACTORY} is not set: simulated pins")


def default_factory() -> Factory:
    """The factory :func:`choose_factory` picks (a new :class:`SimFactory` each call when simulated)."""
    return choose_factory().factory

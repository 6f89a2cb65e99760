"""An emulated MCP3008 ADC: the SPI slave side, answering gpiozero's bit-banged requests on mock pins.

gpiozero's :class:`~gpiozero.MCP3008` on mock pins talks software SPI over GPIO 11/10/9/8. Nothing
answers unless a :class:`~gpiozero.pins.mock.MockSPIDevice` listens on those pins; this one answers
like the chip: it waits for the start bit, reads the single/differential bit and three channel
bits, then clocks out a null bit and ten result bits.

    >>> from gpiozero import MCP3008, Device
    >>> from kit.pins import SimFactory
    >>> from kit.sim.mcp3008 import MCP3008Slave
    >>> Device.pin_factory = factory = SimFactory(pin_class="mockpin")
    >>> slave = MCP3008Slave(lambda channel: 1.65 if channel == 0 else 0.0, pin_factory=factory)
    >>> adc = MCP3008(channel=0, pin_factory=factory)
    >>> round(adc.voltage, 2)
    1.65
    >>> adc.close(); slave.close(); factory.close(); Device.pin_factory = None
"""

from __future__ import annotations

from collections.abc import Callable

from gpiozero.pins.mock import MockSPIDevice

VREF = 3.3
BITS = 10
CHANNELS = 8


class MCP3008Slave(MockSPIDevice):
    """The chip's side of the SPI conversation; ``voltage(channel)`` gives each input's volts.

    :param voltage: called with the channel number (0..7) at every conversion, returns volts.
    :param vref: the reference voltage (the kit powers the chip from 3.3 V).
    """

    def __init__(
        self,
        voltage: Callable[[int], float],
        *,
        vref: float = VREF,
        clock_pin: int = 11,
        mosi_pin: int = 10,
        miso_pin: int = 9,
        select_pin: int = 8,
        pin_factory=None,
    ) -> None:
        super().__init__(clock_pin, mosi_pin, miso_pin, select_pin, pin_factory=pin_factory)
        self.voltage = voltage
        self.vref = float(vref)
        self.state = "idle"
        self.conversions = 0

    def on_start(self) -> None:
        super().on_start()
        self.state = "idle"

    def on_bit(self) -> None:
        # Clocked in: leading zeros, start bit, single/diff bit, three channel bits; then clock out.
        if self.state == "idle":
            if self.rx_buf[-1]:
                self.state = "mode"
                self.rx_buf = []
        elif self.state == "mode":
            self.state = "single" if self.rx_buf[-1] else "diff"
            self.rx_buf = []
        elif self.state in ("single", "diff"):
            if len(self.rx_buf) == 3:
                self._convert(self.state == "diff", self.rx_word())
                self.state = "result"
        elif self.state == "result":
            if not self.tx_buf:
                self.state = "idle"
                self.rx_buf = []

    def code(self, channel: int, differential: bool = False) -> int:
        """The 10-bit result the chip would return now for ``channel``."""
        if differential:
            volts = self.voltage(channel) - self.voltage(channel ^ 1)
        else:
            volts = self.voltage(channel)
        volts = min(max(volts, 0.0), self.vref)
        return min(2**BITS - 1, int(round(volts / self.vref * (2**BITS - 1))))

    def _convert(self, differential: bool, channel: int) -> None:
        self.conversions += 1
        # A null bit then the result: gpiozero keeps the last 10 of these 12 bits.
        self.tx_word(self.code(channel, differential), BITS + 2)

from __future__ import annotations

import pytest
from gpiozero import MCP3008

from kit.sim.mcp3008 import MCP3008Slave


@pytest.fixture()
def plain_factory(mock_factory):
    # SPI pins are plain mock pins (the board does the same while it builds its sensors)
    from gpiozero.pins.mock import MockPin

    mock_factory.pin_class = MockPin
    return mock_factory


def test_every_channel_reads_its_voltage(plain_factory):
    volts = [0.0, 0.33, 0.5, 1.0, 1.65, 2.2, 3.0, 3.3]
    slave = MCP3008Slave(lambda ch: volts[ch], pin_factory=plain_factory)
    try:
        for channel, expected in enumerate(volts):
            adc = MCP3008(channel=channel, pin_factory=plain_factory)
            assert adc.voltage == pytest.approx(expected, abs=3.3 / 1023), channel
            adc.close()
        assert slave.conversions == 8
    finally:
        slave.close()


def test_out_of_range_volts_are_clipped(plain_factory):
    slave = MCP3008Slave(lambda ch: 5.0 if ch == 0 else -1.0, pin_factory=plain_factory)
    high = MCP3008(channel=0, pin_factory=plain_factory)
    low = MCP3008(channel=1, pin_factory=plain_factory)
    assert high.value == 1.0 and low.value == pytest.approx(0.0, abs=0.001)
    high.close()
    low.close()
    slave.close()


def test_differential_reading(plain_factory):
    slave = MCP3008Slave(lambda ch: {0: 2.0, 1: 0.5}.get(ch, 0.0), pin_factory=plain_factory)
    adc = MCP3008(channel=0, differential=True, pin_factory=plain_factory)
    assert adc.voltage == pytest.approx(1.5, abs=0.01)
    adc.close()
    slave.close()


def test_code_is_ten_bits():
    class Plain(MCP3008Slave):
        def __init__(self, voltage):  # no pins: only the conversion arithmetic
            self.voltage, self.vref = voltage, 3.3

    assert Plain(lambda ch: 3.3).code(0) == 1023
    assert Plain(lambda ch: 1.65).code(0) == 512
    assert Plain(lambda ch: 0.0).code(0) == 0

"""The kit's tests use gpiozero's mock pins through this one fixture, as gpiozero's own tests do."""
from __future__ import annotations

import pytest
from gpiozero import Device

from kit.pins import SimFactory


@pytest.fixture()
def mock_factory():
    """A fresh mock pin factory (PWM-capable pins), also gpiozero's default while the test runs."""
    saved = Device.pin_factory
    factory = SimFactory()
    Device.pin_factory = factory
    try:
        yield factory
    finally:
        factory.close()
        factory.reset()
        Device.pin_factory = saved

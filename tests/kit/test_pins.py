from __future__ import annotations

import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory, MockPin, MockPWMPin

import kit.pins
from kit.pins import ENV_FACTORY, PinFactoryError, SimFactory, choose_factory, factory_names


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
    monkeypatch.delenv(ENV_FACTORY, raising=False)
    monkeypatch.delenv("GPIOZERO_MOCK_PIN_CLASS", raising=False)


def test_off_a_pi_the_kit_simulates():
    choice = choose_factory()
    assert isinstance(choice.factory, SimFactory)
    assert choice.simulated and choice.name == "mock"
    assert "not a Raspberry Pi" in choice.reason
    assert choice.factory.pin_class is MockPWMPin
    choice.factory.close()


def test_each_simulated_choice_is_a_fresh_factory():
    a, b = choose_factory().factory, choose_factory().factory
    assert a is not b


def test_env_mock_wins_and_says_so(monkeypatch):
    monkeypatch.setenv(ENV_FACTORY, "mock")
    choice = choose_factory()
    assert choice.simulated
    assert f"{ENV_FACTORY}=mock" in choice.reason


def test_env_mock_pin_class_is_honoured(monkeypatch):
    monkeypatch.setenv(ENV_FACTORY, "mock")
    monkeypatch.setenv("GPIOZERO_MOCK_PIN_CLASS", "mockpin")
    assert choose_factory().factory.pin_class is MockPin


def test_env_wins_even_on_a_pi(monkeypatch):
    monkeypatch.setattr(kit.pins, "raspberry_pi_model", lambda: "Raspberry Pi 5 Model B Rev 1.0")
    monkeypatch.setenv(ENV_FACTORY, "MOCK")
    assert choose_factory().simulated


def test_on_a_pi_gpiozero_default_is_used(monkeypatch):
    real_pins = MockFactory()  # stands in for lgpio: whatever gpiozero's default is
    monkeypatch.setattr(kit.pins, "raspberry_pi_model", lambda: "Raspberry Pi 5 Model B Rev 1.0")
    monkeypatch.setattr(Device, "pin_factory", real_pins)
    choice = choose_factory()
    assert choice.factory is real_pins
    assert "Raspberry Pi 5" in choice.reason


def test_unknown_factory_name_is_a_clear_error(monkeypatch):
    monkeypatch.setenv(ENV_FACTORY, "gpiomagic")
    with pytest.raises(PinFactoryError) as err:
        choose_factory()
    message = str(err.value)
    assert "'gpiomagic'" in message and "mock" in message and "lgpio" in message


def test_real_factory_off_a_pi_is_a_clear_error(monkeypatch):
    monkeypatch.setenv(ENV_FACTORY, "native")
    with pytest.raises(PinFactoryError, match="could not start on this machine"):
        choose_factory()


def test_factory_names_lists_gpiozero_factories():
    assert {"mock", "lgpio", "rpigpio"} <= set(factory_names())


def test_sim_factory_pins_do_pwm():
    from gpiozero import PWMLED

    factory = SimFactory()
    led = PWMLED(17, pin_factory=factory)
    led.value = 0.3
    assert factory.pin(17).state == pytest.approx(0.3)
    led.close()
    factory.close()

"""Grades lab 01 (GPIO outputs): PWM fade levels, a fade, beep patterns, the phase state machine, driving the board."""
import pytest

pytestmark = [pytest.mark.notebook("01_gpio_outputs"), pytest.mark.slow]  # runs the lab first (a few seconds)


def _check_fade_levels():
    import math

    for steps, gamma in [(2, 2.2), (5, 2.2), (11, 1.0), (7, 3.0)]:
        got = fade_levels(steps, gamma=gamma)
        expected = [(i / (steps - 1)) ** gamma for i in range(steps)]
        assert len(got) == steps, f"fade_levels({steps}) should have {steps} levels, got {len(got)}"
        assert all(math.isclose(a, b, abs_tol=1e-9) for a, b in zip(got, expected)), (
            f"fade_levels({steps}, gamma={gamma}) should be {expected}, got {got}")
    assert fade_levels(4)[0] == 0.0 and fade_levels(4)[-1] == 1.0, "a fade goes from exactly 0 to exactly 1"
    for bad in (1, 0, -3):
        try:
            fade_levels(bad)
        except ValueError:
            continue
        raise AssertionError(f"fade_levels({bad}) should raise ValueError")


@pytest.mark.points(2)
def test_fade_levels(lab):
    lab.run(_check_fade_levels)


def _check_fade():
    from gpiozero import PWMLED

    from kit.pins import SimFactory

    factory = SimFactory()
    led = PWMLED(12, pin_factory=factory)
    waits = []
    fade(led, [0.0, 0.25, 0.5, 1.0, 0.1], 0.3, wait=waits.append)
    seen = [round(s.state, 6) for s in led.pin.states[1:]]
    led.close()
    assert waits == [0.3] * 5, f"wait(step_s) once per level: expected five waits of 0.3, got {waits}"
    assert seen == [0.25, 0.5, 1.0, 0.1], f"the lamp should go through the levels, its pin went {seen}"


@pytest.mark.points(1)
def test_fade(lab):
    lab.run(_check_fade)


def _check_beep():
    import math

    from gpiozero import Buzzer

    from kit.pins import SimFactory

    factory = SimFactory()
    buzzer = Buzzer(12, pin_factory=factory)
    waits = []
    total = beep(buzzer, [(0.2, 0.3), (0.05, 0.05), (1.0, 0.5)], wait=waits.append)
    states = [bool(s.state) for s in buzzer.pin.states]
    active = buzzer.is_active
    buzzer.close()
    assert math.isclose(total, 2.1), f"the pattern lasts 0.2+0.3+0.05+0.05+1.0+0.5 = 2.1 s, beep returned {total!r}"
    assert waits == [0.2, 0.3, 0.05, 0.05, 1.0, 0.5], f"wait on_s then off_s for each pair, got {waits}"
    assert states == [False, True, False, True, False, True, False], f"on/off three times, the pin went {states}"
    assert not active, "the buzzer must be off at the end"
    assert beep(Buzzer(13, pin_factory=factory), [], wait=waits.append) == 0, "an empty pattern lasts 0 s"


@pytest.mark.points(2)
def test_beep(lab):
    lab.run(_check_beep)


def _check_phases():
    assert tuple(CYCLE) == ("red", "red_amber", "green", "amber"), f"CYCLE should be the UK sequence from red, got {CYCLE}"
    for a, b in [("red", "red_amber"), ("red_amber", "green"), ("green", "amber"), ("amber", "red")]:
        assert next_phase(a) == b, f"next_phase({a!r}) should be {b!r}, got {next_phase(a)!r}"
    expected = {"red": (1, 0, 0), "red_amber": (1, 1, 0), "green": (0, 0, 1), "amber": (0, 1, 0)}
    for phase, lamps in expected.items():
        assert tuple(lamps_for(phase)) == lamps, f"lamps_for({phase!r}) should be {lamps}, got {lamps_for(phase)}"
    for bad in ("blue", "RED", None):
        try:
            next_phase(bad)
        except ValueError as err:
            assert repr(bad) in str(err) or str(bad) in str(err), f"the error should name the phase: {err}"
            continue
        raise AssertionError(f"next_phase({bad!r}) should raise ValueError")


@pytest.mark.points(2)
def test_phases_and_lamps(lab):
    lab.run(_check_phases)


def _check_machine():
    import math

    timings = {"red": 10, "red_amber": 2, "green": 15, "amber": 3}
    m = TrafficLightMachine(timings)
    assert m.phase == "red" and math.isclose(m.remaining, 10), (m.phase, m.remaining)
    assert m.tick(9.5) == [] and m.phase == "red"
    assert m.tick(0.5) == ["red_amber"], "red lasts exactly 10 s"
    assert m.tick(2) == ["green"] and tuple(m.lamps()) == (0, 0, 1)
    entered = m.tick(15 + 3 + 10 + 1)  # through amber, red, into red_amber
    assert entered == ["amber", "red", "red_amber"], f"one long tick passes several phases, got {entered}"
    assert math.isclose(m.remaining, 1), f"time left over carries on: expected 1 s of red_amber left, got {m.remaining}"
    g = TrafficLightMachine(timings, start="green")
    assert g.phase == "green" and math.isclose(g.remaining, 15)
    for bad, name in [({"red": 10, "green": 15, "amber": 3}, "red_amber"),
                      ({"red": 10, "red_amber": 0, "green": 15, "amber": 3}, "red_amber"),
                      ({"red": -1, "red_amber": 2, "green": 15, "amber": 3}, "red")]:
        try:
            TrafficLightMachine(bad)
        except ValueError as err:
            assert name in str(err), f"the error should name {name!r}: {err}"
            continue
        raise AssertionError(f"TrafficLightMachine({bad}) should raise ValueError")


@pytest.mark.points(3)
def test_traffic_light_machine(lab):
    lab.run(_check_machine)


def _check_run_lights():
    from kit import Board, World

    timings = {"red": 25, "red_amber": 2, "green": 20, "amber": 3}
    with Board(World(seed=8, start="2026-10-15T08:00:00")) as b:
        b.ped_light.value = (1, 0)
        seen = []
        b.world.add_listener(lambda w: seen.append(w.car_light_state()), each_step=False)
        log = run_lights(TrafficLightMachine(timings), b, 120, step_s=2.0)
        assert len(log) == 60, f"120 s in steps of 2 s is 60 log rows, got {len(log)}"
        assert [round(row[0], 6) for row in log[:3]] == [2.0, 4.0, 6.0], f"elapsed_s after each step: {log[:3]}"
        phases = [row[1] for row in log]
        assert phases[:14] == ["red"] * 13 + ["red_amber"], f"25 s red (13 steps of 2 s), then red_amber: {phases[:14]}"
        assert seen == phases, "the board's lamps must show the machine's phase during each step"
        assert all(row[2] == q for row, q in zip(log[-1:], [b.world.queue_length])), "queue_length after the step"
        assert b.world.stats.served_vehicles > 0, "cars should be served on green"


@pytest.mark.points(2)
def test_run_lights_drives_the_board(lab):
    lab.run(_check_run_lights)

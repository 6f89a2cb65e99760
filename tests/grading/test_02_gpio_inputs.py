"""Grades lab 02 (GPIO inputs and energy): polling vs events, debouncing, hysteresis, LDR, ADC, energy, send on change."""

import pytest

pytestmark = [pytest.mark.notebook("02_gpio_inputs"), pytest.mark.slow]  # runs the lab first (about 15 s)


def _check_polling():
    from kit import Board, World

    results = []
    for period in (0.5, 5, 30):
        with Board(World(seed=9, start="2026-10-15T08:00:00")) as b:
            b.ped_light.value = (1, 0)
            ticks = []
            b.world.add_listener(lambda w: ticks.append(round(w.elapsed, 6)), each_step=False)
            count = count_presses_polling(b, 900, period)
            assert ticks and abs(ticks[-1] - 900) < 1e-6, (
                f"advance the world for `seconds` in total; it ran {ticks[-1:]} s"
            )
            assert len(ticks) == round(900 / period), (
                f"one advance of period_s per look: expected {round(900 / period)}, got {len(ticks)}"
            )
            results.append((period, count, b.world.stats.button_presses))
    # an independent poller on the same worlds
    for period, count, total in results:
        with Board(World(seed=9, start="2026-10-15T08:00:00")) as b:
            b.ped_light.value = (1, 0)
            expected, was = 0, False
            for _ in range(round(900 / period)):
                b.world.advance(period)
                now = b.button.is_pressed
                expected += now and not was
                was = now
        assert count == expected, f"polling every {period} s for 900 s should see {expected} presses, got {count}"
    assert results[0][1] == results[0][2], "polling every 0.5 s sees every half-second press"


@pytest.mark.points(2)
def test_count_presses_polling(lab):
    lab.run(_check_polling)


def _check_events():
    from kit import Board, World

    for seed in (3, 12):
        with Board(World(seed=seed, start="2026-10-15T17:00:00")) as b:
            b.ped_light.value = (1, 0)
            got = count_presses_events(b, 1200)
            assert abs(b.world.elapsed - 1200) < 1e-6, (
                f"advance the world by `seconds` (1200), it ran {b.world.elapsed} s"
            )
            assert got == b.world.stats.button_presses, (
                f"events see every press: {b.world.stats.button_presses} presses, counted {got}"
            )
            assert b.button.when_pressed is None, "set when_pressed back to None when done"


@pytest.mark.points(2)
def test_count_presses_events(lab):
    lab.run(_check_events)


def _check_debounce():
    cases = [
        (([], 0.05), []),
        (([0.0], 0.05), [0.0]),
        (([1.0, 1.01, 1.02, 1.03, 1.2], 0.05), [1.0, 1.2]),
        (([0.0, 0.04, 0.08, 0.12], 0.05), [0.0, 0.08]),  # measured from the last KEPT press
        (([2.0, 2.25, 2.5], 0.25), [2.0, 2.25, 2.5]),  # exactly the window apart: kept
    ]
    for (times, window), expected in cases:
        got = debounce(list(times), window)
        assert list(got) == expected, f"debounce({times}, {window}) should be {expected}, got {got}"


@pytest.mark.points(2)
def test_debounce(lab):
    lab.run(_check_debounce)


def _check_queue_detector():
    d = QueueDetector(0.8, 0.1)
    assert d.queued is False, "a new detector starts with no queue"
    seq = [1.5, 0.85, 0.79, 0.85, 0.9, 0.91, 0.8, 0.79, 1.6]
    got = [d.update(x) for x in seq]
    expected = [False, False, True, True, True, False, False, True, False]
    assert got == expected, f"threshold 0.8, hysteresis 0.1 on {seq}: expected {expected}, got {got}"
    assert d.queued is False
    plain = QueueDetector(0.5)
    assert [plain.update(x) for x in (0.49, 0.51, 0.5, 0.49)] == [True, False, False, True], (
        "no hysteresis: < on, > off"
    )
    for args in [(0,), (-1, 0.1), (0.5, -0.1)]:
        try:
            QueueDetector(*args)
        except ValueError:
            continue
        raise AssertionError(f"QueueDetector{args} should raise ValueError")


@pytest.mark.points(3)
def test_queue_detector_hysteresis(lab):
    lab.run(_check_queue_detector)


def _check_sensor_covered():
    cases = [
        ((0.1, 0.8), True),
        ((0.5, 0.8), False),
        ((0.39, 0.8), True),
        ((0.0, 0.1), False),
        ((0.05, 0.2), True),
        ((0.05, 0.19), False),
    ]
    for (measured, expected_light), want in cases:
        got = sensor_covered(measured, expected_light)
        assert bool(got) == want, f"sensor_covered({measured}, {expected_light}) should be {want}, got {got}"
    assert sensor_covered(0.5, 0.8, ratio=0.7), "ratio=0.7: 0.5 is below 0.7 * 0.8"


@pytest.mark.points(1)
def test_sensor_covered(lab):
    lab.run(_check_sensor_covered)


def _check_adc():
    import math

    for raw, vref, bits, volts in [
        (0, 3.3, 10, 0.0),
        (1023, 3.3, 10, 3.3),
        (512, 3.3, 10, 512 / 1023 * 3.3),
        (2048, 5.0, 12, 2048 / 4095 * 5.0),
    ]:
        got = adc_volts(raw, vref=vref, bits=bits)
        assert math.isclose(got, volts, abs_tol=1e-9), (
            f"adc_volts({raw}, vref={vref}, bits={bits}) should be {volts}, got {got}"
        )
    for volts, celsius in [(0.5, 0.0), (0.75, 25.0), (0.4, -10.0), (1.0, 50.0)]:
        assert math.isclose(tmp36_c(volts), celsius, abs_tol=1e-9), f"tmp36_c({volts}) should be {celsius}"


@pytest.mark.points(2)
def test_adc_volts_and_tmp36(lab):
    lab.run(_check_adc)


def _check_energy():
    import math

    assert math.isclose(duty_cycle_energy_j(1, 1, 75, 0, 1), 270.0), "always on at 75 mW for 1 h is 270 J"
    got = duty_cycle_energy_j(10, 0.5, 100, 1, 2)
    assert math.isclose(got, (0.5 * 100 + 9.5 * 1) / 10 / 1000 * 7200), (
        f"10 s period, 0.5 s at 100 mW, 1 mW asleep, 2 h: got {got}"
    )
    assert math.isclose(duty_cycle_energy_j(60, 0, 75, 2, 24), 2 / 1000 * 86400), "never active: sleep power only"
    for args in [(1, 2, 75, 0, 1), (0, 0, 75, 0, 1)]:
        try:
            duty_cycle_energy_j(*args)
        except ValueError:
            continue
        raise AssertionError(f"duty_cycle_energy_j{args} should raise ValueError")


@pytest.mark.points(2)
def test_duty_cycle_energy(lab):
    lab.run(_check_energy)


def _check_send_on_change():
    samples = [(0, 10.0), (1, 10.3), (2, 10.5), (3, 10.1), (4, 10.0), (5, 9.5), (6, 9.4), (7, 10.0)]
    got = send_on_change(samples, 0.5)
    expected = [(0, 10.0), (2, 10.5), (4, 10.0), (5, 9.5), (7, 10.0)]
    assert [tuple(s) for s in got] == expected, f"delta 0.5 on {samples}: expected {expected}, got {got}"
    assert list(send_on_change([], 1.0)) == []
    assert [tuple(s) for s in send_on_change(samples, 0)] == samples, "delta 0 keeps everything"


@pytest.mark.points(2)
def test_send_on_change(lab):
    lab.run(_check_send_on_change)

"""Grades lab 02 (GPIO inputs and energy): polling vs events, debouncing, hysteresis, LDR, ADC, energy, send on change.

Each ``_observe_*`` function runs in the student's kernel and only gathers values; each test judges them here, in
the grader's process, on inputs drawn from ``grading_rng`` (fresh for every grading run). The simulated world is
deterministic for a seed, so the grader runs its own copy of the student's world to know the right answer.
"""

import math

import pytest

pytestmark = [pytest.mark.notebook("02_gpio_inputs"), pytest.mark.slow]  # runs the lab first (about 15 s)

SEPARATE = 1e-6  # random inputs keep this far from a comparison's edge, so float rounding cannot decide a case


def _raised(outcome):
    """What an observer reports for a call that should have raised: the exception's type name, or None."""
    return outcome.get("raised") if isinstance(outcome, dict) else None


def _world(seed, start):
    from kit import Board, World

    board = Board(World(seed=seed, start=start))
    board.ped_light.value = (1, 0)  # pedestrians wait on red, so they press
    return board


def _observe_polling(seed, start, seconds, periods):
    from kit import Board, World

    out = []
    for period in periods:
        with Board(World(seed=seed, start=start)) as b:
            b.ped_light.value = (1, 0)
            ticks = []
            b.world.add_listener(lambda w: ticks.append(w.elapsed), each_step=False)
            count = count_presses_polling(b, seconds, period)
            out.append({"count": count, "looks": len(ticks), "last": ticks[-1] if ticks else None})
    return out


@pytest.mark.points(2)
def test_count_presses_polling(lab, grading_rng):
    seed, seconds = grading_rng.randint(0, 100_000), grading_rng.choice([600, 900])
    start = f"2026-10-15T{grading_rng.randint(7, 18):02d}:00:00"
    periods = [0.5, *grading_rng.sample([1, 2, 5, 10, 15, 30], 2)]
    got = lab.observe(_observe_polling, seed, start, seconds, periods)
    assert len(got) == len(periods)
    for period, answer in zip(periods, got, strict=True):
        looks = round(seconds / period)
        assert answer["last"] is not None and abs(answer["last"] - seconds) < 1e-6, (
            f"advance the world for `seconds` ({seconds}) in total; it ran {answer['last']} s"
        )
        assert answer["looks"] == looks, f"one advance of period_s per look: expected {looks}, got {answer['looks']}"
        with _world(seed, start) as b:  # the grader's own poller on the same world
            expected, was = 0, b.button.is_pressed
            for _ in range(looks):
                b.world.advance(period)
                now = b.button.is_pressed
                expected += now and not was
                was = now
        assert answer["count"] == expected, (
            f"polling every {period} s for {seconds} s (world seed {seed}, {start}) should see {expected} presses, "
            f"got {answer['count']!r}"
        )


def _observe_events(seeds, start, seconds):
    from kit import Board, World

    out = []
    for seed in seeds:
        with Board(World(seed=seed, start=start)) as b:
            b.ped_light.value = (1, 0)
            got = count_presses_events(b, seconds)
            out.append({"count": got, "elapsed": b.world.elapsed, "reset": b.button.when_pressed is None})
    return out


@pytest.mark.points(2)
def test_count_presses_events(lab, grading_rng):
    seeds = [grading_rng.randint(0, 100_000) for _ in range(2)]
    start, seconds = f"2026-10-15T{grading_rng.randint(7, 18):02d}:00:00", grading_rng.choice([600, 900, 1200])
    got = lab.observe(_observe_events, seeds, start, seconds)
    assert len(got) == len(seeds)
    for seed, answer in zip(seeds, got, strict=True):
        assert abs(answer["elapsed"] - seconds) < 1e-6, (
            f"advance the world by `seconds` ({seconds}), it ran {answer['elapsed']} s"
        )
        with _world(seed, start) as b:  # the grader's own event counter on the same world
            edges = []
            b.button.when_pressed = lambda: edges.append(b.world.elapsed)
            b.world.advance(seconds)
            b.button.when_pressed = None
        # (two people pressing while the button is still held make one press edge, so not world.stats)
        assert answer["count"] == len(edges), (
            f"events see every press: world seed {seed} from {start} presses the button {len(edges)} times "
            f"in {seconds} s, counted {answer['count']!r}"
        )
        assert answer["reset"], "set when_pressed back to None when done"


def _observe_debounce(cases):
    return [debounce(list(times), window) for times, window in cases]


def _debounce(times, window):
    kept = []
    for t in times:
        if not kept or t - kept[-1] >= window:
            kept.append(t)
    return kept


def _clear_of(values, edge):
    """No two values differ by (nearly) exactly ``edge``: float rounding would decide that comparison."""
    return all(abs(abs(b - a) - edge) > SEPARATE for i, a in enumerate(values) for b in values[i + 1 :])


def _press_times(rng, window):
    """Presses with bounces: a few real presses, each followed by contacts bouncing inside the window."""
    while True:
        times, t = [], round(rng.uniform(0, 5), 3)
        for _ in range(rng.randint(3, 6)):
            times.append(t)
            for _ in range(rng.randint(0, 4)):
                times.append(round(times[-1] + rng.uniform(0.001, window * 0.9), 3))
            t = round(times[-1] + rng.uniform(window * 0.3, window * 8), 3)
        if _clear_of(times, window):
            return times


@pytest.mark.points(2)
def test_debounce(lab, grading_rng):
    offset = grading_rng.randint(0, 20)
    cases = [
        [[], 0.05],
        [[float(offset)], 0.05],
        [[offset + 2.0, offset + 2.25, offset + 2.5], 0.25],  # exactly the window apart: kept
    ]
    step = grading_rng.choice([0.03, 0.035, 0.04])  # a chain closer than the window: measured from the last KEPT
    cases.append([[round(offset + i * step, 3) for i in range(grading_rng.randint(4, 8))], 0.05])
    for window in (0.05, grading_rng.choice([0.02, 0.1, 0.2])):
        cases.append([_press_times(grading_rng, window), window])
    got = lab.observe(_observe_debounce, cases)
    assert len(got) == len(cases)
    for (times, window), answer in zip(cases, got, strict=True):
        expected = _debounce(times, window)
        assert isinstance(answer, list) and answer == expected, (
            f"debounce({times}, {window}) should be {expected}, got {answer!r}"
        )


def _observe_queue_detector(runs, bad):
    out = {"runs": [], "bad": []}
    for threshold, hysteresis, distances in runs:
        d = QueueDetector(threshold) if hysteresis is None else QueueDetector(threshold, hysteresis)
        start = d.queued
        states = [d.update(x) for x in distances]
        out["runs"].append({"start": start, "states": states, "end": d.queued})
    for args in bad:
        try:
            QueueDetector(*args)
        except Exception as err:
            out["bad"].append({"raised": type(err).__name__})
        else:
            out["bad"].append({"raised": None})
    return out


def _detector(threshold, hysteresis, distances):
    """The grader's own detector: on below the threshold, off above threshold + hysteresis."""
    queued, states = False, []
    for x in distances:
        if not queued and x < threshold:
            queued = True
        elif queued and x > threshold + (hysteresis or 0.0):
            queued = False
        states.append(queued)
    return states


@pytest.mark.points(3)
def test_queue_detector_hysteresis(lab, grading_rng):
    runs = [
        [0.8, 0.1, [1.5, 0.85, 0.79, 0.85, 0.9, 0.91, 0.8, 0.79, 1.6]],
        [0.5, None, [0.49, 0.51, 0.5, 0.49]],  # no hysteresis: < on, > off
    ]
    for hysteresis in (round(grading_rng.uniform(0.05, 0.4), 3), None):
        threshold = round(grading_rng.uniform(0.5, 3.0), 3)
        edges = [threshold, threshold + (hysteresis or 0.0)]
        distances = []
        while len(distances) < 30:
            x = round(grading_rng.uniform(threshold * 0.6, edges[1] + 0.5), 3)
            if all(abs(x - e) > SEPARATE for e in edges):
                distances.append(x)
        runs.append([threshold, hysteresis, distances])
    bad = [[0], [-round(grading_rng.uniform(0.1, 5), 2), 0.1], [0.5, -round(grading_rng.uniform(0.01, 1), 2)]]
    got = lab.observe(_observe_queue_detector, runs, bad)
    for (threshold, hysteresis, distances), answer in zip(runs, got["runs"], strict=True):
        call = f"QueueDetector({threshold}" + (f", {hysteresis})" if hysteresis is not None else ")")
        expected = _detector(threshold, hysteresis, distances)
        assert answer["start"] is False, f"a new {call} starts with no queue (queued is False)"
        assert answer["states"] == expected, f"{call} on {distances}: expected {expected}, got {answer['states']}"
        assert answer["end"] == expected[-1], f"{call}: .queued is the last state update() returned"
    assert len(got["runs"]) == len(runs)
    for args, outcome in zip(bad, got["bad"], strict=True):
        assert _raised(outcome) == "ValueError", f"QueueDetector{tuple(args)} should raise ValueError"


def _observe_sensor_covered(cases):
    out = []
    for measured, expected, ratio in cases:
        got = sensor_covered(measured, expected) if ratio is None else sensor_covered(measured, expected, ratio=ratio)
        out.append(bool(got))
    return out


@pytest.mark.points(1)
def test_sensor_covered(lab, grading_rng):
    cases = [[0.1, 0.8, None], [0.5, 0.8, None], [0.0, 0.1, None], [0.05, 0.2, None], [0.05, 0.19, None]]
    cases.append([0.5, 0.8, 0.7])  # ratio=0.7: 0.5 is below 0.7 * 0.8
    while len(cases) < 18:
        expected = round(grading_rng.uniform(0.0, 1.0), 3)
        ratio = grading_rng.choice([None, round(grading_rng.uniform(0.2, 0.9), 2)])
        measured = round(grading_rng.uniform(0.0, 1.0) * expected, 3)
        if abs(expected - 0.2) > SEPARATE and abs(measured - (ratio or 0.5) * expected) > SEPARATE:
            cases.append([measured, expected, ratio])
    got = lab.observe(_observe_sensor_covered, cases)
    assert len(got) == len(cases)
    for (measured, expected, ratio), answer in zip(cases, got, strict=True):
        want = expected >= 0.2 and measured < (0.5 if ratio is None else ratio) * expected
        call = f"sensor_covered({measured}, {expected}" + (f", ratio={ratio})" if ratio is not None else ")")
        assert answer == want, f"{call} should be {want}, got {answer}"


def _observe_adc(conversions, voltages):
    return {
        "volts": [adc_volts(raw, vref=vref, bits=bits) for raw, vref, bits in conversions],
        "default": adc_volts(conversions[0][0]),
        "celsius": [tmp36_c(v) for v in voltages],
    }


@pytest.mark.points(2)
def test_adc_volts_and_tmp36(lab, grading_rng):
    conversions = [[0, 3.3, 10], [1023, 3.3, 10]]
    for _ in range(6):
        bits = grading_rng.choice([8, 10, 12, 16])
        conversions.append([grading_rng.randint(0, 2**bits - 1), grading_rng.choice([1.8, 3.3, 5.0]), bits])
    conversions.insert(0, [grading_rng.randint(1, 1022), 3.3, 10])
    voltages = [0.5, 0.75] + [round(grading_rng.uniform(0.1, 2.0), 4) for _ in range(4)]
    got = lab.observe(_observe_adc, conversions, voltages)
    for (raw, vref, bits), volts in zip(conversions, got["volts"], strict=True):
        expected = raw / (2**bits - 1) * vref
        assert isinstance(volts, (int, float)) and math.isclose(volts, expected, abs_tol=1e-9), (
            f"adc_volts({raw}, vref={vref}, bits={bits}) should be {expected}, got {volts!r}"
        )
    assert len(got["volts"]) == len(conversions)
    raw = conversions[0][0]
    assert math.isclose(got["default"], raw / 1023 * 3.3, abs_tol=1e-9), "the defaults are vref=3.3 V and 10 bits"
    for volts, celsius in zip(voltages, got["celsius"], strict=True):
        expected = (volts - 0.5) * 100
        assert isinstance(celsius, (int, float)) and math.isclose(celsius, expected, abs_tol=1e-9), (
            f"tmp36_c({volts}) should be {expected} °C (10 mV per °C, 0.5 V at 0 °C), got {celsius!r}"
        )
    assert len(got["celsius"]) == len(voltages)


def _observe_energy(cases, bad):
    out = {"joules": [duty_cycle_energy_j(*args) for args in cases], "bad": []}
    for args in bad:
        try:
            duty_cycle_energy_j(*args)
        except Exception as err:
            out["bad"].append({"raised": type(err).__name__})
        else:
            out["bad"].append({"raised": None})
    return out


@pytest.mark.points(2)
def test_duty_cycle_energy(lab, grading_rng):
    cases = [[1, 1, 75, 0, 1]]  # always on at 75 mW for 1 h is 270 J
    for _ in range(5):
        period = grading_rng.choice([1, 5, 10, 30, 60, 300])
        cases.append(
            [
                period,
                round(grading_rng.uniform(0, period), 3),
                grading_rng.randint(20, 200),
                round(grading_rng.uniform(0, 5), 2),
                grading_rng.randint(1, 48),
            ]
        )
    cases.append([grading_rng.choice([10, 60]), 0, 75, round(grading_rng.uniform(0.5, 5), 2), 24])  # never active
    period = grading_rng.randint(1, 60)
    bad = [[period, period + grading_rng.randint(1, 10), 75, 0, 1], [0, 0, 75, 0, 1]]
    got = lab.observe(_observe_energy, cases, bad)
    for (period, active, active_mw, sleep_mw, hours), joules in zip(cases, got["joules"], strict=True):
        expected = (active * active_mw + (period - active) * sleep_mw) / period / 1000 * hours * 3600
        assert isinstance(joules, (int, float)) and math.isclose(joules, expected, rel_tol=1e-9, abs_tol=1e-9), (
            f"{period} s period, {active} s at {active_mw} mW, {sleep_mw} mW asleep, {hours} h: "
            f"expected {expected} J, got {joules!r}"
        )
    assert len(got["joules"]) == len(cases)
    for args, outcome in zip(bad, got["bad"], strict=True):
        assert _raised(outcome) == "ValueError", f"duty_cycle_energy_j{tuple(args)} should raise ValueError"


def _observe_send_on_change(cases):
    return [[list(s) for s in send_on_change(samples, delta)] for samples, delta in cases]


def _send_on_change(samples, delta):
    kept = []
    for t, value in samples:
        if not kept or abs(value - kept[-1][1]) >= delta:
            kept.append([t, value])
    return kept


@pytest.mark.points(2)
def test_send_on_change(lab, grading_rng):
    fixed = [[0, 10.0], [1, 10.3], [2, 10.5], [3, 10.1], [4, 10.0], [5, 9.5], [6, 9.4], [7, 10.0]]
    cases = [[fixed, 0.5], [[], 1.0], [fixed, 0]]  # delta 0 keeps everything
    for _ in range(2):
        delta = grading_rng.choice([0.2, 0.5, 1.0])
        while True:
            value, samples = round(grading_rng.uniform(5, 25), 3), []
            for t in range(grading_rng.randint(20, 40)):
                value = round(value + grading_rng.uniform(-delta, delta), 3)
                samples.append([t, value])
            if _clear_of([v for _, v in samples], delta):
                break
        cases.append([samples, delta])
    got = lab.observe(_observe_send_on_change, cases)
    assert len(got) == len(cases)
    for (samples, delta), answer in zip(cases, got, strict=True):
        expected = _send_on_change(samples, delta)
        assert answer == expected, f"delta {delta} on {samples}: expected {expected}, got {answer}"

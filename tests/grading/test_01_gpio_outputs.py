"""Grades lab 01 (GPIO outputs): PWM fade levels, a fade, beep patterns, the phase state machine, driving the board.

Each ``_observe_*`` function runs in the student's kernel and only gathers values; each test judges them here, in
the grader's process, on inputs drawn from ``grading_rng`` (fresh for every grading run).
"""

import math

import pytest

pytestmark = [pytest.mark.notebook("01_gpio_outputs"), pytest.mark.slow]  # runs the lab first (a few seconds)

CYCLE = ("red", "red_amber", "green", "amber")
LAMPS = {"red": [1, 0, 0], "red_amber": [1, 1, 0], "green": [0, 0, 1], "amber": [0, 1, 0]}


def _raised(outcome):
    """What an observer reports for a call that should have raised: the exception's type name, or None."""
    return outcome.get("raised") if isinstance(outcome, dict) else None


def _observe_fade_levels(cases, bad):
    out = {"levels": [fade_levels(steps, gamma=gamma) for steps, gamma in cases], "default": fade_levels(4), "bad": []}
    for steps in bad:
        try:
            fade_levels(steps)
        except Exception as err:
            out["bad"].append({"raised": type(err).__name__})
        else:
            out["bad"].append({"raised": None})
    return out


@pytest.mark.points(2)
def test_fade_levels(lab, grading_rng):
    cases = [
        (2, 2.2),
        (grading_rng.randint(3, 12), 2.2),
        (grading_rng.randint(3, 12), 1.0),
        (grading_rng.randint(3, 12), round(grading_rng.uniform(0.5, 3.5), 3)),
    ]
    bad = [1, 0, -grading_rng.randint(1, 50)]
    got = lab.observe(_observe_fade_levels, cases, bad)
    for (steps, gamma), levels in zip(cases, got["levels"], strict=True):
        expected = [(i / (steps - 1)) ** gamma for i in range(steps)]
        assert len(levels) == steps, f"fade_levels({steps}) should have {steps} levels, got {len(levels)}"
        assert all(
            isinstance(a, (int, float)) and math.isclose(a, b, abs_tol=1e-9)
            for a, b in zip(levels, expected, strict=True)
        ), f"fade_levels({steps}, gamma={gamma}) should be {expected}, got {levels}"
    assert got["default"][0] == 0.0 and got["default"][-1] == 1.0, "a fade goes from exactly 0 to exactly 1"
    for steps, outcome in zip(bad, got["bad"], strict=True):
        assert _raised(outcome) == "ValueError", f"fade_levels({steps}) should raise ValueError"


def _observe_fade(levels, step_s):
    from gpiozero import PWMLED

    from kit.pins import SimFactory

    led = PWMLED(12, pin_factory=SimFactory())
    waits = []
    fade(led, levels, step_s, wait=waits.append)
    seen = [s.state for s in led.pin.states[1:]]
    led.close()
    return {"waits": waits, "seen": seen}


@pytest.mark.points(1)
def test_fade(lab, grading_rng):
    levels = [round(grading_rng.uniform(0.05, 1.0), 4) for _ in range(grading_rng.randint(3, 7))]
    step_s = round(grading_rng.uniform(0.05, 0.5), 3)
    got = lab.observe(_observe_fade, levels, step_s)
    assert got["waits"] == [step_s] * len(levels), (
        f"wait(step_s) once per level: expected {len(levels)} waits of {step_s}, got {got['waits']}"
    )
    seen = [round(v, 6) for v in got["seen"]]
    assert seen == [round(v, 6) for v in levels], f"the lamp should go through the levels {levels}, its pin went {seen}"


def _observe_beep(pattern):
    from gpiozero import Buzzer

    from kit.pins import SimFactory

    factory = SimFactory()
    buzzer = Buzzer(12, pin_factory=factory)
    waits = []
    total = beep(buzzer, pattern, wait=waits.append)
    states = [bool(s.state) for s in buzzer.pin.states]
    active = buzzer.is_active
    buzzer.close()
    empty = beep(Buzzer(13, pin_factory=factory), [], wait=waits.append)
    return {"total": total, "waits": waits, "states": states, "active": active, "empty": empty}


@pytest.mark.points(2)
def test_beep(lab, grading_rng):
    pattern = [
        [round(grading_rng.uniform(0.05, 1.0), 2), round(grading_rng.uniform(0.05, 1.0), 2)]
        for _ in range(grading_rng.randint(2, 5))
    ]
    got = lab.observe(_observe_beep, pattern)
    length = sum(on + off for on, off in pattern)
    assert isinstance(got["total"], (int, float)) and math.isclose(got["total"], length), (
        f"the pattern {pattern} lasts {length:g} s, beep returned {got['total']!r}"
    )
    assert got["waits"][: 2 * len(pattern)] == [t for pair in pattern for t in pair], (
        f"wait on_s then off_s for each pair of {pattern}, got {got['waits']}"
    )
    assert got["states"] == [False] + [True, False] * len(pattern), (
        f"on/off {len(pattern)} times, the pin went {got['states']}"
    )
    assert got["active"] is False, "the buzzer must be off at the end"
    assert got["empty"] == 0, "an empty pattern lasts 0 s"


def _observe_phases(phases, bad):
    out = {"cycle": list(CYCLE), "next": [], "lamps": [], "bad": []}
    for phase in phases:
        out["next"].append(next_phase(phase))
        out["lamps"].append(list(lamps_for(phase)))
    for phase in bad:
        try:
            next_phase(phase)
        except Exception as err:
            out["bad"].append({"raised": type(err).__name__, "message": str(err)[:300]})
        else:
            out["bad"].append({"raised": None})
    return out


@pytest.mark.points(2)
def test_phases_and_lamps(lab, grading_rng):
    phases = grading_rng.sample(CYCLE, 4) + grading_rng.choices(CYCLE, k=3)
    bad = ["blue", "RED", None, "".join(grading_rng.choices("xyzqw", k=5))]
    got = lab.observe(_observe_phases, phases, bad)
    assert tuple(got["cycle"]) == CYCLE, f"CYCLE should be the UK sequence from red, got {got['cycle']}"
    for phase, after, lamps in zip(phases, got["next"], got["lamps"], strict=True):
        expected = CYCLE[(CYCLE.index(phase) + 1) % 4]
        assert after == expected, f"next_phase({phase!r}) should be {expected!r}, got {after!r}"
        assert lamps == LAMPS[phase], f"lamps_for({phase!r}) should be {tuple(LAMPS[phase])}, got {lamps}"
    for phase, outcome in zip(bad, got["bad"], strict=True):
        assert _raised(outcome) == "ValueError", f"next_phase({phase!r}) should raise ValueError"
        assert repr(phase) in outcome["message"] or str(phase) in outcome["message"], (
            f"the error should name the phase: {outcome['message']}"
        )


class _Machine:
    """The grader's own model of the lab's TrafficLightMachine, for expected values."""

    def __init__(self, timings, start="red"):
        self.timings, self.phase, self.remaining = timings, start, float(timings[start])

    def tick(self, dt):
        entered = []
        self.remaining -= dt
        while self.remaining <= 1e-9:
            self.phase = CYCLE[(CYCLE.index(self.phase) + 1) % 4]
            self.remaining += self.timings[self.phase]
            entered.append(self.phase)
        return entered


def _observe_machine(timings, ticks, start, bad):
    m = TrafficLightMachine(timings)
    out = {"initial": [m.phase, m.remaining], "steps": [], "bad": []}
    for dt in ticks:
        entered = m.tick(dt)
        out["steps"].append([list(entered), m.phase, m.remaining, list(m.lamps())])
    g = TrafficLightMachine(timings, start=start)
    out["start"] = [g.phase, g.remaining]
    for timing in bad:
        try:
            TrafficLightMachine(timing)
        except Exception as err:
            out["bad"].append({"raised": type(err).__name__, "message": str(err)[:300]})
        else:
            out["bad"].append({"raised": None})
    return out


def _random_timings(rng):
    return {
        "red": rng.randint(8, 30),
        "red_amber": rng.randint(1, 3),
        "green": rng.randint(8, 25),
        "amber": rng.randint(2, 4),
    }


@pytest.mark.points(3)
def test_traffic_light_machine(lab, grading_rng):
    timings = _random_timings(grading_rng)
    cycle_s = sum(timings.values())
    # half a second short of red's end, then exactly to it, then single steps and one long tick over several phases
    ticks = [
        timings["red"] - 0.5,
        0.5,
        timings["red_amber"],
        grading_rng.randint(1, 3) + 0.5,
        cycle_s + grading_rng.randint(1, 5),
        0.5 * grading_rng.randint(1, 9),
    ]
    start = grading_rng.choice(CYCLE[1:])
    missing = grading_rng.choice(CYCLE)
    bad = [{p: v for p, v in timings.items() if p != missing}, dict(timings, red_amber=0), dict(timings, red=-1)]
    got = lab.observe(_observe_machine, timings, ticks, start, bad)
    assert got["initial"][0] == "red" and math.isclose(got["initial"][1], timings["red"]), (
        f"a new machine starts on red with {timings['red']} s left, got {got['initial']}"
    )
    model = _Machine(timings)
    for dt, (entered, phase, remaining, lamps) in zip(ticks, got["steps"], strict=True):
        expected = model.tick(dt)
        assert entered == expected, f"tick({dt}) with timings {timings} should enter {expected}, got {entered}"
        assert phase == model.phase and math.isclose(remaining, model.remaining, abs_tol=1e-6), (
            f"after tick({dt}): expected {model.phase} with {model.remaining:g} s left, got {phase} with {remaining}"
        )
        assert lamps == LAMPS[model.phase], (
            f"lamps() in {model.phase} should be {tuple(LAMPS[model.phase])}, got {lamps}"
        )
    assert len(got["steps"]) == len(ticks)
    assert got["start"][0] == start and math.isclose(got["start"][1], timings[start]), (
        f"TrafficLightMachine(timings, start={start!r}) should start there with {timings[start]} s, got {got['start']}"
    )
    for timing, name, outcome in zip(bad, [missing, "red_amber", "red"], got["bad"], strict=True):
        assert _raised(outcome) == "ValueError", f"TrafficLightMachine({timing}) should raise ValueError"
        assert name in outcome["message"], f"the error should name {name!r}: {outcome['message']}"


def _observe_run_lights(seed, timings, seconds, step_s):
    from kit import Board, World

    with Board(World(seed=seed, start="2026-10-15T08:00:00")) as b:
        b.ped_light.value = (1, 0)
        seen = []
        b.world.add_listener(lambda w: seen.append(w.car_light_state()), each_step=False)
        log = run_lights(TrafficLightMachine(timings), b, seconds, step_s=step_s)
        return {
            "log": [list(row) for row in log],
            "seen": seen,
            "queue": b.world.queue_length,
            "served": b.world.stats.served_vehicles,
        }


@pytest.mark.points(2)
def test_run_lights_drives_the_board(lab, grading_rng):
    timings = _random_timings(grading_rng)
    step_s = grading_rng.choice([1.0, 2.0])
    steps = grading_rng.randint(50, 70)
    got = lab.observe(_observe_run_lights, grading_rng.randint(1, 10_000), timings, steps * step_s, step_s)
    log = got["log"]
    assert len(log) == steps, f"{steps * step_s:g} s in steps of {step_s:g} s is {steps} log rows, got {len(log)}"
    assert [round(row[0], 6) for row in log[:3]] == [step_s, 2 * step_s, 3 * step_s], (
        f"elapsed_s after each step: {log[:3]}"
    )
    model, expected = _Machine(timings), []
    for _ in range(steps):
        expected.append(model.phase)
        model.tick(step_s)
    phases = [row[1] for row in log]
    assert phases == expected, f"with timings {timings} the phases should go {expected[:20]}..., got {phases[:20]}..."
    assert got["seen"] == phases, "the board's lamps must show the machine's phase during each step"
    assert log[-1][2] == got["queue"], "each row's queue_length is the world's after the step"
    assert got["served"] > 0, "cars should be served on green"

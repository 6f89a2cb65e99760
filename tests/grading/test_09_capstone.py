"""Grades lab 09 (capstone): the adaptive policy, the pipeline from the store, a logged run, the wait reduction.

The policy checks walk a grid of observations and timings region by region (rest on green, minimum green, a gap,
bounded waits), with timings other than the defaults so that numbers of the student's own are caught. The
reduction is measured again here in the student's kernel, with the student's own functions, on the lab's morning
rush and on a seed the lab never shows.
"""
import itertools

import pytest

pytestmark = pytest.mark.notebook("09_capstone")

#: Seconds for one comparison in the kernel: a seeded three-hour rush run twice (fixed, adaptive), ~5 s when idle.
RUSH_TIMEOUT = 120


TIMINGS = (
    {},  # the defaults: min green 10 s, max green 60 s, pedestrians wait at most 20 s, night min green 5 s
    {"min_green_s": 17.0, "max_green_s": 45.0, "ped_max_wait_s": 33.0, "night_min_green_s": 8.0},
)
DEFAULTS = {"min_green_s": 10.0, "max_green_s": 60.0, "ped_max_wait_s": 20.0, "night_min_green_s": 5.0}


def _grid() -> list[tuple[dict, dict]]:
    """(observation, timings) pairs around every limit, both timings, day and night, queue or not."""
    cases = []
    for changes in TIMINGS:
        t = {**DEFAULTS, **changes}
        phases = sorted({0.0, 3.0, t["night_min_green_s"] - 1, t["night_min_green_s"], t["min_green_s"] - 1,
                         t["min_green_s"], t["min_green_s"] + 4, t["max_green_s"] - 1, t["max_green_s"], 200.0})
        waits = sorted({0.0, 2.0, t["ped_max_wait_s"] - 1, t["ped_max_wait_s"], 90.0})
        for phase_s, queue, request, wait, night in itertools.product(phases, (False, True), (False, True), waits,
                                                                     (False, True)):
            if request or not wait:  # no request means no wait
                cases.append(({"phase_s": phase_s, "queue": queue, "ped_request": request, "ped_wait_s": wait,
                               "night": night}, changes))
    return cases


def _decisions(lab) -> list[tuple[dict, dict, bool]]:
    """The student's policy on the whole grid, evaluated in the student's kernel."""
    shortcut = lab.eval("'actuated_policy' in __import__('inspect').getsource(my_policy)")
    assert not shortcut, "write the rules in my_policy yourself instead of calling the kit's actuated_policy"
    cases = _grid()
    got = lab.eval(
        f"(lambda A: [bool(my_policy(A.Observation(**o), A.AdaptiveTimings(**t))) for o, t in {cases!r}])"
        "(__import__('kit.control.adaptive', fromlist=['Observation']))"
    )
    return [(o, {**DEFAULTS, **t}, g) for (o, t), g in zip(cases, got)]


def _least(o: dict, t: dict) -> float:
    return t["night_min_green_s"] if o["night"] else t["min_green_s"]


def _timings_text(t: dict) -> str:
    return ", ".join(f"{k}={v:g}" for k, v in t.items())


@pytest.mark.points(1)
def test_policy_rests_on_green(lab):
    for o, t, got in _decisions(lab):
        if not o["ped_request"]:
            assert got is False, f"nobody asked to cross, so the green goes on; my_policy ended it for {o}"


@pytest.mark.points(2)
def test_policy_respects_min_green(lab):
    for o, t, got in _decisions(lab):
        if o["ped_request"] and o["phase_s"] < _least(o, t):
            assert got is False, (f"the car green lasts at least {_least(o, t):g} s "
                                  f"({'night_min_green_s' if o['night'] else 'min_green_s'}; timings "
                                  f"{_timings_text(t)}); my_policy ended it for {o}")


@pytest.mark.points(1)
def test_policy_serves_at_a_gap(lab):
    for o, t, got in _decisions(lab):
        if o["ped_request"] and o["phase_s"] >= _least(o, t) and not o["queue"]:
            assert got is True, (f"a request, the minimum green over and no queue: serve the crossing (timings "
                                 f"{_timings_text(t)}); my_policy kept green for {o}")


@pytest.mark.points(2)
def test_policy_bounds_the_waits(lab):
    for o, t, got in _decisions(lab):
        if o["ped_request"] and o["phase_s"] >= _least(o, t) and o["queue"]:
            want = o["ped_wait_s"] >= t["ped_max_wait_s"] or o["phase_s"] >= t["max_green_s"]
            assert got is want, (
                f"with a queue the green ends once the pedestrian has waited ped_max_wait_s or the green has lasted "
                f"max_green_s, not before (timings {_timings_text(t)}); for {o} expected {want}, got {got}")


def _check_controller_from_store():
    import tempfile
    from pathlib import Path

    from kit import Board, World
    from kit.control.adaptive import AdaptiveController, actuated_policy
    from kit.store import Store

    s = Store(Path(tempfile.mkdtemp(prefix="grade09-")) / "kit.db")
    s.params.update({"min_green_s": 21.0, "max_green_s": 70.0, "ped_green_s": 9.0, "queue_threshold_m": 1.1,
                     "queue_hysteresis_m": 0.15, "night_daylight": 0.3})
    with Board(World(seed=4, start="2026-10-15T09:00:00")) as b:
        c = controller_from_store(b, s, actuated_policy)
        assert isinstance(c, AdaptiveController), f"expected an AdaptiveController, got {type(c).__name__}"
        assert c.board is b, "the controller drives the board it was given"
        assert c.policy is actuated_policy, "the controller uses the policy it was given"
        got = (c.timings.min_green_s, c.timings.max_green_s, c.timings.ped_green_s)
        assert got == (21.0, 70.0, 9.0), f"timings from the store: expected (21.0, 70.0, 9.0), got {got}"
        got = (c.queue_threshold_m, c.queue_hysteresis_m, c.night_daylight)
        assert got == (1.1, 0.15, 0.3), f"queue threshold, hysteresis, night level from the store: got {got}"
        c.run(minutes=10)
        assert b.world.stats.served_vehicles > 0, "cars should be served"
        greens = [s_ for name, s_ in c.phase_log if name == "car_green"]
        assert greens and min(greens) >= 21.0 - 1e-9, f"stored min_green_s=21 s should hold; greens {greens}"


@pytest.mark.points(2)
def test_controller_from_store(lab):
    lab.run(_check_controller_from_store)


def _check_run_logged():
    import tempfile
    from datetime import timezone
    from pathlib import Path

    from kit import Board, World
    from kit.control.adaptive import AdaptiveController
    from kit.store import Store

    s = Store(Path(tempfile.mkdtemp(prefix="grade09-")) / "kit.db")
    s.params.set("sample_period_s", 10.0)
    batches = []  # sizes of the writes that stored something (one transaction each)
    append_many, append = s.readings.append_many, s.readings.append

    def counting_many(rows, **kw):
        rows = list(rows)
        if rows:
            batches.append(len(rows))
        return append_many(rows, **kw)

    def counting_one(*args, **kw):
        batches.append(1)
        return append(*args, **kw)

    s.readings.append_many, s.readings.append = counting_many, counting_one
    with Board(World(seed=5, start="2026-10-15T08:00:00")) as b:
        c = AdaptiveController(b)
        start = b.world.now.replace(tzinfo=timezone.utc).timestamp()
        n = run_logged(c, s, 7)
        assert abs(c.clock - 420) < 1e-6, f"7 minutes are 420 steps of 1 s; the controller ran {c.clock} s"
        assert s.readings.count() == 84, (
            f"one sample every sample_period_s=10 s for 7 min, two readings each = 84 rows; the store has "
            f"{s.readings.count()}")
        assert n == 84, f"return the number of readings written (84), got {n!r}"
        assert 1 < len(batches) <= 8, (
            f"write with append_many in batches, about once a minute (2..8 writes for 7 min); made {len(batches)}")
        distance = s.readings.range("queue_distance_m")
        green = s.readings.range("car_green")
        ts = [r["ts"] for r in distance]
        assert abs(ts[0] - start) < 1e-6, "the first sample is taken at the very first step, at intersection time"
        assert all(abs(b2 - a2 - 10.0) < 1e-6 for a2, b2 in zip(ts, ts[1:])), "samples 10 s apart in intersection time"
        assert all(0.0 <= r["value"] <= 2.0 for r in distance), "queue_distance_m holds the ultrasonic distance"
        values = {r["value"] for r in green}
        assert values == {0.0, 1.0}, f"car_green is 1.0 on car green, else 0.0; over 7 busy minutes got {values}"
        # the car light's history as the controller logged it must match the readings
        t, expected = 0.0, []
        for name, seconds in c.phase_log:
            expected.append((t, t + seconds, name))
            t += seconds
        for r in green:
            at = r["ts"] - start
            phase = next((name for a, e, name in expected if a - 1e-6 <= at < e - 1e-6), c.phase.name)
            assert r["value"] == (1.0 if phase == "car_green" else 0.0), f"car_green at +{at:.0f} s should say {phase}"


@pytest.mark.points(2)
def test_run_logged(lab):
    lab.run(_check_run_logged)


def _rush(lab, seed: int) -> dict[str, dict]:
    """Fixed time and the student's pipeline (a new device's stored defaults) on one seeded morning rush."""
    return lab.eval(
        "(lambda c, fixed, store, window: {"
        "'fixed': c.simulate(lambda b: fixed.FixedTimeController(b, c.FIXED_DEFAULT), **window), "
        "'adaptive': c.simulate(lambda b: controller_from_store(b, store, my_policy), **window)})"
        "(__import__('kit.control.compare', fromlist=['simulate']), "
        "__import__('kit.control.fixed', fromlist=['FixedTimeController']), "
        "__import__('kit.store', fromlist=['Store']).Store(':memory:'), "
        f"dict(seed={seed}, hours=3, start='2026-10-15T07:00:00'))",
        timeout=RUSH_TIMEOUT,
    )


def _assert_goal(result: dict[str, dict], seed: int) -> None:
    fixed, adaptive = result["fixed"], result["adaptive"]
    cut = 1 - adaptive["mean_vehicle_wait_s"] / fixed["mean_vehicle_wait_s"]
    assert adaptive["vehicles_served"] >= fixed["vehicles_served"] - 5, (
        f"seed {seed}: the adaptive plan served {adaptive['vehicles_served']} vehicles, fixed time "
        f"{fixed['vehicles_served']}")
    assert cut >= 0.20, (f"seed {seed}, 07:00-10:00: mean vehicle wait {adaptive['mean_vehicle_wait_s']} s vs "
                         f"{fixed['mean_vehicle_wait_s']} s with fixed time, {cut:.0%} lower; the goal is at least 20 %")
    assert adaptive["mean_pedestrian_wait_s"] <= fixed["mean_pedestrian_wait_s"], (
        f"seed {seed}: pedestrians waited {adaptive['mean_pedestrian_wait_s']} s on average vs "
        f"{fixed['mean_pedestrian_wait_s']} s with fixed time; they must not wait longer")


@pytest.mark.slow
@pytest.mark.points(3)
def test_wait_reduction_lab_rush(lab):
    result = _rush(lab, 0)
    _assert_goal(result, 0)
    # the lab's own comparison is the same traffic under the same pipeline
    lab_adaptive = lab.eval("rush['adaptive']['mean_vehicle_wait_s']")
    assert lab_adaptive == result["adaptive"]["mean_vehicle_wait_s"], (
        f"the lab's `rush` comparison ({lab_adaptive} s) should come from your pipeline on seed 0 "
        f"({result['adaptive']['mean_vehicle_wait_s']} s)")


@pytest.mark.slow
@pytest.mark.points(3)
def test_wait_reduction_held_out_seed(lab):
    _assert_goal(_rush(lab, 3), 3)

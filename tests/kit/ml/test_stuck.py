"""Stuck sensors told from their history (kit.ml.stuck)."""

from __future__ import annotations

import pytest

from kit.ml.stuck import StuckRules, StuckSensors, StuckWatch
from kit.sim.world import LANE_M


def test_a_reading_that_stays_put_while_events_happen_is_flagged_and_cleared_when_it_moves():
    w = StuckWatch("pir", hold_s=600, min_events=3)
    assert not w.update(0, 0.0)
    for t in range(60, 600, 60):
        assert not w.update(t, 0.0, events=1), "held less than hold_s: not yet"
    assert w.events == 9
    assert w.update(600, 0.0)
    assert w.flagged_at == 600
    assert not w.update(601, 1.0), "it moved: trusted again"
    assert w.events == 0 and w.since == 601


def test_a_reading_that_stays_put_while_nothing_happens_is_not_flagged():
    w = StuckWatch("distance", hold_s=300, min_events=3, tolerance=0.005)
    for t in range(0, 7200, 10):
        assert not w.update(t, 1.6 + (0.004 if t % 20 else 0.0), events=int(t == 100))
    assert w.events == 1


def test_changes_within_the_tolerance_do_not_count_as_moving():
    w = StuckWatch("distance", hold_s=10, min_events=1, tolerance=0.005)
    w.update(0, 1.0)
    assert w.update(20, 1.004, events=1)
    assert not w.update(21, 1.006)


@pytest.mark.parametrize(
    "kwargs, word",
    [
        ({"hold_s": 0, "min_events": 1}, "hold_s"),
        ({"hold_s": float("nan"), "min_events": 1}, "hold_s"),
        ({"hold_s": 1, "min_events": 0}, "min_events"),
        ({"hold_s": 1, "min_events": 1.5}, "min_events"),
        ({"hold_s": 1, "min_events": 1, "tolerance": -1}, "tolerance"),
    ],
)
def test_bad_rules_are_refused_with_the_value(kwargs, word):
    with pytest.raises(ValueError, match=word):
        StuckWatch("x", **kwargs)


def test_the_pir_is_flagged_after_crossings_it_never_saw_and_the_distance_after_traffic_it_never_saw():
    watch = StuckSensors(StuckRules(distance_hold_s=300, distance_events=6, pir_hold_s=600, pir_events=3))
    walk = False
    for s in range(0, 1200):
        walk = s % 240 < 7  # the walk light comes on every 4 minutes, for 7 s
        queue = (s // 60) % 3 if s % 10 == 0 else None  # the camera sees 0, 1, 2 cars in turn, a minute each
        watch.update(s, distance_m=1.6, pir=False, walk=walk, queue_class=queue)
        if s == 299:
            assert watch.distance_ok, "the distance held for less than 5 minutes"
    assert not watch.distance_ok and watch.distance.flagged_at == 300
    assert not watch.pir_ok and watch.pir.flagged_at == 720, "crossings counted at 240, 480 and 720 s"
    assert "pir stuck at 0" in watch.status() and "distance stuck at 1.6" in watch.status()


def test_working_sensors_that_follow_the_world_are_never_flagged():
    watch = StuckSensors()
    for s in range(0, 4 * 3600):
        cars = (s // 45) % 4
        phase = s % 120
        waiting = 100 <= phase < 110  # someone waits 10 s, then the walk light comes on
        watch.update(
            s,
            distance_m=1.6 - 0.2 * cars,
            pir=waiting,
            walk=110 <= phase < 117,
            queue_class=min(cars, 2) if s % 10 == 0 else None,
        )
        assert watch.distance_ok and watch.pir_ok, s
    assert watch.status() == "ok"


def test_the_camera_agreeing_with_a_constant_distance_is_no_evidence():
    watch = StuckSensors()
    for s in range(0, 3 * 3600):  # a quiet night: the empty lane, the camera sees it empty
        watch.update(s, distance_m=LANE_M, pir=False, walk=False, queue_class=0 if s % 10 == 0 else None)
    assert watch.distance_ok and watch.distance.events == 0

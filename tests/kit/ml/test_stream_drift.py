"""kit.ml.stream_drift: a normal day stays quiet against normal days of the same light and hour; faults are caught."""

from __future__ import annotations

import numpy as np
import pytest

from kit.ml.stream_drift import StreamMonitor, StreamReference, bins_of, frame_stats, record_day, windows


@pytest.fixture(scope="module")
def monitor():
    days = [record_day(seed=s, every_s=300) for s in (1, 2, 3)]
    return StreamMonitor(StreamReference.from_days(days))


def test_a_recorded_day_spans_the_light_and_the_hours():
    day = record_day(seed=5, every_s=1800)
    assert len(day["frames"]) == 48 and day["frames"].dtype == np.uint8
    assert day["light"].min() < 0.06 < 0.4 < day["light"].max()
    assert day["hour"][0] == 0 and 23 < day["hour"][-1] < 24
    assert not day["fault"].any()


def test_statistics_and_bins():
    flat = np.full((2, 64, 64), 120, np.uint8)
    s = frame_stats(flat)
    assert s.shape == (2, 3) and s[0, 1] == 0 and s[0, 2] == 0
    li, hi = bins_of(np.array([0.0, 0.9]), np.array([2.0, 13.5]))
    assert li.tolist() == [0, 5] and hi.tolist() == [0, 3]


def test_normal_day_of_another_seed_is_quiet_and_faults_are_caught(monitor):
    normal = record_day(seed=50, every_s=300)
    quiet = [
        monitor.check(normal["frames"][w], light=normal["light"][w], hour=normal["hour"][w]).drift
        for w in windows(normal, 8)
    ]
    assert np.mean(quiet) <= 0.1, f"{sum(quiet)} of {len(quiet)} normal windows raised an alarm"
    for fault in ({"leaves": 0.45}, {"road_works": True}, {"dirt": 0.7}):
        day = record_day(seed=51, every_s=300, start="2026-10-15T08:00:00", hours=8, **fault)
        alarms = [
            monitor.check(day["frames"][w], light=day["light"][w], hour=day["hour"][w]).drift for w in windows(day, 8)
        ]
        assert np.mean(alarms) >= 0.5, f"{fault}: only {sum(alarms)} of {len(alarms)} windows raised an alarm"


def test_report_names_its_reasons_and_reference_round_trips(monitor):
    day = record_day(seed=52, every_s=300, start="2026-10-15T10:00:00", hours=1, dirt=0.9)
    report = monitor.check(day["frames"], light=day["light"], hour=day["hour"])
    assert report.drift and any("z" in r for r in report.reasons) and "DRIFT" in str(report)
    again = StreamReference.from_json(monitor.reference.to_json())
    assert StreamMonitor(again).check(day["frames"], light=day["light"], hour=day["hour"]).reasons == report.reasons
    with pytest.raises(ValueError, match="one light reading"):
        StreamReference.from_frames(day["frames"], day["light"][:2], day["hour"])
    with pytest.raises(ValueError, match="window"):
        monitor.check(day["frames"][0], light=0.5, hour=12)

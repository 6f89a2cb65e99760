from __future__ import annotations

import pytest

from kit.control.compare import compare


@pytest.mark.slow
def test_adaptive_control_cuts_vehicle_wait_without_hurting_pedestrians():
    # A simulated morning rush hour (the full day is bench/intersection.py).
    result = compare(seed=1, hours=3, start="2026-10-15T06:30:00")
    fixed, adaptive = result["fixed"], result["adaptive"]
    assert fixed["vehicles_arrived"] == adaptive["vehicles_arrived"], "both plans must see the same seeded traffic"
    assert adaptive["mean_vehicle_wait_s"] <= 0.8 * fixed["mean_vehicle_wait_s"], result
    assert adaptive["mean_pedestrian_wait_s"] <= fixed["mean_pedestrian_wait_s"], result
    assert adaptive["pedestrians_gave_up"] <= fixed["pedestrians_gave_up"], result


def test_the_comparison_is_deterministic():
    a = compare(seed=3, hours=0.25, start="2026-10-15T08:00:00")
    b = compare(seed=3, hours=0.25, start="2026-10-15T08:00:00")
    assert a == b

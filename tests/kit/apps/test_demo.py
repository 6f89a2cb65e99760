from __future__ import annotations

import pytest

from kit.apps.demo import run_demo
from kit.cli import main


def test_demo_is_deterministic_and_sensible():
    a = run_demo(seed=3, minutes=20)
    b = run_demo(seed=3, minutes=20)
    for key in ("wall_s",):
        a.pop(key), b.pop(key)
    assert a == b
    assert a["simulated_s"] == 1200
    assert a["vehicles_served"] > 100
    assert 0 < a["mean_vehicle_wait_s"] <= a["p95_vehicle_wait_s"] < 60
    assert a["cycles"] == 31  # (1200 s - 2 s start-up all red) / 39 s per cycle (the parameter defaults), rounded up


def test_other_seed_other_traffic():
    assert run_demo(seed=1, minutes=20)["vehicles_arrived"] != run_demo(seed=2, minutes=20)["vehicles_arrived"]


def test_road_works_make_waits_longer():
    assert (
        run_demo(seed=0, minutes=30, road_works=True)["mean_vehicle_wait_s"]
        > run_demo(seed=0, minutes=30)["mean_vehicle_wait_s"]
    )


def test_kit_demo_prints_a_summary(capsys):
    assert main(["demo", "--minutes", "15", "--seed", "2"]) == 0
    out = capsys.readouterr().out
    assert "vehicles   arrived" in out and "wait mean" in out and "pedestrians arrived" in out
    assert "sensors at the end" in out and "distance" in out


def test_bad_duration():
    with pytest.raises(ValueError, match="positive"):
        run_demo(minutes=0)

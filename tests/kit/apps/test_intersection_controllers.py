"""`kit run intersection --controller learned [--traffic sumo]`: the learned policy on the app's pin path."""

from __future__ import annotations

import subprocess
import sys

import pytest

from kit.apps.intersection import AppOptions, IntersectionApp
from kit.errors import UsageError
from kit.store import Store


def run_app(store, **options):
    app = IntersectionApp(store, AppOptions(**options))
    try:
        return app, app.run()
    finally:
        app.close()


def test_the_learned_policy_ends_the_car_green_within_the_stored_minimum(tmp_path):
    store = Store(tmp_path / "kit.db")
    app, summary = run_app(store, seed=1, hours=0.25, start="2026-10-15T08:00:00", model=None, controller="learned")
    assert app.controller.policy.__name__ == "learned"
    assert summary["vehicles_served"] > 100 and summary["crossings"] > 3
    greens = [s for name, s in app.controller.phase_log if name == "car_green"]
    assert greens and min(greens) >= store.params.get("min_green_s") - 1e-9


def test_sumo_traffic_through_the_same_app(tmp_path):
    pytest.importorskip("libsumo", reason="SUMO is the optional [sumo] extra")
    store = Store(tmp_path / "kit.db")
    app, summary = run_app(
        store, seed=1000, hours=0.25, start="2026-10-15T08:00:00", model=None, controller="learned", traffic="sumo"
    )
    world = app.board.world
    assert type(world).__name__ == "SumoWorld"
    assert summary["vehicles_served"] > 100 and summary["crossings"] > 0
    assert world.junction.close().vehicles > 200  # closed with the app; the results stay readable


def test_unknown_controller_or_traffic_is_one_clear_error(tmp_path):
    with pytest.raises(UsageError, match="'adaptive' or 'learned'"):
        IntersectionApp(Store(tmp_path / "a.db"), AppOptions(model=None, controller="magic"))
    done = subprocess.run(
        [sys.executable, "-m", "kit", "run", "intersection", "--controller", "magic", "--db", str(tmp_path / "b.db")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "invalid choice: 'magic'" in done.stderr and "Traceback" not in done.stderr

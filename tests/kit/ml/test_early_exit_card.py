"""The shipped early-exit host: its card matches its files, and it runs with only a TFLite runtime."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from kit.ml import MODELS_DIR

FOLDER = MODELS_DIR / "early_exit"


@pytest.mark.tflite
def test_card_matches_the_shipped_parts():
    card = json.loads((FOLDER / "card.json").read_text())
    assert "bench/early_exit.py" in card["produced_by"] and "--save" in card["produced_by"]
    for name, meta in card["files"].items():
        data = (FOLDER / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == meta["sha256"], f"{name} differs from its card: re-run produced_by"
        assert len(data) == meta["bytes"]
    m = card["metrics_on_test"]
    assert m["speedup"] >= 2.0 and m["full_accuracy"] - m["accuracy"] <= 0.01


@pytest.mark.tflite
def test_shipped_host_loads_with_its_threshold_and_exits_on_an_empty_daylight_road():
    from kit.ml.early_exit import EarlyExitHost
    from kit.sim.camera import Scene, render

    settings = json.loads((FOLDER / "early_exit.json").read_text())
    host = EarlyExitHost.load(FOLDER)
    assert host.threshold == pytest.approx(settings["threshold"])
    frames = [render(Scene(0, 0, 0.9, 0.0), seed=s) for s in range(20)]
    results = [host.predict(f) for f in frames]
    assert all(r.label == 0 for r in results), "an empty road in daylight is class 0 (empty)"
    assert np.mean([r.exited for r in results]) >= 0.5

"""The shipped model's card matches its file and its metrics, re-measured here with the host, meet the floors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kit.ml import MODELS_DIR, shipped_model
from kit.ml.card import FLOORS, card_path, check_file, evaluate, f1_parts, file_sha256, load_card, scores, write_card
from kit.ml.data import make_dataset
from kit.ml.host import ModelHost

pytestmark = pytest.mark.tflite

SHIPPED = ["intersection"]


@pytest.mark.parametrize("name", SHIPPED)
def test_card_matches_the_file(name):
    card = load_card(name)
    assert card["file"] == f"{name}.tflite"
    assert check_file(card) == []
    path = shipped_model(name)
    assert card["size_bytes"] == path.stat().st_size < 1_000_000
    assert card["sha256"] == file_sha256(path)
    weights = MODELS_DIR / card["keras_weights"]["file"]
    assert file_sha256(weights) == card["keras_weights"]["sha256"]
    assert "kit model train" in card["reproduce"] and f"--seed {card['training']['seed']}" in card["reproduce"]
    assert card["data"]["eval"]["seed"] != card["data"]["train"]["seed"], "held-out frames come from another seed"


@pytest.mark.slow
@pytest.mark.parametrize("name", SHIPPED)
def test_card_metrics_are_remeasured_on_the_held_out_set(name):
    card = load_card(name)
    ev = card["data"]["eval"]
    assert ev["conditions"]["leaves"] == [0.0, 0.0] and ev["conditions"]["daylight"][0] >= 0.5
    data = make_dataset(ev["n"], seed=ev["seed"], conditions=ev["conditions"], size=card["architecture"]["size"])
    got = evaluate(ModelHost(shipped_model(name)), data)
    # float32 on another runtime may flip a borderline frame or two
    for key in ("queue_accuracy", "pedestrian_f1"):
        assert got[key] == pytest.approx(card["metrics"][key], abs=0.005), key
        assert got[key] >= FLOORS[key], f"{key} {got[key]:.3f} is below the floor {FLOORS[key]}"


def test_card_records_failures_under_stress():
    stress = load_card("intersection")["stress"]
    assert set(stress) == {"night", "leaves", "road_works"}
    assert stress["night"]["queue_accuracy"] < load_card("intersection")["metrics"]["queue_accuracy"]


def test_card_paths_and_write_roundtrip(tmp_path):
    assert card_path("intersection") == MODELS_DIR / "intersection.json"
    assert card_path(tmp_path / "m.tflite") == tmp_path / "m.json"
    (tmp_path / "m.tflite").write_bytes(b"1234")
    card = {"name": "m", "file": "m.tflite", "size_bytes": 4, "sha256": file_sha256(tmp_path / "m.tflite"), "_dir": "x"}
    write_card(card, tmp_path / "m.json")
    assert "_dir" not in json.loads((tmp_path / "m.json").read_text())
    back = load_card(tmp_path / "m.json")
    assert check_file(back) == []
    (tmp_path / "m.tflite").write_bytes(b"12345")
    problems = check_file(back)
    assert len(problems) == 2 and "5 bytes" in problems[0]
    with pytest.raises(FileNotFoundError, match="kit model train"):
        load_card(tmp_path / "other.json")


def test_scores_by_hand():
    assert f1_parts(np.array([1, 1, 0, 0]), np.array([1, 0, 1, 0])) == {"precision": 0.5, "recall": 0.5, "f1": 0.5}
    assert f1_parts(np.array([0, 0]), np.array([0, 0]))["f1"] == 0.0
    probs = np.array([[0.9, 0.1, 0], [0.1, 0.8, 0.1], [0.2, 0.7, 0.1]])
    s = scores(probs, np.array([0.9, 0.2, 0.7]), np.array([0, 1, 2]), np.array([1, 0, 1]))
    assert s["queue_accuracy"] == pytest.approx(2 / 3, abs=1e-4)
    assert s["queue_confusion"] == [[1, 0, 0], [0, 1, 0], [0, 1, 0]]
    assert s["pedestrian_f1"] == 1.0 and s["n"] == 3


# -- the typed card ---------------------------------------------------------------------------
from kit.ml.card import SCHEMA_VERSION, Interval, ModelCard, shipped_cards  # noqa: E402
from kit.ml.catalog import kind  # noqa: E402


def test_every_shipped_card_loads_typed_and_matches_its_files():
    names = shipped_cards()
    assert names[0] == "early_exit" or names[0].startswith("fusion"), names  # the app's default first
    for name in names:
        card = ModelCard.load(name)
        assert card.name and card.files and card.size_bytes > 0
        assert card.check_files() == [], name
        if kind(card) != "other":  # camera models report figures per condition
            assert card.conditions, f"{name} reports no figures"


def test_typed_card_round_trips_and_refuses_newer_schemas(tmp_path):
    card = ModelCard(
        name="m",
        task="t",
        files=["m.tflite"],
        sha256={"m.tflite": "0" * 64},
        size_bytes=10,
        precision="int8",
        inputs={"frame": {"shape": [1, 64, 64, 1]}},
        outputs={},
        conditions={"night": {"queue_accuracy": Interval.of([0.9, 0.95, 1.0])}},
        folder=tmp_path,
    )
    path = card.save()
    again = ModelCard.load(path)
    assert again == card and again.schema_version == SCHEMA_VERSION
    assert again.figure("night", "queue_accuracy") == Interval(0.95, 0.9, 1.0, 3)
    assert again.figure("day", "queue_accuracy") is None
    assert again.check_files() == [f"{tmp_path / 'm.tflite'} is missing"]
    newer = json.loads(path.read_text()) | {"schema_version": SCHEMA_VERSION + 1}
    with pytest.raises(ValueError, match="update the kit"):
        ModelCard.from_dict(newer)

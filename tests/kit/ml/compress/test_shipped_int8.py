"""The shipped int8 model: its card matches the file, it is int8 in and out, and its metrics hold."""

from __future__ import annotations

import pytest

from kit.ml import shipped_model
from kit.ml.card import check_file, evaluate, load_card
from kit.ml.data import make_dataset
from kit.ml.host import ModelHost

pytestmark = pytest.mark.tflite


def test_card_matches_the_file_and_says_how_it_was_made():
    card = load_card("queue_int8")
    assert card["file"] == "queue_int8.tflite" and check_file(card) == []
    assert card["precision"] == "int8"
    assert card["reproduce"].startswith("kit model compress") and "--ship" in card["reproduce"]
    assert card["compression"]["base_model"]["name"] == "intersection"
    assert card["compression"]["representative"]["from"] == "training set"


def test_int8_in_and_out_and_smaller_than_the_float_model():
    host = ModelHost(shipped_model("queue_int8"))
    assert host.quantized and host.input.dtype.name == "int8"
    assert all(spec.dtype.name == "int8" and spec.quantized for spec in host.outputs.values())
    assert host.output_names == ["pedestrian", "queue"]
    assert host.size_bytes < shipped_model("intersection").stat().st_size / 1.5


@pytest.mark.slow
def test_metrics_remeasured_within_a_point_of_the_float_model():
    card, base = load_card("queue_int8"), load_card("intersection")
    ev = card["data"]["eval"]
    assert ev["seed"] == base["data"]["eval"]["seed"] != base["data"]["train"]["seed"]
    data = make_dataset(ev["n"], seed=ev["seed"], conditions=ev["conditions"], size=card["architecture"]["size"])
    got = evaluate(ModelHost(shipped_model("queue_int8")), data)
    for key in ("queue_accuracy", "pedestrian_f1"):
        # another runtime (tflite-runtime 2.14) may round a borderline frame differently
        assert got[key] == pytest.approx(card["metrics"][key], abs=0.005), key
        assert got[key] >= base["metrics"][key] - 0.01, (
            f"{key}: int8 {got[key]:.3f} vs float32 {base['metrics'][key]:.3f}"
        )

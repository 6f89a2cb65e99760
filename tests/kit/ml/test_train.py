"""`kit model train` end to end on a tiny run: progress, .tflite, weights, card with metrics that re-measure."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from kit.cli import main  # noqa: E402
from kit.ml.card import check_file, evaluate, load_card  # noqa: E402
from kit.ml.data import make_dataset  # noqa: E402
from kit.ml.host import ModelHost  # noqa: E402
from kit.ml.model import load_keras  # noqa: E402


@pytest.mark.slow
def test_tiny_training_run_end_to_end(tmp_path, capsys):
    code = main(
        [
            "model",
            "train",
            "--name",
            "tiny",
            "--out",
            str(tmp_path),
            "--seed",
            "3",
            "--n-train",
            "300",
            "--n-eval",
            "100",
            "--epochs",
            "2",
            "--width",
            "0.5",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "epoch 1/2" in printed and "epoch 2/2" in printed, "training shows progress"
    assert {p.name for p in tmp_path.iterdir()} == {"tiny.tflite", "tiny.json", "tiny.weights.npz"}

    card = load_card(tmp_path / "tiny.json")
    assert json.loads((tmp_path / "tiny.json").read_text())["name"] == "tiny"
    assert check_file(card) == []
    assert card["data"]["train"] == {"n": 300, "seed": 3, "conditions": card["data"]["train"]["conditions"]}
    assert card["data"]["eval"]["seed"] != 3 and card["architecture"]["width"] == 0.5
    assert card["architecture"]["macs"] > 0 and card["size_bytes"] < 1_000_000
    assert "--seed 3" in card["reproduce"] and "--n-train 300" in card["reproduce"]

    # the card's metrics are what the host measures on the described held-out set
    ev = card["data"]["eval"]
    again = evaluate(
        ModelHost(tmp_path / "tiny.tflite"), make_dataset(ev["n"], seed=ev["seed"], conditions=ev["conditions"])
    )
    assert again["queue_accuracy"] == pytest.approx(card["metrics"]["queue_accuracy"], abs=1e-6)
    assert set(card["stress"]) == {"night", "leaves", "road_works"}

    # the Keras weights rebuild the same model as the .tflite
    keras_model = load_keras(card)
    frames = make_dataset(4, seed=9)
    k = keras_model(frames.inputs(), training=False)
    t = ModelHost(tmp_path / "tiny.tflite").predict(frames.x)
    assert np.allclose(np.asarray(k["queue"]), t["queue"], atol=1e-4)

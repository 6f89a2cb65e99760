"""kit.ml.tflite: the one converter (float32..int8, one or two inputs) and the one checked loader."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from kit.ml import shipped_model, tflite
from kit.ml.host import ModelHost, ModelInputError

tf = pytest.importorskip("tensorflow")


@pytest.fixture(scope="module")
def two_inputs():
    keras = tf.keras
    keras.utils.set_random_seed(0)
    frame = keras.Input((16, 16, 1), name="frame")
    sensors = keras.Input((4,), name="sensors")
    x = keras.layers.Conv2D(4, 3, strides=2, activation="relu")(frame)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Concatenate()([x, sensors])
    queue = keras.layers.Dense(3, activation="softmax", name="queue")(x)
    pedestrian = keras.layers.Dense(1, activation="sigmoid", name="pedestrian")(x)
    return keras.Model([frame, sensors], {"queue": queue, "pedestrian": pedestrian})


def test_load_checks_and_allocates_the_shipped_model():
    interpreter = tflite.load(shipped_model())
    assert list(interpreter.get_signature_list()) == ["serving_default"]
    assert interpreter.get_input_details()[0]["shape"].tolist() == [1, 64, 64, 1]


def test_load_refuses_what_is_not_a_whole_model(tmp_path):
    content = shipped_model().read_bytes()
    with pytest.raises(tflite.ModelFileError, match="not a TFLite model"):
        tflite.load(content[:4] + b"PK\x03\x04" + content[8:])
    with pytest.raises(tflite.ModelFileError, match="past the end"):
        tflite.load(content[: len(content) // 2])
    with pytest.raises(FileNotFoundError, match="kit model train"):
        tflite.load(tmp_path / "nothing.tflite")


@pytest.mark.parametrize("variant", ["float32", "int8"])
def test_two_input_model_converts_and_is_hosted_by_name(tmp_path, two_inputs, variant, monkeypatch):
    # a program that has not configured logging (a notebook): the converter logs through absl, which would call
    # logging.basicConfig() and send every later warning of the program to stderr; the root must stay as it was
    monkeypatch.setattr(logging.root, "handlers", [])
    rng = np.random.default_rng(0)
    frames = rng.random((32, 16, 16), dtype=np.float32)
    sensors = rng.random((32, 4), dtype=np.float32)
    rep = {"frame": frames, "sensors": sensors} if variant == "int8" else None
    path = tmp_path / f"fused_{variant}.tflite"
    tflite.convert(two_inputs, variant, representative=rep, path=path)
    assert logging.root.handlers == [], f"converting configured the program's logging: {logging.root.handlers}"
    host = ModelHost(path)
    assert host.input_name == "frame" and list(host.extra_inputs) == ["sensors"]
    assert host.quantized == (variant == "int8")
    out = host.predict_batches(frames, batch_size=8, sensors=sensors)
    want = two_inputs({"frame": frames[..., None], "sensors": sensors})
    tol = 1e-4 if variant == "float32" else 0.08  # int8 steps of about 1/256 through two layers
    assert np.abs(out["queue"] - np.asarray(want["queue"])).max() < tol
    assert np.abs(out["pedestrian"] - np.asarray(want["pedestrian"])).max() < tol
    with pytest.raises(ModelInputError, match="sensors"):
        host.predict(frames[0])
    with pytest.raises(ModelInputError, match=r"one row of shape \(4,\)"):
        host.predict(frames[:2], sensors=sensors[:3])


def test_representative_data_must_name_every_input(two_inputs):
    with pytest.raises(ValueError, match="sensors"):
        tflite.convert(two_inputs, "int8", representative={"frame": np.zeros((4, 16, 16), np.float32)})
    with pytest.raises(ValueError, match="2 inputs"):
        tflite.convert(two_inputs, "int8", representative=np.zeros((4, 16, 16), np.float32))

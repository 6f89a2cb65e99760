"""The federated model as a file a device can run: FedAvg's weights as a camera ``.tflite`` with its card.

The federation trains a numpy network (:class:`kit.ml.federated.task.Net`) on each frame's 16x16
standardised thumbnail. To deliver the global model through the over-the-air pipeline (verify, canary,
swap: :mod:`kit.ml.ota`) it becomes a TFLite model with the camera model's interface: a 64x64 grayscale
frame (pixel / 255) in, ``queue`` probabilities out. The thumbnail is computed inside the model (4x4
average pooling, then each frame standardised on its own, as ``kit.ml.drift.frame_layouts``), so the
file gives the same probabilities as ``Net.predict_proba(features(frames))``.

    >>> from kit.ml.federated.export import to_tflite           # doctest: +SKIP
    >>> history = simulate(num_clients=4, rounds=3, seed=0)      # doctest: +SKIP
    >>> path = to_tflite(history["weights"], "models", history=history)   # doctest: +SKIP
    >>> # then: kit model deploy models/federated.tflite --device kit-0001

The network has no pedestrian output: a device whose app reads ``pedestrian`` from the camera model
refuses it at verification (the signature check names the missing output); the app's default host
(the fused early exit) reads only the queue from the camera and takes it.
Needs TensorFlow (``pip install -e .[train]``) for the conversion.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from kit.errors import UsageError
from kit.ml.federated.task import THUMB, Net

FRAME = 64  # the device camera's frames (kit.ml.data); the thumbnail is THUMB x THUMB of it
GREY_FLOOR = 8.0  # kit.ml.drift.frame_layouts: + 8 grey levels on the spread


def keras_model(weights: list[np.ndarray], size: int = FRAME) -> Any:
    """A Keras model computing ``Net(weights).predict_proba(features(frames))`` on (size, size, 1) frames / 255."""
    import tensorflow as tf

    keras = tf.keras
    net = Net().set_weights([np.asarray(w) for w in weights])  # checks the shapes, one-line error
    if size % THUMB:
        raise UsageError(f"frames must be a multiple of {THUMB} pixels, got {size}")
    inp = keras.Input((size, size, 1), name="frame")
    x = keras.layers.Rescaling(255.0, name="grey_levels")(inp)
    x = keras.layers.AveragePooling2D(size // THUMB, name="thumbnail")(x)
    x = keras.layers.Flatten(name="flat")(x)
    x = keras.layers.Lambda(
        lambda t: (
            (t - keras.ops.mean(t, axis=1, keepdims=True)) / (keras.ops.std(t, axis=1, keepdims=True) + GREY_FLOOR)
        ),
        name="standardise",
    )(x)
    hidden = keras.layers.Dense(net.w1.shape[1], activation="relu", name="hidden")
    head = keras.layers.Dense(net.w2.shape[1], activation="softmax", name="queue")
    out = head(hidden(x))
    model = keras.Model(inp, {"queue": out}, name="federated")
    hidden.set_weights([net.w1, net.b1])
    head.set_weights([net.w2, net.b2])
    return model


def to_tflite(
    weights: list[np.ndarray],
    out: str | Path = "models",
    *,
    name: str = "federated",
    history: dict[str, Any] | None = None,
) -> Path:
    """Write ``OUT/NAME.tflite`` and its card (``NAME.json``: sha256, interface, FedAvg figures); the model's path."""
    from kit.ml.card import file_sha256, write_card
    from kit.ml.data import QUEUE_CLASSES
    from kit.ml.tflite import convert

    out = Path(out)
    if out.is_file():
        raise UsageError(f"{out} is a file; give a folder for {name}.tflite and its card")
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.tflite"
    path.with_suffix(".json").unlink(missing_ok=True)  # a card of an earlier run no longer describes it
    path.write_bytes(convert(keras_model(weights)))
    history = history or {}
    card = {
        "name": name,
        "file": path.name,
        "format": "tflite",
        "precision": "float32",
        "size_bytes": path.stat().st_size,
        "sha256": file_sha256(path),
        "architecture": {
            "builder": "kit.ml.federated.export.keras_model",
            "size": FRAME,
            "net": [list(np.shape(w)) for w in weights],
        },
        "input": {"name": "frame", "shape": [1, FRAME, FRAME, 1], "dtype": "float32", "meaning": "pixel / 255"},
        "outputs": {
            "queue": {"shape": [1, 3], "classes": list(QUEUE_CLASSES), "meaning": "softmax over queue classes"}
        },
        "training": {
            "federated": "Flower FedAvg (kit.ml.federated)",
            "rounds": (history.get("rounds") or [0])[-1],
            "benchmark_accuracy": (history.get("accuracy") or [None])[-1],
        },
        "limitations": "queue only (no pedestrian output); trained on 16x16 thumbnails of the federation's "
        "intersections, not on this device's frames: its canary decides",
    }
    write_card(card, path.with_suffix(".json"))
    return path

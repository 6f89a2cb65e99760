"""Multi-task: one shared backbone with two heads against two separate single-task models.

The kit needs two answers per frame: the queue class and whether a pedestrian waits. One model
with a shared backbone (``kit.ml.model.build_model``, heads ``queue`` and ``pedestrian``) computes
the features once; two single-task models (the same architecture, one head each, trained alone)
compute them twice. This module builds, trains and compares both set-ups on the same frames:
parameters, TFLite latency per frame (one call against two), and accuracy / F1 on held-out frames.

    >>> from kit.ml.multitask import train_models, compare  # doctest: +SKIP
    >>> models = train_models(train_set, epochs=4, width=0.5, seed=0)          # needs TensorFlow  # doctest: +SKIP
    >>> report = compare(models, test_set)  # doctest: +SKIP
    >>> report["shared"]["params"], report["separate"]["params"]  # doctest: +SKIP
    >>> report["shared"]["ms"], report["separate"]["ms"]  # doctest: +SKIP
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from kit import progress

HEADS = ("queue", "pedestrian")
_LOSSES = {"queue": "sparse_categorical_crossentropy", "pedestrian": "binary_crossentropy"}


def single_task(model: Any, head: str) -> Any:
    """A model that keeps only ``head`` of a two-headed ``build_model`` model (the other head is dropped)."""
    import keras

    if head not in HEADS:
        raise ValueError(f"unknown head {head!r}; the kit's model has heads {HEADS}")
    return keras.Model(model.inputs[0], {head: model.get_layer(head).output}, name=f"{head}_only")


def build_tiny_model(size: int = 32, *, width: float = 1.0, seed: int = 0) -> Any:
    """A tiny two-headed CNN (no batch norm) that trains in seconds: for labs and tests.

    Same heads and input as ``kit.ml.model.build_model``; two strided convolutions, a coarse
    max-pool and dense heads that keep where things are in the frame.
    """
    import keras

    keras.utils.set_random_seed(int(seed))
    L = keras.layers
    c = max(4, int(round(16 * width)))
    inp = keras.Input((size, size, 1), name="frame")
    x = L.Conv2D(c, 3, strides=2, padding="same", activation="relu", name="conv1")(inp)
    x = L.Conv2D(2 * c, 3, strides=2, padding="same", activation="relu", name="conv2")(x)
    x = L.MaxPooling2D(2, name="pool")(x)
    x = L.Flatten(name="flat")(x)
    x = L.Dense(4 * c, activation="relu", name="features")(x)
    queue = L.Dense(3, activation="softmax", name="queue")(x)
    pedestrian = L.Dense(1, activation="sigmoid", name="pedestrian")(x)
    return keras.Model(inp, {"queue": queue, "pedestrian": pedestrian}, name="tiny")


def build_models(size: int = 64, *, width: float = 1.0, seed: int = 0, tiny: bool = False) -> dict[str, Any]:
    """Fresh ``shared`` (both heads), ``queue`` and ``pedestrian`` models; each starts from its own seed.

    The architecture is the kit's ``build_model``, or :func:`build_tiny_model` with ``tiny=True``.
    """
    if tiny:
        build = build_tiny_model
    else:
        from kit.ml.model import build_model as build

    return {
        "shared": build(size, width=width, seed=seed),
        "queue": single_task(build(size, width=width, seed=seed + 1), "queue"),
        "pedestrian": single_task(build(size, width=width, seed=seed + 2), "pedestrian"),
    }


def fit(
    model: Any, dataset: Any, *, epochs: int, seed: int = 0, batch_size: int = 32, learning_rate: float = 3e-3
) -> Any:
    """Train whichever heads ``model`` has on a ``kit.ml.data.Dataset`` (Adam, losses summed)."""
    import keras

    keras.utils.set_random_seed(int(seed))
    heads = [h for h in HEADS if h in model.output_names] if hasattr(model, "output_names") else list(HEADS)
    if not heads:
        raise ValueError(f"model has outputs {getattr(model, 'output_names', '?')}, none of {HEADS}")
    labels = {"queue": dataset.queue, "pedestrian": dataset.pedestrian.astype(np.float32)}
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss={h: _LOSSES[h] for h in heads})
    steps = -(-len(dataset.queue) // batch_size)
    bar = progress.keras_callback(epochs=epochs, steps_per_epoch=steps, desc=f"training {'+'.join(heads)}")
    model.fit(
        dataset.inputs(),
        {h: labels[h] for h in heads},
        epochs=epochs,
        batch_size=batch_size,
        shuffle=True,
        verbose=0,
        callbacks=[bar] if bar else [],
    )
    return model


def train_models(
    dataset: Any, *, epochs: int = 5, width: float = 1.0, seed: int = 0, tiny: bool = False
) -> dict[str, Any]:
    """Build and train the shared model and the two single-task models on the same frames and epochs."""
    size = int(dataset.x.shape[1])
    models = build_models(size, width=width, seed=seed, tiny=tiny)
    for i, model in enumerate(models.values()):
        fit(model, dataset, epochs=epochs, seed=seed + i)
    return models


def count_params(model: Any) -> int:
    return int(model.count_params())


def _f1(truth: np.ndarray, predicted: np.ndarray) -> float:
    tp = float(np.sum((truth == 1) & (predicted == 1)))
    fp = float(np.sum((truth == 0) & (predicted == 1)))
    fn = float(np.sum((truth == 1) & (predicted == 0)))
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def compare(
    models: dict[str, Any], dataset: Any, *, runs: int = 100, folder: str | Path | None = None
) -> dict[str, dict[str, float]]:
    """Shared vs separate on held-out frames: params, TFLite ms per frame (p50), queue accuracy, pedestrian F1.

    Each model is converted to ``.tflite`` and run with ``kit.ml.host.ModelHost`` (1 thread);
    "separate" costs one call of each single-task model per frame.
    """
    from kit.ml.host import ModelHost
    from kit.ml.tflite import convert

    missing = {"shared", "queue", "pedestrian"} - set(models)
    if missing:
        raise ValueError(f"models needs 'shared', 'queue' and 'pedestrian'; missing {sorted(missing)}")
    folder = Path(folder or tempfile.mkdtemp(prefix="multitask-"))
    hosts = {}
    for name, model in models.items():
        path = folder / f"{name}.tflite"
        path.write_bytes(convert(model))
        hosts[name] = ModelHost(path)
    frames = dataset.x
    out_shared = hosts["shared"].predict_batches(frames)
    out_q = hosts["queue"].predict_batches(frames)["queue"]
    out_p = hosts["pedestrian"].predict_batches(frames)["pedestrian"]

    def ms(name: str) -> float:
        return float(hosts[name].latency(frames[: min(len(frames), 20)], warmup=5, runs=runs)["p50_ms"])

    def scores(q: np.ndarray, p: np.ndarray) -> dict[str, float]:
        return {
            "queue_accuracy": float(np.mean(q.argmax(axis=1) == dataset.queue)),
            "pedestrian_f1": _f1(dataset.pedestrian, (np.asarray(p).reshape(-1) >= 0.5).astype(int)),
        }

    return {
        "shared": {
            "params": count_params(models["shared"]),
            "ms": ms("shared"),
            "bytes": hosts["shared"].size_bytes,
            **scores(out_shared["queue"], out_shared["pedestrian"]),
        },
        "separate": {
            "params": count_params(models["queue"]) + count_params(models["pedestrian"]),
            "ms": ms("queue") + ms("pedestrian"),
            "bytes": hosts["queue"].size_bytes + hosts["pedestrian"].size_bytes,
            **scores(out_q, out_p),
        },
    }

"""Training and fine-tuning the two-headed camera model, the same way for every variant.

Every compressed variant is trained or fine-tuned with this one recipe (Adam, the two losses of the
``queue`` and ``pedestrian`` heads, a seed), so that differences in the trade-off table come from the
compression and not from the training.

    >>> from kit.ml.data import make_dataset
    >>> from kit.ml.model import build_model
    >>> from kit.ml.compress.tune import fit
    >>> model = fit(build_model(64, seed=0), make_dataset(600, seed=1), epochs=3, seed=0)   # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import numpy as np

from kit.ml.compress.prune import _all_layers


def targets(data: Any) -> dict[str, np.ndarray]:
    """The label dict Keras expects for a ``kit.ml.data.Dataset``."""
    return {
        "queue": np.asarray(data.queue, dtype=np.int64),
        "pedestrian": np.asarray(data.pedestrian, dtype=np.float32).reshape(-1, 1),
    }


def fit(
    model: Any,
    data: Any,
    *,
    epochs: int,
    seed: int = 0,
    learning_rate: float = 3e-3,
    batch_size: int = 32,
    callbacks: list | None = None,
    verbose: int = 0,
) -> Any:
    """Compile ``model`` with the kit's losses and train it on ``data`` (a Dataset); returns the model.

    The learning rate decays to a tenth by the last epoch, which settles the BatchNorm statistics
    of a short run. Same seed, same data, same model: the same weights.
    """
    import keras

    from kit import progress

    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs!r}")
    keras.utils.set_random_seed(int(seed))
    steps = max(1, int(np.ceil(len(data) / batch_size))) * int(epochs)
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, steps, alpha=0.1)
    model.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss={"queue": "sparse_categorical_crossentropy", "pedestrian": "binary_crossentropy"},
    )
    x = data.inputs()
    bar = progress.keras_callback(epochs=int(epochs), steps_per_epoch=steps // int(epochs), desc="fine-tuning")
    model.fit(
        x,
        targets(data),
        epochs=int(epochs),
        batch_size=batch_size,
        shuffle=True,
        callbacks=list(callbacks or []) + ([bar] if bar else []),
        verbose=verbose,
    )
    recalibrate_batchnorm(model, x, seed=seed)
    return model


def recalibrate_batchnorm(model: Any, x: np.ndarray, *, frames: int = 512, seed: int = 0) -> None:
    """Set every BatchNorm's moving mean and variance to the statistics of ``frames`` training inputs.

    With Keras' default momentum (0.99) a run of a few hundred steps leaves the moving statistics
    partly at their initial values, and the model predicts one class at inference. One pass with
    momentum 0 over a large batch gives the exact statistics instead ("precise BN"). Weights are not
    changed: no gradient step is taken.
    """
    norms = [layer for layer in _all_layers(model) if type(layer).__name__ == "BatchNormalization"]
    if not norms:
        return
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(len(x), size=min(frames, len(x)), replace=False))
    saved = [layer.momentum for layer in norms]
    try:
        for layer in norms:
            layer.momentum = 0.0
        model(x[pick], training=True)
    finally:
        for layer, momentum in zip(norms, saved):
            layer.momentum = momentum


def keras_accuracy(model: Any, data: Any) -> float:
    """Queue-class accuracy of a Keras model on ``data`` (for checks before conversion)."""
    x = data.inputs()
    # model(x) rather than model.predict: predict traces a new function for every model it meets
    scores = [np.asarray(model(x[i : i + 256], training=False)["queue"]) for i in range(0, len(x), 256)]
    return float((np.concatenate(scores).argmax(axis=1) == np.asarray(data.queue)).mean())

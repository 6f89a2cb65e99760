"""Machine learning on the kit: camera datasets, a small two-headed CNN, and a TFLite model host.

    >>> from kit.ml import shipped_model
    >>> from kit.ml.host import ModelHost
    >>> host = ModelHost(shipped_model())          # the model that ships with the kit
    >>> sorted(host.output_names)
    ['pedestrian', 'queue']

Modules (import what you need; TensorFlow is only imported by training code, inside functions):
``data`` (frames and labels), ``model`` (the Keras model), ``train`` (``kit model train``),
``runtime`` (which TFLite interpreter is installed), ``host`` (``ModelHost``), ``card`` (model cards).
"""

from __future__ import annotations

from pathlib import Path

from kit.ml import quiet

# TensorFlow (training, conversion) and LiteRT print native log lines a notebook would show: see kit.ml.quiet
quiet.install()

MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
"""Where the kit's shipped models and their model cards live."""

DEFAULT_MODEL = "intersection"

DEFAULT_APP_MODEL = "fusion"
"""The model ``kit run intersection`` hosts unless told otherwise (listed first by ``kit model info``)."""


def shipped_model(name: str = DEFAULT_MODEL) -> Path:
    """Path of a shipped ``.tflite`` model by name (``kit/models/NAME.tflite``)."""
    path = MODELS_DIR / f"{name}.tflite"
    if not path.exists():
        have = sorted(
            {p.stem for p in MODELS_DIR.glob("*.tflite")} | {p.name for p in MODELS_DIR.iterdir() if p.is_dir()}
        )
        raise FileNotFoundError(f"no shipped model named {name!r} in {MODELS_DIR}; shipped: {have or 'none'}")
    return path

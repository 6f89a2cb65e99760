"""Post-training quantization: one Keras model, four TFLite files.

| variant | weights | activations | input/output | needs data |
|---|---|---|---|---|
| ``float32`` | float32 | float32 | float32 | no |
| ``dynamic`` | int8 | float32 (int8 inside matmuls where the kernel allows) | float32 | no |
| ``float16`` | float16 (dequantized on CPU at load) | float32 | float32 | no |
| ``int8`` | int8 | int8 | int8 | a representative dataset |

Full-integer quantization needs the range of every activation, measured by running a
*representative dataset* through the float model. If those frames are not like the frames the device
will see (only night frames, say), the ranges are wrong and accuracy falls: try it.

    >>> from kit.ml.compress.quantize import to_tflite
    >>> data = to_tflite(model, "int8", representative=x_train[:200])   # doctest: +SKIP
    >>> open("queue_int8.tflite", "wb").write(data)                       # doctest: +SKIP
"""
from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

VARIANTS = ("float32", "dynamic", "float16", "int8")


def representative_frames(x: np.ndarray, n: int = 200, *, seed: int = 0) -> np.ndarray:
    """``n`` frames drawn without replacement from ``x`` as float32 model inputs (n, H, W, 1) in 0..1.

    ``x`` may be uint8 frames (n, H, W) as made by ``kit.ml.data`` or float inputs already.
    """
    x = np.asarray(x)
    if x.dtype == np.uint8:
        x = x.astype(np.float32) / 255.0
    if x.ndim == 3:
        x = x[..., None]
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(x), size=min(n, len(x)), replace=False)
    return x[np.sort(pick)].astype(np.float32)


def to_tflite(
    model: Any,
    variant: str = "float32",
    *,
    representative: np.ndarray | None = None,
    path: str | os.PathLike | None = None,
    per_channel: bool = True,
) -> bytes:
    """Convert a Keras model to a TFLite flatbuffer; write it to ``path`` when given.

    The file gets one signature, ``serving_default``, whose input is named after the Keras input
    (``frame``) and whose outputs carry the Keras output names (``queue``, ``pedestrian``), so a host
    finds them by name. ``representative`` (float32 inputs, see :func:`representative_frames`) is
    required for ``int8``: inputs and outputs are then int8 as well, with the scale and zero point
    stored in the file. ``per_channel=False`` gives each weight tensor one scale instead of one per
    output channel: a smaller file for a small model, sometimes less accuracy.
    """
    import tensorflow as tf

    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose one of {VARIANTS}")
    if variant == "int8" and representative is None:
        raise ValueError(
            "int8 needs a representative dataset to measure activation ranges: "
            "pass representative=representative_frames(x_train)"
        )

    # from_keras_model freezes the weights into constants (so they can be quantized) and names the
    # signature's input and outputs after the Keras ones.
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    with _quiet(tf):
        if not per_channel:
            converter._experimental_disable_per_channel = True  # the converter's own switch, not public API yet
        data = _convert(tf, converter, variant, representative, len(model.inputs[0].shape))
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_bytes(data)
    return data


@contextlib.contextmanager
def _quiet(tf: Any):
    """Silence the converter: it prints the traced signature, logs its assets and, from C++, its settings.

    What it wrote is shown again if the conversion fails, so errors are never hidden.
    """
    logger = tf.get_logger()
    level = logger.level
    logger.setLevel("ERROR")
    sink = tempfile.TemporaryFile(mode="w+b")
    saved = []
    try:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        # the process's own descriptors 1 and 2, not sys.stdout's: C++ writes there, also under Jupyter
        for fd in (1, 2):
            try:
                saved.append((fd, os.dup(fd)))
            except OSError:  # no such descriptor (a daemon without stdio)
                continue
            os.dup2(sink.fileno(), fd)
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    except BaseException:
        _restore(saved)
        sink.seek(0)
        sys.stderr.write(sink.read().decode(errors="replace"))
        raise
    finally:
        _restore(saved)
        sink.close()
        logger.setLevel(level)


def _restore(saved: list) -> None:
    while saved:
        fd, copy = saved.pop()
        os.dup2(copy, fd)
        os.close(copy)


def _convert(tf: Any, converter: Any, variant: str, representative: Any, rank: int) -> bytes:
    if variant != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if variant == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if variant == "int8":
        frames = np.asarray(representative, dtype=np.float32)
        if frames.ndim == rank - 1:
            frames = frames[..., None]

        def gen():
            for i in range(len(frames)):
                yield [frames[i : i + 1]]

        converter.representative_dataset = gen
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    return converter.convert()

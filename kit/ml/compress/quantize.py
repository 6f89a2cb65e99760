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

import numpy as np

from kit.ml.tflite import VARIANTS, convert

to_tflite = convert
"""The kit's one converter, ``kit.ml.tflite.convert``, under the name lab 06 uses."""

__all__ = ["VARIANTS", "representative_frames", "to_tflite"]


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

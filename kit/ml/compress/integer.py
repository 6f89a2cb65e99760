"""Integer-only inference: an int8 convolution as the TFLite interpreter computes it, bit for bit.

An int8 layer never touches a float at run time. With input ``x = s_x (q_x - z_x)``, per-channel weights
``w = s_w[c] q_w`` and an int32 bias ``q_b`` (scale ``s_x s_w[c]``), each output is

    acc[c]  = q_b[c] + sum (q_x - z_x) * q_w[c]              (int32: 8-bit x 8-bit products summed)
    q_y[c]  = clamp(z_y + round(acc[c] * M[c]), act_min, act_max)      M[c] = s_x s_w[c] / s_y

and the real factor ``M`` (below 1) is stored as an int32 *multiplier* ``m`` (a Q31 fraction in [0.5, 1))
and a power-of-two *shift*: ``M = m / 2**31 * 2**shift``. :func:`multiply_by_quantized_multiplier` is
TFLite's rounding (a saturating rounding doubling high multiply, then a rounding right shift), so the
reference here matches the interpreter's builtin kernels exactly; XNNPACK (the default delegate of
LiteRT) requantizes through float32 instead and differs by one step on a few percent of the values.

    >>> from kit.ml import shipped_model
    >>> from kit.ml.compress.integer import trace, run_layer
    >>> layers = trace(shipped_model("queue_int8"), frame, n=3)        # doctest: +SKIP
    >>> (run_layer(layers[0]) == layers[0].output).all()               # doctest: +SKIP
    True

Only numpy and a TFLite runtime are needed.
"""

from __future__ import annotations

import os
import sys
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def quantize_multiplier(real: float) -> tuple[int, int]:
    """``real`` (> 0) as ``(multiplier, shift)`` with ``real == multiplier / 2**31 * 2**shift``, multiplier in [2**30, 2**31).

    >>> quantize_multiplier(0.5)
    (1073741824, 0)
    >>> quantize_multiplier(0.1)
    (1717986918, -3)
    """
    if real == 0:
        return 0, 0
    if real < 0:
        raise ValueError(f"a requantization factor is positive, got {real!r}")
    fraction, shift = np.frexp(float(real))  # real = fraction * 2**shift, fraction in [0.5, 1)
    multiplier = int(round(fraction * (1 << 31)))
    if multiplier == 1 << 31:  # rounding carried into the next power of two
        multiplier //= 2
        shift += 1
    return multiplier, int(shift)


def _rounding_doubling_high_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """gemmlowp's SaturatingRoundingDoublingHighMul: round(a * b / 2**31), ties away from zero, saturated."""
    a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
    ab = a * b
    nudged = ab + np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    high = np.where(nudged >= 0, nudged >> 31, -((-nudged) >> 31))  # C division truncates toward zero
    return np.where((a == INT32_MIN) & (b == INT32_MIN), INT32_MAX, high)


def _rounding_divide_by_pot(x: np.ndarray, exponent: np.ndarray) -> np.ndarray:
    """x / 2**exponent rounded to nearest, ties away from zero (gemmlowp's RoundingDivideByPOT)."""
    exponent = np.asarray(exponent, np.int64)
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)


def multiply_by_quantized_multiplier(acc: np.ndarray, multiplier: Any, shift: Any) -> np.ndarray:
    """``acc * multiplier / 2**31 * 2**shift`` rounded as TFLite does; per-channel arrays broadcast on the last axis."""
    shift = np.asarray(shift, np.int64)
    left, right = np.maximum(shift, 0), np.maximum(-shift, 0)
    scaled = np.asarray(acc, np.int64) * (np.int64(1) << left)
    return _rounding_divide_by_pot(_rounding_doubling_high_mul(scaled, multiplier), right)


def requantize(
    acc: np.ndarray, multiplier: Any, shift: Any, zero_point: int, act_min: int = -128, act_max: int = 127
) -> np.ndarray:
    """int32 accumulators -> int8 outputs: scale by multiplier/shift, add the zero point, clamp."""
    out = multiply_by_quantized_multiplier(acc, multiplier, shift) + int(zero_point)
    return np.clip(out, act_min, act_max).astype(np.int8)


def patches(x: np.ndarray, kh: int, kw: int, stride: int, pad_value: int = 0) -> np.ndarray:
    """(H, W, C) -> (H_out, W_out, kh, kw, C): the window under each output pixel, ``padding="same"``.

    TensorFlow puts the odd padding pixel at the bottom/right; padded taps hold ``pad_value``
    (pass the input's zero point for raw int8 input, 0 for input already shifted by it).
    """
    x = np.asarray(x)
    h, w, c = x.shape
    h_out, w_out = -(-h // stride), -(-w // stride)
    pad_h, pad_w = max((h_out - 1) * stride + kh - h, 0), max((w_out - 1) * stride + kw - w, 0)
    padded = np.full((h + pad_h, w + pad_w, c), pad_value, dtype=np.int64)
    padded[pad_h // 2 : pad_h // 2 + h, pad_w // 2 : pad_w // 2 + w] = x
    out = np.empty((h_out, w_out, kh, kw, c), np.int64)
    for i in range(kh):
        for j in range(kw):
            out[:, :, i, j, :] = padded[i : i + stride * h_out : stride, j : j + stride * w_out : stride]
    return out


@dataclass(frozen=True)
class Int8Layer:
    """One int8 convolution of a ``.tflite`` file, with the interpreter's own input and output tensors.

    ``weights`` are in TFLite's layout: (C_out, kh, kw, C_in) for CONV_2D, (1, kh, kw, C) for
    DEPTHWISE_CONV_2D. Scales are float32 as stored in the file; ``act_min``/``act_max`` are the fused
    activation's clamp. The converter calibrates a ReLU/ReLU6 output from 0 (zero point -128) to at
    most 6, so its clamp is the whole int8 range, which is what :func:`trace` sets.
    """

    op: str
    name: str
    stride: int
    input: np.ndarray
    input_scale: float
    input_zero_point: int
    weights: np.ndarray
    weight_scales: np.ndarray
    bias: np.ndarray
    output: np.ndarray
    output_scale: float
    output_zero_point: int
    act_min: int
    act_max: int

    def multipliers(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-channel (multiplier, shift) from the float scales, computed in float64 as TFLite does."""
        pairs = [
            quantize_multiplier(np.float64(self.input_scale) * np.float64(s) / np.float64(self.output_scale))
            for s in self.weight_scales
        ]
        return np.array([m for m, _ in pairs], np.int64), np.array([s for _, s in pairs], np.int64)


def accumulate(layer: Int8Layer) -> np.ndarray:
    """The int32 accumulators of ``layer`` (H_out, W_out, C_out): bias + sum (q_x - z_x) q_w."""
    x = layer.input.astype(np.int64) - layer.input_zero_point
    w = layer.weights.astype(np.int64)
    _, kh, kw, _ = w.shape
    windows = patches(x, kh, kw, layer.stride)  # padded taps are real zeros: 0 after the shift
    if layer.op == "CONV_2D":
        acc = np.einsum("hwijc,oijc->hwo", windows, w)
    elif layer.op == "DEPTHWISE_CONV_2D":
        acc = np.einsum("hwijc,ijc->hwc", windows, w[0])
    else:
        raise ValueError(f"{layer.op} is not a convolution this reference computes (CONV_2D, DEPTHWISE_CONV_2D)")
    return acc + layer.bias.astype(np.int64)


def run_layer(layer: Int8Layer) -> np.ndarray:
    """The reference int8 output of ``layer`` (H_out, W_out, C_out), from its input alone."""
    multiplier, shift = layer.multipliers()
    return requantize(accumulate(layer), multiplier, shift, layer.output_zero_point, layer.act_min, layer.act_max)


def trace(path: str | os.PathLike, frame: np.ndarray, *, n: int = 3, reference: bool = True) -> list[Int8Layer]:
    """Run one frame through an int8 ``.tflite`` model and return its first ``n`` convolutions as :class:`Int8Layer`.

    ``frame`` is uint8 (H, W) or int8 already quantized. ``reference=True`` uses the interpreter's builtin
    kernels without delegates (the fixed-point arithmetic of the TFLite spec); ``False`` lets LiteRT apply
    XNNPACK as ``ModelHost`` does.
    """
    from kit.ml import runtime

    _, interpreter_class = runtime.load()
    module = sys.modules[interpreter_class.__module__]
    options: dict[str, Any] = {"experimental_preserve_all_tensors": True}
    if reference and hasattr(module, "OpResolverType"):
        options["experimental_op_resolver_type"] = module.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "preserve_all_tensors is for debugging": that is what this is
        interpreter = interpreter_class(model_path=str(path), **options)
    from kit.ml.quiet import native_stderr

    with native_stderr():  # XNNPACK announces itself on stderr
        interpreter.allocate_tensors()
    inp = interpreter.get_input_details()[0]
    if inp["dtype"] != np.int8:
        raise ValueError(
            f"{path} takes {np.dtype(inp['dtype']).name} input; trace() reads int8 models "
            "(convert with to_tflite(model, 'int8', representative=...))"
        )
    x = np.asarray(frame)
    if x.dtype == np.uint8:  # a camera frame: quantize with the file's own input scale
        scale, zero = inp["quantization"]
        x = np.clip(np.round(x / 255.0 / scale) + zero, -128, 127).astype(np.int8)
    interpreter.set_tensor(inp["index"], x.reshape(inp["shape"]).astype(np.int8))
    interpreter.invoke()
    details = {t["index"]: t for t in interpreter.get_tensor_details()}

    def q(index: int) -> tuple[np.ndarray, np.ndarray]:
        p = details[index]["quantization_parameters"]
        return np.asarray(p["scales"], np.float32), np.asarray(p["zero_points"], np.int64)

    layers: list[Int8Layer] = []
    for op in interpreter._get_ops_details():  # the public API has no op list; this is the interpreter's own
        if op["op_name"] not in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            continue
        xi, wi, bi = (int(i) for i in op["inputs"][:3])
        yi = int(op["outputs"][0])
        x_in, y_out = interpreter.get_tensor(xi)[0], interpreter.get_tensor(yi)[0]
        (xs, xz), (ws, _), (ys, yz) = q(xi), q(wi), q(yi)
        layers.append(
            Int8Layer(
                op=op["op_name"],
                name=details[yi]["name"],
                stride=x_in.shape[0] // y_out.shape[0],
                input=x_in,
                input_scale=float(xs[0]),
                input_zero_point=int(xz[0]),
                weights=interpreter.get_tensor(wi),
                weight_scales=ws,
                bias=interpreter.get_tensor(bi),
                output=y_out,
                output_scale=float(ys[0]),
                output_zero_point=int(yz[0]),
                act_min=-128,
                act_max=127,
            )
        )
        if len(layers) == n:
            break
    return layers

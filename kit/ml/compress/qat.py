"""Quantization-aware training: train through a fake-quantize op so the weights learn to live on a grid.

Post-training quantization (PTQ) rounds a trained model's weights and activations once. At 8 bits the
rounding is small; at 4 bits it is not, and accuracy falls. Quantization-aware training (QAT) puts a
*fake-quantize* op in the forward pass — quantize to integers, dequantize straight back to floats — so
the loss sees the rounding, and passes the gradient *straight through* the rounding (whose true gradient
is zero almost everywhere) to the float "shadow" weights the optimizer updates.

:func:`fold_batchnorm` first folds each BatchNorm into the convolution before it (as the TFLite
converter does), so the weights that get quantized are the ones that will be stored. :func:`quantized_twin`
then builds a copy of that model in which every convolution and dense kernel is fake-quantized per output
channel (symmetric, ``bits`` wide) and every ReLU6 output (range 0..6), and the input (0..1), is
fake-quantized per tensor. The op is a parameter, so a lab can pass its own.

    >>> from kit.ml.compress.qat import fake_quant, fold_batchnorm, quantized_twin
    >>> folded = fold_batchnorm(model)                                  # doctest: +SKIP
    >>> ptq = quantized_twin(folded, fake_quant, bits=4)                # PTQ: evaluate as is  # doctest: +SKIP
    >>> qat = fit(quantized_twin(folded, fake_quant, bits=4), train, epochs=2)   # doctest: +SKIP

At ``bits=8`` the twin computes what the int8 TFLite file computes up to rounding of the folded weights
(the converter's ReLU6 output scale is also 6/255 with zero point -128). TensorFlow is imported inside
the functions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

FakeQuantOp = Callable[[Any, Any, Any, int, int], Any]
"""``op(x, scale, zero_point, q_min, q_max)`` -> dequantized x: quantize, clip, dequantize (a float tensor)."""


def fake_quant(x: Any, scale: Any, zero_point: Any, q_min: int, q_max: int) -> Any:
    """Quantize then dequantize ``x``; the gradient passes straight through inside the range and is 0 outside.

    Forward: ``(clip(round(x / scale) + zero_point, q_min, q_max) - zero_point) * scale``.
    Backward (straight-through estimator): ``upstream * (q_min <= x / scale + zero_point <= q_max)``.

        >>> import tensorflow as tf
        >>> fake_quant(tf.constant([0.26, 9.0]), 0.5, 0, -8, 7).numpy().tolist()
        [0.5, 3.5]
    """
    import tensorflow as tf

    @tf.custom_gradient
    def op(v):
        q = tf.round(v / scale) + zero_point
        inside = tf.cast((q >= q_min) & (q <= q_max), v.dtype)

        def grad(upstream):
            return upstream * inside

        return (tf.clip_by_value(q, q_min, q_max) - zero_point) * scale, grad

    return op(tf.convert_to_tensor(x, tf.float32))


def fold_batchnorm(model: Any) -> Any:
    """A copy of ``model`` without BatchNorm: each BN's scale and shift folded into the convolution before it.

    ``w' = w * gamma / sqrt(var + eps)`` per output channel and ``b' = beta + (b - mean) * gamma / sqrt(var + eps)``.
    The folded model computes the same function at inference (up to float rounding).
    """
    import keras

    from kit.ml.compress.prune import _inbound

    folds = {}  # conv name -> its BN layer
    for layer in model.layers:
        if type(layer).__name__ == "BatchNormalization":
            parent = _inbound(layer)[0]
            if type(parent).__name__ in ("Conv2D", "DepthwiseConv2D", "Dense"):
                folds[parent.name] = layer
    made: dict[str, Any] = {}
    outputs = {}
    for layer in model.layers:
        kind = type(layer).__name__
        parents = _inbound(layer)
        if kind == "InputLayer":
            made[layer.name] = keras.Input(tuple(layer.output.shape[1:]), name=layer.name)
            continue
        x = made[parents[0].name]
        if kind == "BatchNormalization" and _inbound(layer)[0].name in folds:
            made[layer.name] = x
            continue
        config = layer.get_config()
        weights = layer.get_weights()
        if layer.name in folds:
            bn = folds[layer.name]
            gamma, beta, mean, var = _bn(bn)
            factor = gamma / np.sqrt(var + bn.epsilon)
            kernel = weights[0]
            bias = weights[1] if len(weights) > 1 else np.zeros(factor.shape, np.float32)
            if kind == "DepthwiseConv2D":
                kernel = kernel * factor.reshape(1, 1, -1, kernel.shape[-1])
            else:
                kernel = kernel * factor
            weights = [kernel.astype(np.float32), (beta + (bias - mean) * factor).astype(np.float32)]
            config["use_bias"] = True
        new = type(layer).from_config(config)
        made[layer.name] = new(x)
        if weights:
            new.set_weights(weights)
    for name, tensor in _named_outputs(model).items():
        outputs[name] = made[tensor]
    return keras.Model(made[model.layers[0].name], outputs, name=f"{model.name}_folded")


def _bn(bn: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """gamma, beta, mean, var of a BatchNormalization that may lack its scale or its centre."""
    weights = list(bn.get_weights())
    n = weights[-1].shape[0]
    gamma = weights.pop(0) if bn.scale else np.ones(n, np.float32)
    beta = weights.pop(0) if bn.center else np.zeros(n, np.float32)
    mean, var = weights
    return gamma, beta, mean, var


def _named_outputs(model: Any) -> dict[str, str]:
    """Output name -> the name of the layer that makes it (the model's outputs may be a dict or a list)."""
    outs = model.outputs
    names = getattr(model, "output_names", None) or [t._keras_history.operation.name for t in outs]
    return {name: t._keras_history.operation.name for name, t in zip(names, outs)}


def _grid(bits: int, signed_symmetric: bool) -> tuple[int, int]:
    if not 2 <= int(bits) <= 16:
        raise ValueError(f"bits must be 2..16, got {bits!r}")
    if signed_symmetric:  # weights: -(2^(b-1) - 1) .. 2^(b-1) - 1, zero point 0 (as TFLite's int8 kernels)
        top = 2 ** (int(bits) - 1) - 1
        return -top, top
    return -(2 ** (int(bits) - 1)), 2 ** (int(bits) - 1) - 1


def quantized_twin(folded: Any, op: FakeQuantOp = fake_quant, *, bits: int = 8, act_bits: int | None = None) -> Any:
    """A copy of a BN-free model whose kernels and activations pass through ``op`` (``bits`` wide; ``act_bits`` for activations).

    Weights: symmetric, one scale per output channel, ``max|w| / (2^(bits-1) - 1)`` recomputed from the
    current weights at every step (no gradient flows into the scale). Activations: the input (0..1) and
    every ReLU6 output (0..6) on a fixed ``2^act_bits``-step grid. Its weights start as ``folded``'s; train
    it with :func:`kit.ml.compress.tune.fit` for QAT, or evaluate it as is for PTQ.
    """
    import keras

    from kit.ml.compress.prune import _inbound

    act_bits = bits if act_bits is None else act_bits
    w_min, w_max = _grid(bits, True)
    a_min, a_max = _grid(act_bits, False)
    made: dict[str, Any] = {}
    for layer in folded.layers:
        kind = type(layer).__name__
        if kind == "InputLayer":
            inp = keras.Input(tuple(layer.output.shape[1:]), name=layer.name)
            made[layer.name] = FakeQuantRange(op, 0.0, 1.0, a_min, a_max, name=f"{layer.name}_fq")(inp)
            made["__input__"] = inp
            continue
        if kind == "BatchNormalization":
            raise ValueError(f"{layer.name}: fold the BatchNorms first (quantized_twin(fold_batchnorm(model), ...))")
        x = made[_inbound(layer)[0].name]
        if kind in ("Conv2D", "DepthwiseConv2D", "Dense"):
            new = FakeQuantKernel(layer.get_config(), kind, op, w_min, w_max, name=layer.name)
            y = new(x)
            new.set_weights(layer.get_weights())
        else:
            new = type(layer).from_config(layer.get_config())
            y = new(x)
            if layer.get_weights():
                new.set_weights(layer.get_weights())
        if kind == "ReLU" and layer.get_config().get("max_value") is not None:
            top = float(layer.get_config()["max_value"])
            y = FakeQuantRange(op, 0.0, top, a_min, a_max, name=f"{layer.name}_fq")(y)
        made[layer.name] = y
    outputs = {name: made[layer] for name, layer in _named_outputs(folded).items()}
    return keras.Model(made["__input__"], outputs, name=f"{folded.name}_q{bits}")


class _Lazy(type):
    """Builds the real Keras layer classes on first use, so importing this module needs no TensorFlow."""

    def __call__(cls, *args, **kwargs):
        return _classes()[cls.__name__](*args, **kwargs)


class FakeQuantKernel(metaclass=_Lazy):
    """A Conv2D / DepthwiseConv2D / Dense whose kernel is fake-quantized per output channel on every call."""


class FakeQuantRange(metaclass=_Lazy):
    """Fake-quantizes a tensor on a fixed real range [lo, hi] with ``q_max - q_min`` steps."""


_CACHE: dict[str, Any] = {}


def _classes() -> dict[str, Any]:
    if _CACHE:
        return _CACHE
    import keras
    import tensorflow as tf

    class _FakeQuantKernel(keras.layers.Layer):
        def __init__(self, config, kind, op, q_min, q_max, **kwargs):
            super().__init__(**kwargs)
            self.conf, self.kind, self.op, self.q_min, self.q_max = dict(config), kind, op, q_min, q_max
            self.activation = keras.activations.get(self.conf.get("activation", "linear"))

        def build(self, input_shape):
            c_in = int(input_shape[-1])
            if self.kind == "Conv2D":
                kh, kw = self.conf["kernel_size"]
                shape, self._axes = (kh, kw, c_in, self.conf["filters"]), (0, 1, 2)
            elif self.kind == "DepthwiseConv2D":
                kh, kw = self.conf["kernel_size"]
                shape, self._axes = (kh, kw, c_in, self.conf.get("depth_multiplier", 1)), (0, 1)
            else:
                shape, self._axes = (c_in, self.conf["units"]), (0,)
            self.kernel = self.add_weight(name="kernel", shape=shape, initializer="zeros")
            units = shape[-1] * (c_in if self.kind == "DepthwiseConv2D" else 1)
            self.bias = (
                self.add_weight(name="bias", shape=(units,), initializer="zeros")
                if self.conf.get("use_bias", True)
                else None
            )

        def call(self, x):
            k = self.kernel
            # one scale per output channel, from the current weights, outside the gradient (as TFLite: max|w| / 127)
            scale = tf.stop_gradient(
                tf.maximum(tf.reduce_max(tf.abs(k), axis=self._axes, keepdims=True), 1e-8) / float(self.q_max)
            )
            k = self.op(k, scale, 0.0, self.q_min, self.q_max)
            if self.kind == "Conv2D":
                y = keras.ops.conv(x, k, strides=self.conf["strides"], padding=self.conf["padding"])
            elif self.kind == "DepthwiseConv2D":
                y = keras.ops.depthwise_conv(x, k, strides=self.conf["strides"], padding=self.conf["padding"])
            else:
                y = keras.ops.matmul(x, k)
            if self.bias is not None:
                y = y + self.bias
            return self.activation(y)

    class _FakeQuantRange(keras.layers.Layer):
        def __init__(self, op, lo, hi, q_min, q_max, **kwargs):
            super().__init__(**kwargs)
            self.op, self.q_min, self.q_max = op, q_min, q_max
            self.scale = (hi - lo) / float(q_max - q_min)
            self.zero_point = float(q_min - round(lo / self.scale))

        def call(self, x):
            return self.op(x, self.scale, self.zero_point, self.q_min, self.q_max)

    _CACHE.update(FakeQuantKernel=_FakeQuantKernel, FakeQuantRange=_FakeQuantRange)
    return _CACHE

"""The kit's camera model: a small MobileNet-style CNN with two heads, ``queue`` and ``pedestrian``.

A strided stem convolution, then depthwise-separable blocks (a 3x3 depthwise convolution per
channel followed by a 1x1 pointwise convolution mixing channels: about 8x fewer multiply-adds
than a standard 3x3 convolution of the same width), global average pooling, and two heads:

- ``queue``: 3-way softmax over ``kit.ml.data.QUEUE_CLASSES`` (empty, short, long);
- ``pedestrian``: 1 sigmoid, the probability that someone waits at the crossing.

    >>> from kit.ml.model import build_model
    >>> model = build_model(64, width=1.0, seed=0)     # needs TensorFlow (pip install -e .[train])
    >>> sorted(model.output_names)
    ['pedestrian', 'queue']

TensorFlow is imported inside the functions so that importing this module stays cheap.
"""

from __future__ import annotations

from typing import Any

# (pointwise filters at width 1.0, stride) of each depthwise-separable block
BLOCKS: tuple[tuple[int, int], ...] = ((16, 1), (32, 2), (32, 1), (64, 2), (64, 1))
STEM_FILTERS = 16


def _filters(n: int, width: float) -> int:
    return max(4, int(round(n * width)))


def build_model(
    size: int = 64, *, width: float = 1.0, seed: int = 0, blocks: tuple[tuple[int, int], ...] = BLOCKS
) -> Any:
    """A compiled-free Keras model: input ``frame`` (size, size, 1) float32 in 0..1, outputs ``queue`` and ``pedestrian``.

    `width` scales every layer's filters (MobileNet's width multiplier); `seed` fixes the initial weights.
    Layer names are stable (``stem``, ``block{i}_dw``, ``block{i}_pw``, ...) so that compression
    and partitioning code can find them.
    """
    import tensorflow as tf

    keras = tf.keras
    layers = keras.layers
    if int(size) != size or size < 16:
        raise ValueError(f"size must be a whole number of pixels >= 16, got {size!r}")
    if width <= 0:
        raise ValueError(f"width is a multiplier > 0 (e.g. 0.5, 1.0), got {width!r}")
    keras.utils.set_random_seed(int(seed))
    inp = keras.Input((size, size, 1), name="frame")
    x = layers.Conv2D(_filters(STEM_FILTERS, width), 3, strides=2, padding="same", use_bias=False, name="stem")(inp)
    x = layers.BatchNormalization(name="stem_bn")(x)
    x = layers.ReLU(6.0, name="stem_relu")(x)
    for i, (filters, stride) in enumerate(blocks, start=1):
        x = layers.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False, name=f"block{i}_dw")(x)
        x = layers.BatchNormalization(name=f"block{i}_dw_bn")(x)
        x = layers.ReLU(6.0, name=f"block{i}_dw_relu")(x)
        x = layers.Conv2D(_filters(filters, width), 1, use_bias=False, name=f"block{i}_pw")(x)
        x = layers.BatchNormalization(name=f"block{i}_pw_bn")(x)
        x = layers.ReLU(6.0, name=f"block{i}_pw_relu")(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    queue = layers.Dense(3, activation="softmax", name="queue")(x)
    pedestrian = layers.Dense(1, activation="sigmoid", name="pedestrian")(x)
    return keras.Model(inp, {"queue": queue, "pedestrian": pedestrian}, name="intersection")


def count_macs(model: Any) -> int:
    """Multiply-accumulates of one forward pass at batch 1 (convolutions and dense layers).

    Conv2D: H_out * W_out * k_h * k_w * C_in * C_out; DepthwiseConv2D: H_out * W_out * k_h * k_w * C_in
    (times the depth multiplier); Dense: inputs * units. Batch norm, activations and pooling are
    left out: they are a few percent here and are folded or cheap in TFLite.
    """
    import tensorflow as tf

    layers = tf.keras.layers
    total = 0
    for layer in model.layers:
        if isinstance(layer, layers.DepthwiseConv2D):
            _, h, w, _ = layer.output.shape
            kh, kw = layer.kernel_size
            cin = layer.input.shape[-1]
            total += h * w * kh * kw * cin * layer.depth_multiplier
        elif isinstance(layer, layers.Conv2D):
            _, h, w, cout = layer.output.shape
            kh, kw = layer.kernel_size
            total += h * w * kh * kw * layer.input.shape[-1] * cout // layer.groups
        elif isinstance(layer, layers.Dense):
            total += layer.input.shape[-1] * layer.units
    return int(total)


def load_keras(name_or_card: Any = "intersection") -> Any:
    """The trained Keras model behind a shipped (or trained) model, rebuilt from its card and weights.

        >>> import numpy as np
        >>> model = load_keras("intersection")     # kit/models/intersection.json + .weights.npz
        >>> frames = np.zeros((2, 64, 64), np.uint8)
        >>> model(frames[..., None] / 255)["queue"].shape
        TensorShape([2, 3])

    `name_or_card` is a shipped model name, a card path, or a loaded card dict.
    """
    from pathlib import Path

    import numpy as np

    from kit.ml.card import load_card

    card = name_or_card if isinstance(name_or_card, dict) else load_card(name_or_card)
    weights = card.get("keras_weights")
    if not weights:
        raise ValueError(f"the card of {card.get('name')!r} lists no Keras weights; only its .tflite can be used")
    arch = card["architecture"]
    model = build_model(arch["size"], width=arch["width"])
    path = Path(card.get("_dir", ".")) / weights["file"]
    with np.load(path) as f:
        model.set_weights([f[f"arr_{i}"] for i in range(len(f.files))])
    return model

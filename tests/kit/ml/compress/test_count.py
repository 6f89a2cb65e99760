"""MAC and parameter counts checked against layers computed by hand."""

from __future__ import annotations

import pytest

keras = pytest.importorskip("keras")
from keras import layers  # noqa: E402

from kit.ml.compress.count import count_macs  # noqa: E402


def _one(layer, shape):
    model = keras.Sequential([keras.Input(shape), layer])
    count = count_macs(model)
    assert len(count.layers) == 1
    return count.layers[0]


def test_conv2d_same_padding():
    c = _one(layers.Conv2D(8, 3, padding="same"), (16, 16, 3))
    assert c.macs == 16 * 16 * 8 * (3 * 3 * 3)  # 55 296
    assert c.params == 3 * 3 * 3 * 8 + 8


def test_conv2d_valid_stride_2():
    c = _one(layers.Conv2D(4, 3, strides=2), (9, 9, 2))  # output 4x4
    assert c.output_shape[1:] == (4, 4, 4)
    assert c.macs == 4 * 4 * 4 * (3 * 3 * 2)
    assert c.params == 3 * 3 * 2 * 4 + 4


def test_grouped_conv2d():
    c = _one(layers.Conv2D(8, 3, padding="same", groups=2, use_bias=False), (6, 6, 4))
    assert c.macs == 6 * 6 * 8 * (3 * 3 * 2)
    assert c.params == 3 * 3 * 2 * 8


def test_depthwise_conv2d():
    c = _one(layers.DepthwiseConv2D(3, padding="same", depth_multiplier=2), (10, 10, 3))
    assert c.macs == 10 * 10 * 3 * 2 * 9
    assert c.params == 3 * 3 * 3 * 2 + 3 * 2


def test_separable_conv2d_is_depthwise_plus_pointwise():
    c = _one(layers.SeparableConv2D(16, 3, padding="same"), (8, 8, 4))
    assert c.macs == 8 * 8 * 4 * 9 + 8 * 8 * 4 * 16  # 2304 + 4096
    assert c.params == 3 * 3 * 4 + 4 * 16 + 16


def test_separable_is_cheaper_than_standard_by_the_textbook_ratio():
    std = _one(layers.Conv2D(32, 3, padding="same"), (16, 16, 16)).macs
    sep = _one(layers.SeparableConv2D(32, 3, padding="same"), (16, 16, 16)).macs
    # MobileNet paper: ratio = 1/N + 1/k^2
    assert sep / std == pytest.approx(1 / 32 + 1 / 9)


def test_dense_flat_and_on_last_axis():
    assert _one(layers.Dense(10), (20,)).macs == 200
    assert _one(layers.Dense(10), (20,)).params == 210
    assert _one(layers.Dense(5), (4, 6)).macs == 4 * 6 * 5  # applied at each of the 4 positions


def test_conv1d():
    c = _one(layers.Conv1D(6, 5), (20, 2))  # output length 16
    assert c.macs == 16 * 6 * 5 * 2


def test_batchnorm_pooling_activation_cost_no_macs_but_bn_has_params():
    bn = _one(layers.BatchNormalization(), (4, 4, 8))
    assert (bn.macs, bn.params) == (0, 4 * 8)  # gamma, beta, moving mean and variance
    assert _one(layers.MaxPooling2D(2), (8, 8, 3)).macs == 0
    assert _one(layers.GlobalAveragePooling2D(), (8, 8, 3)).macs == 0
    assert _one(layers.ReLU(), (8, 8, 3)).macs == 0


def test_functional_two_heads_and_nested_model_totals():
    inner = keras.Sequential([keras.Input((8, 8, 1)), layers.Conv2D(4, 3, padding="same", name="c")], name="inner")
    frame = keras.Input((8, 8, 1), name="frame")
    x = layers.GlobalAveragePooling2D(name="g")(inner(frame))
    model = keras.Model(
        frame, {"queue": layers.Dense(3, name="queue")(x), "pedestrian": layers.Dense(1, name="pedestrian")(x)}
    )
    count = count_macs(model)
    assert [c.name for c in count.layers] == ["c", "g", "pedestrian", "queue"] or sorted(
        c.name for c in count.layers
    ) == ["c", "g", "pedestrian", "queue"]
    assert count.macs == 8 * 8 * 4 * 9 + 4 * 3 + 4 * 1
    assert count.params == model.count_params()
    assert count.by_kind()["Conv2D"] == 8 * 8 * 4 * 9
    assert "total" in str(count)

"""The Keras model: MobileNet-style blocks, two named heads, seeded weights, MAC count."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from kit.ml.model import build_model, count_macs  # noqa: E402


def test_inputs_outputs_and_shapes():
    model = build_model(64, width=0.5, seed=0)
    assert model.input_names if hasattr(model, "input_names") else True
    assert model.inputs[0].shape[1:] == (64, 64, 1)
    out = model(np.zeros((2, 64, 64, 1), np.float32))
    assert set(out) == {"queue", "pedestrian"}
    assert out["queue"].shape == (2, 3) and out["pedestrian"].shape == (2, 1)
    assert np.allclose(np.sum(out["queue"], axis=1), 1.0, atol=1e-5), "queue is a softmax"


def test_uses_depthwise_separable_blocks():
    model = build_model(64, seed=0)
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds.count("DepthwiseConv2D") >= 4
    assert model.get_layer("block1_dw") and model.get_layer("block1_pw")


def test_seed_fixes_initial_weights():
    a = build_model(32, width=0.5, seed=3).get_weights()
    b = build_model(32, width=0.5, seed=3).get_weights()
    c = build_model(32, width=0.5, seed=4).get_weights()
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))


def test_count_macs_by_hand_on_a_small_model():
    keras = tf.keras
    inp = keras.Input((8, 8, 2))
    x = keras.layers.Conv2D(4, 3, strides=2, padding="same", use_bias=False)(inp)  # 4*4 * 9*2*4 = 1152
    x = keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False)(x)  # 4*4 * 9*4 = 576
    x = keras.layers.Conv2D(8, 1, use_bias=False)(x)  # 4*4 * 4*8 = 512
    x = keras.layers.GlobalAveragePooling2D()(x)
    out = keras.layers.Dense(3)(x)  # 8*3 = 24
    assert count_macs(keras.Model(inp, out)) == 1152 + 576 + 512 + 24


def test_width_scales_the_model_and_bad_arguments_are_explained():
    small, big = build_model(64, width=0.5, seed=0), build_model(64, width=1.0, seed=0)
    assert small.count_params() < big.count_params()
    assert count_macs(small) < count_macs(big)
    with pytest.raises(ValueError, match="width"):
        build_model(64, width=0)
    with pytest.raises(ValueError, match="size"):
        build_model(8)

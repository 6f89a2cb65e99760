"""Integer-only reference: the shipped int8 model's convolutions reproduced bit for bit from their inputs."""

from __future__ import annotations

import numpy as np
import pytest

from kit.ml import shipped_model
from kit.ml.compress.integer import (
    multiply_by_quantized_multiplier,
    patches,
    quantize_multiplier,
    requantize,
    run_layer,
    trace,
)
from kit.ml.data import make_dataset

pytestmark = pytest.mark.tflite


@pytest.mark.parametrize("real", [0.5, 0.1, 0.0123, 0.999999999999, 3.0e-5, 1.5])
def test_multiplier_and_shift_represent_the_real_factor(real):
    m, shift = quantize_multiplier(real)
    assert 2**30 <= m < 2**31
    assert abs(m / 2**31 * 2.0**shift - real) <= 2.0**shift / 2**32


def test_rounding_is_tflites_double_rounding():
    # 0.25 = 2**30 / 2**31 * 2**-1: the high multiply rounds x/2 (ties away from zero), then the shift rounds
    # again. Two roundings: 1/4 -> 1/2 -> 1 and 5/4 -> 3/2 -> 2, but -1/4 -> 0 (the nudge is not symmetric).
    m, shift = quantize_multiplier(0.25)
    x = np.array([1, 2, 3, 5, 6, -1, -2, -3, -5, -6, 0])
    got = multiply_by_quantized_multiplier(x, m, shift)
    assert (m, shift) == (2**30, -1)
    assert got.tolist() == [1, 1, 1, 2, 2, 0, -1, -1, -1, -2, 0]


def test_requantize_clamps_and_adds_the_zero_point():
    m, shift = quantize_multiplier(0.5)
    assert requantize(np.array([10, 1000, -1000]), m, shift, -100).tolist() == [-95, 127, -128]


def test_patches_pad_the_bottom_right_like_tensorflow():
    x = np.arange(16).reshape(4, 4, 1)
    p = patches(x, 3, 3, 2, pad_value=-1)
    assert p.shape == (2, 2, 3, 3, 1)
    assert p[0, 0, :, :, 0].tolist() == [[0, 1, 2], [4, 5, 6], [8, 9, 10]]  # no padding on top/left
    assert p[1, 1, :, :, 0].tolist() == [[10, 11, -1], [14, 15, -1], [-1, -1, -1]]


@pytest.mark.parametrize("conditions", ["day", "night"])
def test_first_layers_of_the_shipped_int8_model_match_the_interpreter_bit_for_bit(conditions):
    frame = make_dataset(1, seed=77, conditions=conditions).x[0]
    layers = trace(shipped_model("queue_int8"), frame, n=5)
    assert [layer.op for layer in layers] == ["CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D"]
    for layer in layers:
        assert np.array_equal(run_layer(layer), layer.output), layer.name
    assert layers[0].stride == 2 and layers[3].stride == 2


def test_xnnpack_differs_by_at_most_one_step():
    frame = make_dataset(1, seed=78).x[0]
    for layer in trace(shipped_model("queue_int8"), frame, n=3, reference=False):
        diff = run_layer(layer).astype(int) - layer.output.astype(int)
        assert np.abs(diff).max() <= 1


def test_a_float_model_is_refused_with_the_fix():
    with pytest.raises(ValueError, match="int8"):
        trace(shipped_model("intersection"), np.zeros((64, 64), np.uint8))

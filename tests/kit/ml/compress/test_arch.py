"""The standard-convolution twin of the MobileNet-style model."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from kit.ml.compress.arch import separable_chains, standard_twin  # noqa: E402
from kit.ml.compress.count import count_macs  # noqa: E402
from kit.ml.model import build_model  # noqa: E402


def test_twin_replaces_each_separable_block_with_one_conv():
    model = build_model(32, seed=0, blocks=((8, 1), (16, 2)))
    assert separable_chains(model) == {
        "block1_dw": ["block1_dw_bn", "block1_dw_relu", "block1_pw"],
        "block2_dw": ["block2_dw_bn", "block2_dw_relu", "block2_pw"],
    }
    twin = standard_twin(model)
    kinds = [type(layer).__name__ for layer in twin.layers]
    assert "DepthwiseConv2D" not in kinds
    conv = twin.get_layer("block2_conv")
    assert conv.kernel.shape == (3, 3, 8, 16) and tuple(conv.strides) == (2, 2)
    # block 2 by hand: 8x8 output, 16 filters; separable = 8*8*8*9 + 8*8*8*16, standard = 8*8*16*9*8
    macs = {c.name: c.macs for c in count_macs(twin).layers}
    assert macs["block2_conv"] == 8 * 8 * 16 * 9 * 8
    sep = {c.name: c.macs for c in count_macs(model).layers}
    assert sep["block2_dw"] + sep["block2_pw"] == 8 * 8 * 8 * 9 + 8 * 8 * 8 * 16
    out = twin(np.zeros((2, 32, 32, 1), np.float32))
    assert out["queue"].shape == (2, 3) and out["pedestrian"].shape == (2, 1)


def test_a_model_without_separable_blocks_is_explained():
    import keras

    frame = keras.Input((8, 8, 1))
    model = keras.Model(frame, keras.layers.Conv2D(2, 3)(frame), name="plain")
    with pytest.raises(ValueError, match="no DepthwiseConv2D"):
        standard_twin(model)

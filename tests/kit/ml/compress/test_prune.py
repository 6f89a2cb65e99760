"""Pruning: magnitude masks stay put, filter pruning really removes filters and keeps the function."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")
from keras import layers  # noqa: E402

from kit.ml.compress.count import count_macs  # noqa: E402
from kit.ml.compress.prune import (  # noqa: E402
    MaskCallback,
    filter_l1_norms,
    gzip_size,
    magnitude_prune,
    prunable_layers,
    prune_filters,
    sparsity,
)


def _net(seed: int = 0):
    keras.utils.set_random_seed(seed)
    frame = keras.Input((12, 12, 1), name="frame")
    x = layers.Conv2D(8, 3, padding="same", name="c1")(frame)
    x = layers.BatchNormalization(name="bn1")(x)
    x = layers.ReLU(name="r1")(x)
    x = layers.DepthwiseConv2D(3, padding="same", name="dw")(x)
    x = layers.Conv2D(16, 1, name="pw")(x)
    x = layers.MaxPooling2D(2, name="pool")(x)
    x = layers.SeparableConv2D(12, 3, padding="same", name="sep")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dense(10, activation="relu", name="fc")(x)
    model = keras.Model(
        frame,
        {
            "queue": layers.Dense(3, activation="softmax", name="queue")(x),
            "pedestrian": layers.Dense(1, activation="sigmoid", name="pedestrian")(x),
        },
    )
    # BN statistics that are not the identity, so slicing them wrongly would show
    bn = model.get_layer("bn1")
    rng = np.random.default_rng(seed)
    bn.set_weights([rng.uniform(0.5, 1.5, 8), rng.normal(0, 0.1, 8), rng.normal(0, 0.1, 8), rng.uniform(0.5, 2, 8)])
    return model


def test_prunable_layers_exclude_heads():
    assert prunable_layers(_net()) == ["c1", "pw", "sep", "fc"]


def test_half_the_filters_really_removed_and_macs_fall():
    model = _net()
    small = prune_filters(model, 0.5)
    assert small.get_layer("c1").get_config()["filters"] == 4
    assert small.get_layer("c1").kernel.shape == (3, 3, 1, 4)
    assert small.get_layer("dw").kernel.shape == (3, 3, 4, 1)
    assert small.get_layer("pw").kernel.shape == (1, 1, 4, 8)
    assert small.get_layer("sep").pointwise_kernel.shape == (1, 1, 8, 6)
    assert small.get_layer("fc").kernel.shape == (6, 5)
    assert small.get_layer("queue").kernel.shape == (5, 3)
    assert count_macs(small).macs < count_macs(model).macs / 1.8
    assert small.count_params() < model.count_params()


def test_weakest_filters_go_and_batchnorm_is_sliced_with_them():
    model = _net()
    model.get_layer("c1").kernel.assign(model.get_layer("c1").kernel.numpy() * np.array([1, 0, 1, 0, 1, 0, 1, 0]))
    x = np.random.default_rng(1).random((4, 12, 12, 1), dtype=np.float32)
    # the zero filters of c1 have the smallest L1 norm, so exactly they go
    small = prune_filters(model, 0.5, layers=["c1"])
    assert small.get_layer("c1").kernel.shape[-1] == 4
    np.testing.assert_array_equal(filter_l1_norms(small.get_layer("c1")), filter_l1_norms(model.get_layer("c1"))[::2])
    assert small.get_layer("bn1").get_weights()[0].tolist() == model.get_layer("bn1").get_weights()[0][::2].tolist()
    assert small(x)["queue"].shape == (4, 3)


def test_unpruned_layers_copy_weights_exactly():
    model = _net()
    same = prune_filters(model, 0.0)
    x = np.random.default_rng(2).random((3, 12, 12, 1), dtype=np.float32)
    a, b = model(x), same(x)
    np.testing.assert_allclose(a["queue"], b["queue"], atol=1e-6)
    np.testing.assert_allclose(a["pedestrian"], b["pedestrian"], atol=1e-6)


def test_removing_a_dead_channel_keeps_outputs():
    # a channel whose path is multiplied by zero downstream contributes nothing: removing it is exact
    model = _net()
    pw = model.get_layer("pw")
    k = pw.kernel.numpy()
    k[:, :, 3, :] = 0  # channel 3 of dw feeds nothing
    pw.kernel.assign(k)
    c1 = model.get_layer("c1")
    c1.kernel.assign(c1.kernel.numpy() * (np.arange(8) != 3))  # filter 3 is the weakest (all zero)
    small = prune_filters(model, 1 / 8, layers=["c1"])
    x = np.random.default_rng(3).random((2, 12, 12, 1), dtype=np.float32)
    np.testing.assert_allclose(model(x)["queue"], small(x)["queue"], atol=1e-5)


def test_flatten_then_dense_slices_the_right_inputs():
    keras.utils.set_random_seed(0)
    frame = keras.Input((4, 4, 1))
    x = layers.Conv2D(4, 3, padding="same", name="c")(frame)
    x = layers.Flatten(name="flat")(x)
    model = keras.Model(frame, layers.Dense(2, name="out")(x))
    c = model.get_layer("c")
    c.kernel.assign(c.kernel.numpy() * np.array([1, 1, 0, 1]))
    c.bias.assign(np.zeros(4))
    small = prune_filters(model, 0.25, layers=["c"])
    assert small.get_layer("out").kernel.shape == (4 * 4 * 3, 2)
    x = np.random.default_rng(0).random((2, 4, 4, 1), dtype=np.float32)
    np.testing.assert_allclose(model(x), small(x), atol=1e-5)


def test_layers_feeding_add_are_not_prunable():
    frame = keras.Input((6, 6, 2))
    a = layers.Conv2D(2, 1, name="a")(frame)
    s = layers.Add(name="add")([a, frame])
    model = keras.Model(frame, layers.Dense(1, name="out")(layers.GlobalAveragePooling2D()(s)))
    assert "a" not in prunable_layers(model)
    with pytest.raises(ValueError, match="cannot lose filters"):
        prune_filters(model, 0.5, layers=["a"])


def test_bad_fraction_is_explained():
    with pytest.raises(ValueError, match="fraction must be in"):
        prune_filters(_net(), 1.0)


@pytest.mark.slow
def test_magnitude_prune_masks_survive_training_and_shrink_gzip():
    model = _net()
    before = gzip_size(np.concatenate([w.ravel() for w in model.get_weights()]).astype(np.float32).tobytes())
    masks = magnitude_prune(model, 0.75)
    assert sorted(masks) == ["c1", "fc", "pw", "sep"]  # heads (< 64 weights) and depthwise kernels kept whole
    assert all(abs((m == 0).mean() - 0.75) < 0.01 for m in masks.values())
    # 384 of the 768 conv/dense weights are zero (depthwise and head weights count but stay)
    assert sparsity(model) == pytest.approx(0.5, abs=0.01)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss={"queue": "sparse_categorical_crossentropy", "pedestrian": "binary_crossentropy"},
    )
    rng = np.random.default_rng(0)
    x = rng.random((16, 12, 12, 1), dtype=np.float32)
    y = {"queue": rng.integers(0, 3, 16), "pedestrian": rng.integers(0, 2, (16, 1)).astype("float32")}
    model.fit(x, y, epochs=1, batch_size=8, verbose=0, callbacks=[MaskCallback(masks)])
    for name, mask in masks.items():
        layer = model.get_layer(name)
        kernel = layer.pointwise_kernel if name == "sep" else layer.kernel
        assert np.all(kernel.numpy()[mask == 0] == 0), f"{name}: a pruned weight came back"
    after = gzip_size(np.concatenate([w.ravel() for w in model.get_weights()]).astype(np.float32).tobytes())
    assert after < before * 0.75
    assert count_macs(model).macs == count_macs(_net()).macs  # same operations


def test_bad_sparsity_is_explained():
    with pytest.raises(ValueError, match="sparsity must be in"):
        magnitude_prune(_net(), 1.5)


def test_inner_prunable_leaves_the_first_convolution():
    from kit.ml.compress.prune import inner_prunable

    assert inner_prunable(_net()) == ["pw", "sep", "fc"]

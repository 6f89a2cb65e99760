"""QAT: BatchNorm folding keeps the function, the fake-quant op's straight-through gradient, the quantized twin."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from kit.ml.compress.qat import fake_quant, fold_batchnorm, quantized_twin  # noqa: E402
from kit.ml.model import build_model  # noqa: E402


@pytest.fixture(scope="module")
def model():
    m = build_model(32, width=0.5, seed=0)
    rng = np.random.default_rng(0)
    for layer in m.layers:  # statistics that are not the identity, so a wrong fold would show
        if type(layer).__name__ == "BatchNormalization":
            n = layer.get_weights()[0].shape[0]
            layer.set_weights(
                [rng.uniform(0.5, 1.5, n), rng.normal(0, 0.1, n), rng.normal(0, 0.1, n), rng.uniform(0.5, 2, n)]
            )
    return m


@pytest.fixture(scope="module")
def frames():
    return np.random.default_rng(1).uniform(0, 1, size=(8, 32, 32, 1)).astype(np.float32)


def test_folding_batchnorm_keeps_the_function(model, frames):
    folded = fold_batchnorm(model)
    assert not [layer for layer in folded.layers if type(layer).__name__ == "BatchNormalization"]
    a, b = model(frames, training=False), folded(frames, training=False)
    for name in ("queue", "pedestrian"):
        assert np.allclose(np.asarray(a[name]), np.asarray(b[name]), atol=1e-5), name


def test_fake_quant_rounds_clips_and_passes_the_gradient_straight_through():
    x = tf.constant([-3.0, -0.26, 0.0, 0.74, 9.0])
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = fake_quant(x, 0.5, 0.0, -4, 3)
    assert y.numpy().tolist() == [-2.0, -0.5, 0.0, 0.5, 1.5]
    assert tape.gradient(y, x).numpy().tolist() == [0, 1, 1, 1, 0]


def test_the_twin_is_close_at_16_bits_and_coarse_at_3(model, frames):
    folded = fold_batchnorm(model)
    ref = np.asarray(folded(frames)["queue"])
    fine = np.asarray(quantized_twin(folded, bits=16)(frames)["queue"])
    coarse = np.asarray(quantized_twin(folded, bits=3)(frames)["queue"])
    assert np.abs(fine - ref).max() < 1e-3
    assert np.abs(coarse - ref).max() > 10 * np.abs(fine - ref).max()


def test_the_twin_trains_through_the_op(model, frames):
    twin = quantized_twin(fold_batchnorm(model), bits=4)
    with tf.GradientTape() as tape:
        out = twin(frames)
        loss = tf.reduce_sum(out["queue"][:, 0]) + tf.reduce_sum(out["pedestrian"])
    grads = tape.gradient(loss, twin.trainable_variables)
    assert all(g is not None for g in grads) and any(float(tf.reduce_max(tf.abs(g))) > 0 for g in grads)


def test_unfolded_batchnorm_is_refused(model):
    with pytest.raises(ValueError, match="fold the BatchNorms first"):
        quantized_twin(model)

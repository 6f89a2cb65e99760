"""Training recipe shared by every variant: BatchNorm statistics are exact after a short run."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from kit.ml.compress.tune import recalibrate_batchnorm  # noqa: E402


def test_recalibrated_batchnorm_holds_the_batch_statistics():
    frame = keras.Input((4, 4, 2))
    model = keras.Model(frame, keras.layers.BatchNormalization(name="bn")(frame))
    x = np.random.default_rng(0).normal(3.0, 2.0, (64, 4, 4, 2)).astype(np.float32)
    recalibrate_batchnorm(model, x, frames=64)
    bn = model.get_layer("bn")
    np.testing.assert_allclose(bn.moving_mean.numpy(), x.mean(axis=(0, 1, 2)), rtol=1e-4)
    np.testing.assert_allclose(bn.moving_variance.numpy(), x.var(axis=(0, 1, 2)), rtol=1e-3)
    assert bn.momentum == 0.99  # restored

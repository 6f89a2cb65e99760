"""Weight sharing: k-means codebooks, their storage, and a model whose kernels hold k values each."""

from __future__ import annotations

import numpy as np
import pytest

from kit.ml.compress.share import kmeans, linear_levels, stored_bytes


def test_kmeans_finds_the_clusters_and_keeps_the_shape():
    rng = np.random.default_rng(0)
    w = np.concatenate([rng.normal(-1, 0.01, 50), rng.normal(0, 0.01, 200), rng.normal(2, 0.01, 5)]).reshape(5, 51)
    codebook, index = kmeans(w, 3)
    assert index.shape == w.shape
    assert np.allclose(np.sort(codebook), [-1, 0, 2], atol=0.01)
    assert np.abs(codebook[index] - w).max() < 0.05


def test_kmeans_error_is_below_linear_levels_on_bell_shaped_weights():
    w = np.random.default_rng(1).standard_t(3, size=4000) * 0.05
    for k in (4, 8, 16):
        c, i = kmeans(w, k)
        lc, li = linear_levels(w, k)
        assert np.mean((c[i] - w) ** 2) < np.mean((lc[li] - w) ** 2)


def test_stored_bytes_packs_bits():
    assert stored_bytes(np.zeros(100), np.zeros(16)) == 50 + 64
    assert stored_bytes(np.zeros(9), np.zeros(2)) == 2 + 8


def test_share_weights_leaves_k_values_per_kernel():
    keras = pytest.importorskip("keras")
    from kit.ml.compress.share import share_weights, shareable_layers
    from kit.ml.model import build_model

    model = build_model(32, width=0.5, seed=0)
    twin, nbytes = share_weights(model, 4)
    for name in shareable_layers(model):
        assert len(np.unique(twin.get_layer(name).get_weights()[0])) <= 4
    assert np.array_equal(
        model.get_layer("stem").get_weights()[0], build_model(32, width=0.5, seed=0).get_layer("stem").get_weights()[0]
    )
    assert nbytes < sum(model.get_layer(n).get_weights()[0].nbytes for n in shareable_layers(model)) / 8
    with pytest.raises(ValueError, match="codebook"):
        share_weights(model, 4, cluster=lambda w, k: (np.zeros(k + 1), np.zeros(w.shape, int)))
    del keras

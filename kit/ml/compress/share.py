"""Weight sharing (Deep Compression's k-means quantization): each layer keeps k distinct weights and an index per weight.

A layer's weights are clustered into ``k`` centroids (its *codebook*, k float32 values); each weight is then
stored as the index of its centroid, ``ceil(log2 k)`` bits. Unlike linear quantization the grid is not
evenly spaced: centroids gather where the weights are dense (near zero) and still reach the few large
weights, which is why 4-bit k-means keeps more accuracy than 4-bit linear quantization.

    >>> import numpy as np
    >>> from kit.ml.compress.share import kmeans, stored_bytes
    >>> codebook, index = kmeans(np.array([0.0, 0.1, 0.9, 1.0]), 2)
    >>> [round(float(c), 2) for c in codebook], index.tolist()
    ([0.05, 0.95], [0, 0, 1, 1])
    >>> stored_bytes(index, codebook)      # 4 weights x 1 bit -> 1 byte, + 2 float32 centroids
    9
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

Cluster = Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]]
"""``cluster(weights, k)`` -> (codebook of k floats, index array shaped like weights)."""


def kmeans(weights: np.ndarray, k: int, *, iters: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """1-D k-means of ``weights``: (codebook (k,) float32, index of each weight's centroid, same shape).

    Centroids start evenly spaced between the smallest and largest weight (the *linear* initialisation
    Han et al. found best: it keeps centroids on the rare large weights); then Lloyd's steps: assign each
    weight to its nearest centroid, move each centroid to the mean of its weights (an empty one stays put).
    """
    w = np.asarray(weights, np.float64).ravel()
    if k < 1:
        raise ValueError(f"k is the number of shared values (>= 1), got {k!r}")
    centroids = np.linspace(w.min(), w.max(), k) if len(w) else np.zeros(k)
    index = np.zeros(len(w), np.int64)
    for _ in range(iters):
        index = np.abs(w[:, None] - centroids[None, :]).argmin(axis=1)
        sums = np.bincount(index, weights=w, minlength=k)
        counts = np.bincount(index, minlength=k)
        moved = np.where(counts > 0, sums / np.maximum(counts, 1), centroids)
        if np.allclose(moved, centroids):
            break
        centroids = moved
    index = np.abs(w[:, None] - centroids[None, :]).argmin(axis=1)
    return centroids.astype(np.float32), index.reshape(np.shape(weights)).astype(np.uint8 if k <= 256 else np.int64)


def linear_levels(weights: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The same storage with an evenly spaced grid (linear quantization to k levels): for comparison."""
    w = np.asarray(weights, np.float64)
    levels = np.linspace(w.min(), w.max(), k)
    index = np.abs(w.ravel()[:, None] - levels[None, :]).argmin(axis=1).reshape(w.shape)
    return levels.astype(np.float32), index.astype(np.uint8 if k <= 256 else np.int64)


def stored_bytes(index: np.ndarray, codebook: np.ndarray) -> int:
    """Bytes to store one shared layer: every index in ``ceil(log2 k)`` bits (packed), plus the float32 codebook."""
    k = len(codebook)
    bits = max(1, math.ceil(math.log2(k))) if k > 1 else 1
    return math.ceil(np.size(index) * bits / 8) + 4 * k


def shareable_layers(model: Any) -> list[str]:
    """Layers whose kernel is shared: every Conv2D, DepthwiseConv2D and Dense (biases stay float32)."""
    return [layer.name for layer in model.layers if type(layer).__name__ in ("Conv2D", "DepthwiseConv2D", "Dense")]


def share_weights(model: Any, k: int, cluster: Cluster = kmeans) -> tuple[Any, int]:
    """A copy of ``model`` whose kernels each hold ``k`` shared values; returns (model, bytes of kernels stored that way).

    Each layer gets its own codebook. The copy computes with the decoded float weights (``codebook[index]``),
    which is what a runtime does after unpacking.
    """
    import keras

    twin = keras.models.clone_model(model)
    twin.set_weights(model.get_weights())
    total = 0
    for name in shareable_layers(model):
        layer = twin.get_layer(name)
        weights = layer.get_weights()
        codebook, index = cluster(weights[0], k)
        codebook, index = np.asarray(codebook, np.float32), np.asarray(index)
        if index.shape != weights[0].shape or len(codebook) > k:
            raise ValueError(
                f"{name}: cluster() must return a codebook of at most {k} values and one index per "
                f"weight shaped {weights[0].shape}; got {codebook.shape} and {index.shape}"
            )
        layer.set_weights([codebook[index.astype(np.int64)]] + weights[1:])
        total += stored_bytes(index, codebook)
    return twin, total

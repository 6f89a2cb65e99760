"""Pruning: zero the smallest weights (unstructured), or remove whole filters (structured).

Two ideas that look alike and behave very differently on a CPU:

* **Magnitude pruning** sets the smallest weights of each kernel to zero. The model keeps the same
  shape and the same operations, so it runs no faster; but long runs of zeros compress well, so the
  file shipped to a device (gzip) gets smaller. A mask keeps the zeros at zero while fine-tuning.
* **Filter pruning** ranks the output filters of each convolution by the L1 norm of their weights,
  drops the weakest, and rebuilds a narrower model with the surviving weights copied in. Fewer filters
  means fewer MACs in that layer *and* in the next one, so it really runs faster.

    >>> from kit.ml.compress.prune import magnitude_prune, MaskCallback, prune_filters
    >>> masks = magnitude_prune(model, 0.7)                     # doctest: +SKIP
    >>> model.fit(x, y, callbacks=[MaskCallback(masks)])        # doctest: +SKIP
    >>> small = prune_filters(model, 0.5)                       # doctest: +SKIP
"""

from __future__ import annotations

import copy
import gzip
import os
from typing import Any

import numpy as np

# Layers whose kernel is pruned by magnitude, and which produce filters we may remove.
_PRODUCERS = ("Conv2D", "SeparableConv2D", "Dense")
# Layers that keep the channel axis as it is: a selection of channels passes straight through.
_PASS_THROUGH = (
    "BatchNormalization",
    "ReLU",
    "Activation",
    "LeakyReLU",
    "PReLU",
    "ELU",
    "Dropout",
    "SpatialDropout2D",
    "MaxPooling2D",
    "AveragePooling2D",
    "GlobalAveragePooling2D",
    "GlobalMaxPooling2D",
    "ZeroPadding2D",
    "Cropping2D",
    "UpSampling2D",
    "DepthwiseConv2D",
    "GaussianNoise",
    "Identity",
    "Flatten",
    "Concatenate",
)


def _kernel(layer: Any) -> Any:
    kind = type(layer).__name__
    if kind == "SeparableConv2D":
        return layer.pointwise_kernel
    return getattr(layer, "kernel", None)


# --- unstructured ---------------------------------------------------------------------------------


def magnitude_prune(model: Any, sparsity: float, *, skip: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """Zero the fraction ``sparsity`` of smallest-magnitude weights in every Conv2D/Dense kernel.

    SeparableConv2D: its pointwise kernel. Depthwise kernels, layers with fewer than 64 weights (the
    output heads of a tiny model) and layers named in ``skip`` are left whole. Returns
    ``{layer name: 0/1 mask}`` for :class:`MaskCallback`.
    """
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity!r}; e.g. 0.5 zeroes half of the weights")
    masks: dict[str, np.ndarray] = {}
    for layer in _all_layers(model):
        # depthwise kernels hold a few percent of the weights but each filter sees one channel only:
        # zeroing 3 of its 9 taps costs far more accuracy than it saves bytes
        if type(layer).__name__ not in _PRODUCERS or layer.name in skip:
            continue
        kernel = _kernel(layer)
        if kernel is None:
            continue
        w = np.asarray(kernel.numpy())
        if w.size < 64:
            continue
        k = int(round(sparsity * w.size))
        mask = np.ones(w.shape, dtype=w.dtype)
        if k > 0:
            # stable ranking so that ties break the same way every run
            order = np.argsort(np.abs(w).ravel(), kind="stable")
            mask.ravel()[order[:k]] = 0
        kernel.assign(w * mask)
        masks[layer.name] = mask
    return masks


def apply_masks(model: Any, masks: dict[str, np.ndarray]) -> None:
    """Multiply each masked kernel by its mask again (after an optimizer step moved the zeros)."""
    for layer in _all_layers(model):
        mask = masks.get(layer.name)
        if mask is None:
            continue
        kernel = _kernel(layer)
        kernel.assign(kernel.numpy() * mask)


def MaskCallback(masks: dict[str, np.ndarray]) -> Any:  # noqa: N802 - reads like the Keras class it returns
    """A ``keras.callbacks.Callback`` that keeps pruned weights at zero after every training batch.

    >>> masks = magnitude_prune(model, 0.8)                                   # doctest: +SKIP
    >>> model.fit(x, y, epochs=2, callbacks=[MaskCallback(masks)])            # doctest: +SKIP
    """
    import keras

    class _MaskCallback(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            apply_masks(self.model, masks)

    return _MaskCallback()


def sparsity(model: Any) -> float:
    """Fraction of exactly-zero weights over all conv/dense kernels of ``model`` (depthwise included)."""
    zeros = total = 0
    for layer in _all_layers(model):
        kind = type(layer).__name__
        kernels = []
        if kind == "SeparableConv2D":
            kernels = [layer.depthwise_kernel, layer.pointwise_kernel]
        elif kind in ("Conv2D", "Dense", "DepthwiseConv2D"):
            kernels = [layer.kernel]
        for k in kernels:
            w = np.asarray(k.numpy())
            zeros += int((w == 0).sum())
            total += w.size
    return zeros / total if total else 0.0


def gzip_size(path_or_bytes: str | os.PathLike | bytes) -> int:
    """Size in bytes after gzip (level 9): what a sparse model costs to ship over the air."""
    data = path_or_bytes if isinstance(path_or_bytes, bytes) else open(path_or_bytes, "rb").read()
    return len(gzip.compress(data, compresslevel=9, mtime=0))


# --- structured -----------------------------------------------------------------------------------


def _all_layers(model: Any):
    for layer in model.layers:
        if hasattr(layer, "layers") and layer.layers:
            yield from _all_layers(layer)
        else:
            yield layer


def _inbound(layer: Any) -> list[Any]:
    nodes = layer._inbound_nodes
    if not nodes:
        return []
    return [t._keras_history.operation for t in nodes[0].input_tensors]


def filter_l1_norms(layer: Any) -> np.ndarray:
    """L1 norm of each output filter of a Conv2D / SeparableConv2D (pointwise) / Dense layer."""
    w = np.asarray(_kernel(layer).numpy())
    return np.abs(w).reshape(-1, w.shape[-1]).sum(axis=0)


def prunable_layers(model: Any) -> list[str]:
    """Names of the layers whose filters :func:`prune_filters` may remove.

    A layer qualifies when every path from its output reaches another conv/dense layer through
    channel-preserving layers only (BatchNorm, activations, pooling, depthwise, Flatten, Concatenate):
    its consumers can then simply drop the matching input channels. Model outputs, layers called more
    than once and layers feeding an Add or an unknown layer keep all their filters.
    """
    layers = [l for l in model.layers]
    consumers: dict[str, list[Any]] = {l.name: [] for l in layers}
    for layer in layers:
        for parent in _inbound(layer):
            consumers.setdefault(parent.name, []).append(layer)
    outputs = {t._keras_history.operation.name for t in model.outputs}

    def clear(layer: Any) -> bool:
        if layer.name in outputs or len(layer._inbound_nodes) > 1:
            return False
        nexts = consumers.get(layer.name, [])
        if not nexts:
            return False
        for nxt in nexts:
            kind = type(nxt).__name__
            if len(nxt._inbound_nodes) > 1:
                return False
            if kind in _PRODUCERS:
                continue
            if kind in _PASS_THROUGH and clear(nxt):
                continue
            return False
        return True

    return [l.name for l in layers if type(l).__name__ in _PRODUCERS and clear(l)]


def inner_prunable(model: Any) -> list[str]:
    """:func:`prunable_layers` without the layers that read the model's input.

    The first convolution sees raw pixels with few filters, and every later layer depends on it:
    the usual practice (and the kit's default in ``kit model compress``) is to leave it whole.
    """
    inputs = {t._keras_history.operation.name for t in model.inputs}
    return [name for name in prunable_layers(model) if not {p.name for p in _inbound(model.get_layer(name))} & inputs]


def prune_filters(
    model: Any,
    fraction: float | dict[str, float],
    *,
    layers: list[str] | None = None,
    min_filters: int = 1,
) -> Any:
    """A new, narrower model: the ``fraction`` of filters with the smallest L1 norm removed in each layer.

    ``layers`` restricts which layers lose filters (default: :func:`prunable_layers`). ``fraction`` may
    also be a per-layer policy ``{layer name: fraction}`` (the layers it names are the ones pruned). The surviving
    weights are copied into the new model, so it starts close to the original; fine-tune it for a
    few epochs to recover the accuracy.

        >>> small = prune_filters(model, 0.5)        # doctest: +SKIP
        >>> count_macs(small).macs < count_macs(model).macs   # doctest: +SKIP
        True
    """
    import keras

    policy = dict(fraction) if isinstance(fraction, dict) else None
    for value in policy.values() if policy is not None else [fraction]:
        if not 0.0 <= value < 1.0:
            raise ValueError(f"fraction must be in [0, 1), got {value!r}; e.g. 0.5 removes half of the filters")
    if policy is not None and layers is None:
        layers = list(policy)
    if isinstance(model, keras.Sequential):
        # a Sequential model is a chain: its functional twin has the same layers and weights
        model = keras.Model(model.inputs, model.outputs, name=model.name)
    allowed = prunable_layers(model)
    targets = allowed if layers is None else list(layers)
    for name in targets:
        if name not in allowed:
            raise ValueError(
                f"layer {name!r} cannot lose filters (a model output, shared, or feeding an Add/unknown layer); "
                f"prunable layers: {allowed}"
            )

    keep_out: dict[str, np.ndarray] = {}  # layer name -> kept indices of its output channels
    new_width: dict[str, int] = {}
    for layer in model.layers:
        parents = _inbound(layer)
        kind = type(layer).__name__
        width = int(layer.output.shape[-1]) if not isinstance(layer.output, (list, tuple)) else None
        if kind == "InputLayer" or not parents:
            keep_out[layer.name] = np.arange(width)
            continue
        keep_in = keep_out[parents[0].name]
        if kind in _PRODUCERS:
            if layer.name in targets:
                norms = filter_l1_norms(layer)
                share = policy.get(layer.name, 0.0) if policy is not None else fraction
                n_keep = max(min_filters, int(round(len(norms) * (1.0 - share))))
                # strongest filters, kept in their original order
                kept = np.sort(np.argsort(-norms, kind="stable")[:n_keep])
                new_width[layer.name] = n_keep
            else:
                kept = np.arange(width)
        elif kind == "DepthwiseConv2D":
            m = int(layer.get_config().get("depth_multiplier", 1))
            kept = (keep_in[:, None] * m + np.arange(m)[None, :]).ravel()
        elif kind == "Flatten":
            in_shape = layer.input.shape
            channels = int(in_shape[-1])
            positions = int(np.prod([int(d) for d in in_shape[1:-1]]))
            kept = (np.arange(positions)[:, None] * channels + keep_in[None, :]).ravel()
        elif kind == "Concatenate":
            axis = layer.get_config().get("axis", -1)
            if axis not in (-1, len(layer.output.shape) - 1):
                kept = np.arange(width)
            else:
                parts, offset = [], 0
                for parent in parents:
                    parts.append(keep_out[parent.name] + offset)
                    offset += int(parent.output.shape[-1])
                kept = np.concatenate(parts)
        elif kind in _PASS_THROUGH:
            kept = keep_in
        else:
            kept = np.arange(width) if width is not None else None
        keep_out[layer.name] = kept

    config = copy.deepcopy(model.get_config())
    for entry in config["layers"]:
        entry.pop("build_config", None)  # built shapes are the old ones: let the new model build itself
        name = entry["config"]["name"]
        if name in new_width:
            key = "units" if entry["class_name"] == "Dense" else "filters"
            entry["config"][key] = new_width[name]
    new = keras.Model.from_config(config)

    for layer in model.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        parents = _inbound(layer)
        keep_in = keep_out[parents[0].name] if parents else None
        out = keep_out[layer.name]
        new.get_layer(layer.name).set_weights(_slice(layer, weights, keep_in, out))
    return new


def _slice(layer: Any, weights: list[np.ndarray], keep_in: np.ndarray, out: np.ndarray) -> list[np.ndarray]:
    kind = type(layer).__name__
    if kind == "Conv2D":
        kernel = weights[0][..., keep_in, :][..., out]
        return [kernel] + [b[out] for b in weights[1:]]
    if kind == "Dense":
        return [weights[0][keep_in][:, out]] + [b[out] for b in weights[1:]]
    if kind == "SeparableConv2D":
        m = weights[0].shape[-1]
        mid = (keep_in[:, None] * m + np.arange(m)[None, :]).ravel()
        depthwise = weights[0][:, :, keep_in, :]
        pointwise = weights[1][:, :, mid, :][..., out]
        return [depthwise, pointwise] + [b[out] for b in weights[2:]]
    if kind == "DepthwiseConv2D":
        return [weights[0][:, :, keep_in, :]] + [b[out] for b in weights[1:]]
    if kind in ("BatchNormalization", "PReLU"):
        return [w[..., out] for w in weights]
    return weights

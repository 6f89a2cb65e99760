"""Count parameters and multiply-accumulates (MACs) per layer of a Keras model.

One MAC is one multiplication added into a sum: the unit that dominates the cost of a CNN on a
small CPU. Counting conventions (inference, batch 1, bias adds not counted as MACs):

| layer | MACs |
|---|---|
| Conv2D | H_out·W_out·C_out·(k_h·k_w·C_in/groups) |
| DepthwiseConv2D | H_out·W_out·C_in·m·k_h·k_w (m = depth multiplier) |
| SeparableConv2D | the depthwise part + H_out·W_out·(C_in·m)·C_out (1×1 pointwise) |
| Conv1D | L_out·C_out·k·C_in/groups |
| Dense | (every leading dim of the input)·in·units |
| BatchNormalization | 0: TFLite folds it into the convolution before it |
| pooling, activations, reshapes | 0: no multiply-accumulate (they still cost some time) |

    >>> import keras
    >>> from kit.ml.compress.count import count_macs
    >>> model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3, padding="same")])
    >>> count_macs(model).macs        # 8·8·4·(3·3·1)
    2304
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class LayerCount:
    """Parameters and MACs of one layer."""

    name: str
    kind: str
    output_shape: tuple
    params: int
    macs: int


@dataclass
class ModelCount:
    """Per-layer counts of a model, with totals. ``str(count)`` is a readable table.

    >>> count = count_macs(model)          # doctest: +SKIP
    >>> count.macs, count.params           # doctest: +SKIP
    >>> print(count)                       # doctest: +SKIP
    """

    layers: list[LayerCount] = field(default_factory=list)

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    @property
    def params(self) -> int:
        return sum(layer.params for layer in self.layers)

    def by_kind(self) -> dict[str, int]:
        """MACs summed by layer class (where the cost is)."""
        out: dict[str, int] = {}
        for layer in self.layers:
            out[layer.kind] = out.get(layer.kind, 0) + layer.macs
        return out

    def __str__(self) -> str:
        lines = [f"{'layer':<28} {'kind':<22} {'output':<18} {'params':>9} {'MACs':>12}"]
        for layer in self.layers:
            shape = "x".join(str(d) for d in layer.output_shape[1:])
            lines.append(f"{layer.name:<28} {layer.kind:<22} {shape:<18} {layer.params:>9,} {layer.macs:>12,}")
        lines.append(f"{'total':<28} {'':<22} {'':<18} {self.params:>9,} {self.macs:>12,}")
        return "\n".join(lines)


def _shape(tensor: Any) -> tuple:
    if isinstance(tensor, (list, tuple)):
        return tuple(_shape(t) for t in tensor)
    return tuple(tensor.shape)


def _prod(dims) -> int:
    return int(math.prod(int(d) for d in dims if d is not None))


def layer_macs(layer: Any, input_shape: tuple, output_shape: tuple) -> int:
    """MACs of one call of ``layer`` (batch 1) given its input and output shapes (batch dim included)."""
    kind = type(layer).__name__
    cfg = layer.get_config()
    if kind in ("Conv2D", "Conv1D", "Conv3D"):
        groups = int(cfg.get("groups", 1) or 1)
        c_in = int(input_shape[-1])
        positions = _prod(output_shape[1:-1])
        return positions * int(output_shape[-1]) * _prod(cfg["kernel_size"]) * (c_in // groups)
    if kind in ("DepthwiseConv2D", "DepthwiseConv1D"):
        return _prod(output_shape[1:]) * _prod(cfg["kernel_size"])
    if kind in ("SeparableConv2D", "SeparableConv1D"):
        c_in = int(input_shape[-1])
        mid = c_in * int(cfg.get("depth_multiplier", 1))
        positions = _prod(output_shape[1:-1])
        return positions * mid * _prod(cfg["kernel_size"]) + positions * mid * int(output_shape[-1])
    if kind in ("Conv2DTranspose", "Conv1DTranspose"):
        # every input pixel is spread over a kernel-sized patch of every output channel
        return _prod(input_shape[1:]) * _prod(cfg["kernel_size"]) * int(output_shape[-1])
    if kind == "Dense":
        return _prod(input_shape[1:]) * int(output_shape[-1])
    return 0


def count_macs(model: Any) -> ModelCount:
    """Parameters and MACs of every layer of a built Keras model (nested models are opened)."""
    result = ModelCount()
    _walk(model, result)
    return result


def _walk(model: Any, result: ModelCount) -> None:
    for layer in model.layers:
        if type(layer).__name__ == "InputLayer":
            continue
        if hasattr(layer, "layers") and layer.layers:  # a nested model: count its own layers
            _walk(layer, result)
            continue
        try:
            in_shape, out_shape = _shape(layer.input), _shape(layer.output)
        except (AttributeError, ValueError) as exc:
            raise ValueError(
                f"layer {layer.name!r} has no single known input/output shape ({exc}); "
                "count a model built with keras.Input(...) whose layers are each called once"
            ) from exc
        macs = layer_macs(layer, in_shape, out_shape)
        result.layers.append(
            LayerCount(layer.name, type(layer).__name__, out_shape, int(layer.count_params()), int(macs))
        )

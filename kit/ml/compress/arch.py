"""Standard convolutions versus depthwise-separable ones: the same network, built both ways.

A depthwise-separable block (MobileNet) filters each channel on its own with a k×k depthwise
convolution, then mixes channels with a 1×1 pointwise convolution. The standard block does both at
once with one k×k convolution. For C_in inputs and C_out outputs the MACs per pixel are
``k²·C_in + C_in·C_out`` against ``k²·C_in·C_out``: about 8× fewer for 3×3 kernels and 32+ filters.

:func:`standard_twin` rebuilds a model with every ``DepthwiseConv2D → BN → ReLU → Conv2D 1×1`` chain
replaced by one ``Conv2D k×k`` with the pointwise layer's filters and the depthwise layer's stride,
keeping the pointwise layer's BatchNorm and activation. It starts from fresh weights: train both
the same way to compare accuracy.

    >>> from kit.ml.model import build_model
    >>> from kit.ml.compress.arch import standard_twin
    >>> standard = standard_twin(build_model(64, seed=0))       # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

_BETWEEN = ("BatchNormalization", "ReLU", "Activation")


def _consumers(model: Any) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for layer in model.layers:
        for node in layer._inbound_nodes[:1]:
            for t in node.input_tensors:
                out.setdefault(t._keras_history.operation.name, []).append(layer)
    return out


def separable_chains(model: Any) -> dict[str, list[str]]:
    """``{depthwise layer: [the layers after it, ending with the 1×1 pointwise Conv2D]}`` found in ``model``."""
    consumers = _consumers(model)
    chains: dict[str, list[str]] = {}
    for layer in model.layers:
        if type(layer).__name__ != "DepthwiseConv2D" or layer.get_config().get("depth_multiplier", 1) != 1:
            continue
        chain, current = [], layer
        while True:
            nxt = consumers.get(current.name, [])
            if len(nxt) != 1:
                break
            current = nxt[0]
            kind = type(current).__name__
            if (
                kind == "Conv2D"
                and tuple(current.get_config()["kernel_size"]) == (1, 1)
                and tuple(current.get_config()["strides"]) == (1, 1)
            ):
                chains[layer.name] = chain + [current.name]
                break
            if kind not in _BETWEEN:
                break
            chain.append(current.name)
    return chains


def standard_twin(model: Any, *, seed: int = 0) -> Any:
    """The same network with standard convolutions in place of depthwise-separable blocks (fresh weights)."""
    import keras

    chains = separable_chains(model)
    if not chains:
        raise ValueError(
            f"model {model.name!r} has no DepthwiseConv2D -> (BN/ReLU) -> 1x1 Conv2D chain to replace; "
            "standard_twin expects a MobileNet-style model such as kit.ml.model.build_model()"
        )
    keras.utils.set_random_seed(int(seed))
    skipped = {name for chain in chains.values() for name in chain}
    # the pointwise conv's output is now produced by the standard conv that replaces the whole chain
    replaced_by: dict[str, str] = {chain[-1]: dw for dw, chain in chains.items()}

    tensors: dict[str, Any] = {}
    new_inputs = []
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "InputLayer":
            t = keras.Input(batch_shape=layer.output.shape, name=layer.name)
            tensors[layer.name] = t
            new_inputs.append(t)
            continue
        if layer.name in skipped and layer.name not in replaced_by:
            continue
        if layer.name in replaced_by:
            tensors[layer.name] = tensors[replaced_by[layer.name]]
            continue
        parents = [t._keras_history.operation.name for t in layer._inbound_nodes[0].input_tensors]
        args = [tensors[p] for p in parents]
        if kind == "DepthwiseConv2D" and layer.name in chains:
            dw = layer.get_config()
            pw = model.get_layer(chains[layer.name][-1]).get_config()
            new_layer = keras.layers.Conv2D(
                pw["filters"],
                dw["kernel_size"],
                strides=dw["strides"],
                padding=dw["padding"],
                use_bias=pw["use_bias"],
                name=layer.name.replace("_dw", "") + "_conv" if "_dw" in layer.name else layer.name + "_conv",
            )
        else:
            config = layer.get_config()
            config.pop("build_config", None)
            new_layer = type(layer).from_config(config)
        tensors[layer.name] = new_layer(args[0] if len(args) == 1 else args)
    outputs = model.output
    if isinstance(outputs, dict):
        new_outputs = {k: tensors[v._keras_history.operation.name] for k, v in outputs.items()}
    elif isinstance(outputs, (list, tuple)):
        new_outputs = [tensors[v._keras_history.operation.name] for v in outputs]
    else:
        new_outputs = tensors[outputs._keras_history.operation.name]
    return keras.Model(
        new_inputs[0] if len(new_inputs) == 1 else new_inputs, new_outputs, name=f"{model.name}_standard"
    )

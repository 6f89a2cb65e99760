"""Per-layer sensitivity: how much accuracy each layer loses when only it is pruned, and what a policy costs.

Layers are not equally redundant. A *sensitivity scan* prunes one layer at a time by a few ratios (no
fine-tuning) and records the accuracy on validation frames; a *policy* ``{layer: fraction}`` then prunes
the insensitive layers hard and the sensitive ones lightly, to meet a MAC budget at the least loss.
:func:`policy_macs` prices a policy without building the model (the channel counts propagate through the
graph as :func:`kit.ml.compress.prune.prune_filters` would cut them), so a search can price thousands.

    >>> from kit.ml.compress.sensitivity import scan, policy_macs, uniform_policy
    >>> s = scan(model, validation, ratios=(0.25, 0.5, 0.75))               # doctest: +SKIP
    >>> print(s)                                                           # doctest: +SKIP
    >>> policy_macs(model, {"block5_pw": 0.5})                              # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from kit import progress
from kit.ml.compress.count import count_macs
from kit.ml.compress.prune import _inbound, inner_prunable, prune_filters
from kit.ml.compress.tune import keras_accuracy, recalibrate_batchnorm

_PRODUCERS = ("Conv2D", "Dense")


@dataclass(frozen=True)
class Scan:
    """Accuracy after pruning one layer at a time: ``accuracy[i, j]`` is layer ``layers[i]`` at ``ratios[j]``."""

    layers: list[str]
    ratios: list[float]
    base_accuracy: float
    accuracy: np.ndarray

    def drop(self, layer: str, ratio: float) -> float:
        """Accuracy points lost (as a fraction) when only ``layer`` is pruned by ``ratio``; linear between scanned ratios."""
        if ratio <= 0:
            return 0.0
        row = self.base_accuracy - self.accuracy[self.layers.index(layer)]
        return float(np.interp(ratio, [0.0] + list(self.ratios), [0.0] + list(row)))

    def __str__(self) -> str:
        head = f"{'layer':<12}" + "".join(f"{r:>8.0%}" for r in self.ratios) + "   (accuracy points lost, pruned alone)"
        lines = [head]
        for i, name in enumerate(self.layers):
            lines.append(f"{name:<12}" + "".join(f"{100 * (self.base_accuracy - a):>+8.1f}" for a in self.accuracy[i]))
        return "\n".join(lines)


def proxy_accuracy(model: Any, policy: dict[str, float], data: Any, calibration: np.ndarray) -> float:
    """Validation accuracy of ``prune_filters(model, policy)`` after re-estimating its BatchNorm statistics.

    Without fine-tuning, a pruned model's BatchNorms still expect the sums of the channels that were
    removed, and almost every policy scores near chance: the score says nothing. One forward pass over
    ``calibration`` frames (model inputs) to re-estimate them — "adaptive BN" (EagleEye, Li et al. 2020) —
    costs no training and ranks policies roughly as fine-tuning would.
    """
    pruned = prune_filters(model, policy) if policy else model
    if calibration is not None:
        recalibrate_batchnorm(pruned, calibration, frames=len(calibration))
    return keras_accuracy(pruned, data)


def scan(
    model: Any,
    data: Any,
    *,
    calibration: np.ndarray | None = None,
    layers: list[str] | None = None,
    ratios: tuple[float, ...] = (0.25, 0.5, 0.75),
) -> Scan:
    """Prune each of ``layers`` (default: :func:`inner_prunable`) alone by each ratio and score it on ``data``.

    Use validation frames, not the held-out test frames: the policy is chosen from these numbers. With
    ``calibration`` (training inputs) each pruned model's BatchNorms are re-estimated first (:func:`proxy_accuracy`).
    """
    names = list(layers) if layers is not None else inner_prunable(model)
    base = keras_accuracy(model, data)
    cells = progress.bar(total=len(names) * len(ratios), desc="sensitivity scan", unit="pruned model")
    acc = np.zeros((len(names), len(ratios)))
    for i, name in enumerate(names):
        for j, r in enumerate(ratios):
            acc[i, j] = proxy_accuracy(model, {name: r}, data, calibration)
            cells.update(1)
    cells.close()
    return Scan(names, [float(r) for r in ratios], base, acc)


def policy_macs(model: Any, policy: dict[str, float], *, min_filters: int = 1) -> int:
    """MACs of ``prune_filters(model, policy)`` without building it: each layer's MACs scaled by its kept channels."""
    counted = {layer.name: layer.macs for layer in count_macs(model).layers}
    kept: dict[str, float] = {}  # layer -> fraction of its output channels kept
    total = 0.0
    for layer in model.layers:
        kind = type(layer).__name__
        parents = _inbound(layer)
        keep_in = kept[parents[0].name] if parents else 1.0
        if kind in _PRODUCERS:
            width = int(layer.output.shape[-1])
            share = policy.get(layer.name, 0.0)
            keep_out = max(min_filters, int(round(width * (1.0 - share)))) / width
        else:
            keep_out = keep_in if kind not in ("InputLayer",) else 1.0
        kept[layer.name] = keep_out
        macs = counted.get(layer.name, 0)
        if kind in _PRODUCERS:
            total += macs * keep_in * keep_out
        else:  # depthwise and the rest: one channel in, one channel out
            total += macs * keep_in
    return int(round(total))


def uniform_policy(
    model: Any, budget_macs: int, *, layers: list[str] | None = None, step: float = 0.01
) -> dict[str, float] | None:
    """The smallest single ratio (a multiple of ``step``) that brings every layer in ``layers`` under the budget."""
    names = list(layers) if layers is not None else inner_prunable(model)
    for ratio in np.arange(0.0, 1.0, step):
        policy = {name: round(float(ratio), 4) for name in names}
        if policy_macs(model, policy) <= budget_macs:
            return policy
    return None


def greedy_policy(
    drop: Any, macs_of: Any, budget_macs: int, layers: list[str], ratios: tuple[float, ...] = (0.25, 0.5, 0.75)
) -> dict[str, float] | None:
    """Raise one layer at a time to its next ratio, cheapest accuracy per MAC saved first, until under the budget.

    ``drop(layer, ratio)`` is the accuracy lost pruning that layer alone (e.g. :meth:`Scan.drop`),
    ``macs_of(policy)`` prices a policy (e.g. ``lambda p: policy_macs(model, p)``). None when even every
    layer at the largest ratio is over the budget.
    """
    policy = {name: 0.0 for name in layers}
    steps = [0.0] + sorted(ratios)
    while macs_of(policy) > budget_macs:
        best, best_cost = None, float("inf")
        current = macs_of(policy)
        for name in layers:
            at = steps.index(policy[name])
            if at + 1 == len(steps):
                continue
            trial = dict(policy, **{name: steps[at + 1]})
            saved = current - macs_of(trial)
            if saved <= 0:
                continue
            cost = (drop(name, steps[at + 1]) - drop(name, steps[at])) / saved
            if cost < best_cost:
                best, best_cost = trial, cost
        if best is None:
            return None
        policy = best
    return policy

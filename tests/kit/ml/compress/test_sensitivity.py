"""Sensitivity scan, policy pricing and the greedy and evolutionary policies."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("keras")

from kit.ml.compress.count import count_macs  # noqa: E402
from kit.ml.compress.prune import inner_prunable, prune_filters  # noqa: E402
from kit.ml.compress.search import evolve, mutate, repair  # noqa: E402
from kit.ml.compress.sensitivity import Scan, greedy_policy, policy_macs, uniform_policy  # noqa: E402
from kit.ml.model import build_model  # noqa: E402


@pytest.fixture(scope="module")
def model():
    return build_model(32, width=0.5, seed=0)


@pytest.mark.parametrize(
    "policy", [{"block5_pw": 0.5}, {"block1_pw": 0.25, "block4_pw": 0.75}, {"block2_pw": 0.9, "block3_pw": 0.3}]
)
def test_policy_macs_is_what_the_pruned_model_counts(model, policy):
    assert policy_macs(model, policy) == count_macs(prune_filters(model, policy)).macs


def test_prune_filters_takes_a_per_layer_policy(model):
    small = prune_filters(model, {"block2_pw": 0.5, "block4_pw": 0.25})
    assert (
        small.get_layer("block2_pw").get_weights()[0].shape[-1]
        == model.get_layer("block2_pw").get_weights()[0].shape[-1] // 2
    )
    assert small.get_layer("block3_pw").get_weights()[0].shape == model.get_layer("block3_pw").get_weights()[0].shape[
        :2
    ] + (8, 16)
    with pytest.raises(ValueError, match="fraction"):
        prune_filters(model, {"block2_pw": 1.0})


def test_uniform_policy_is_the_smallest_ratio_under_the_budget(model):
    budget = count_macs(model).macs // 2
    policy = uniform_policy(model, budget)
    assert policy_macs(model, policy) <= budget
    ratio = next(iter(policy.values()))
    assert policy_macs(model, {n: round(ratio - 0.01, 4) for n in policy}) > budget


def test_greedy_protects_the_sensitive_layer(model):
    layers = inner_prunable(model)
    scan = Scan(
        layers,
        [0.25, 0.5, 0.75],
        0.9,
        np.array([[0.9, 0.9, 0.9] if n != "block2_pw" else [0.5, 0.3, 0.2] for n in layers]),
    )
    budget = int(count_macs(model).macs * 0.6)
    policy = greedy_policy(scan.drop, lambda p: policy_macs(model, p), budget, layers)
    assert policy["block2_pw"] == 0.0 and policy_macs(model, policy) <= budget
    assert greedy_policy(scan.drop, lambda p: policy_macs(model, p), 1, layers) is None


def test_evolve_stays_within_budget_and_never_ends_below_its_start():
    weight = {"a": 100, "b": 300, "c": 300}
    macs_of = lambda p: int(1000 + sum(weight[n] * (1 - p[n]) for n in weight))  # noqa: E731
    score = lambda p: -(9 * p["a"] ** 2 + 0.1 * p["b"] ** 2 + 0.1 * p["c"] ** 2)  # noqa: E731
    start = {n: 0.5 for n in weight}
    result = evolve(score, macs_of, 1350, list(weight), start=start, seed=1)
    assert macs_of(result.policy) <= 1350 and result.score >= score(start)
    assert result.history == sorted(result.history)
    rng = np.random.default_rng(0)
    assert all(0.0 <= r <= 0.9 for r in mutate({"a": 0.9, "b": 0.0}, rng).values())
    assert repair({"a": 0.9, "b": 0.9, "c": 0.9}, macs_of, 1000, rng) is None

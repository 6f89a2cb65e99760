"""Automated per-layer pruning policy search: a small evolutionary agent under a MAC budget.

AMC (He et al., 2018) trained a reinforcement-learning agent to choose each layer's pruning ratio. With
five prunable layers a much simpler agent does the same job: keep the best few policies, mutate them,
repair any that break the budget, score the survivors, repeat. It starts from the uniform policy at the
same budget, so it can only report a policy at least as good *on its own score* (accuracy on validation
frames without fine-tuning); whether that survives fine-tuning and held-out frames is the honest test.

    >>> from kit.ml.compress.search import evolve
    >>> result = evolve(score, macs_of, budget, layers, start=uniform, seed=0)   # doctest: +SKIP
    >>> result.policy, result.score, result.evaluations                          # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

Policy = dict[str, float]


@dataclass
class SearchResult:
    """The best policy found, its score, how many policies were scored, and the best score after each generation."""

    policy: Policy
    score: float
    evaluations: int
    history: list[float] = field(default_factory=list)


def repair(
    policy: Policy,
    macs_of: Callable[[Policy], int],
    budget_macs: int,
    rng: np.random.Generator,
    *,
    step: float = 0.05,
    top: float = 0.9,
) -> Policy | None:
    """Raise random layers' ratios by ``step`` until the policy is within the budget (None if it cannot be)."""
    policy = dict(policy)
    while macs_of(policy) > budget_macs:
        open_layers = [name for name, r in policy.items() if r + step <= top + 1e-9]
        if not open_layers:
            return None
        name = open_layers[int(rng.integers(len(open_layers)))]
        policy[name] = round(policy[name] + step, 4)
    return policy


def mutate(policy: Policy, rng: np.random.Generator, *, step: float = 0.05, top: float = 0.9) -> Policy:
    """Move one or two layers' ratios up or down by one or two steps, kept within [0, top]."""
    child = dict(policy)
    names = list(child)
    for _ in range(int(rng.integers(1, 3))):
        name = names[int(rng.integers(len(names)))]
        child[name] = round(float(np.clip(child[name] + step * rng.choice([-2, -1, 1, 2]), 0.0, top)), 4)
    return child


def evolve(
    score: Callable[[Policy], float],
    macs_of: Callable[[Policy], int],
    budget_macs: int,
    layers: list[str],
    *,
    start: Policy | None = None,
    population: int = 4,
    children: int = 6,
    generations: int = 6,
    seed: int = 0,
    step: float = 0.05,
) -> SearchResult:
    """(mu + lambda) evolution of per-layer ratios; every scored policy is within ``budget_macs``.

    ``score(policy)`` is higher-better (e.g. validation accuracy of ``prune_filters(model, policy)``).
    Scores are cached by policy, so ``evaluations`` counts distinct policies scored.
    """
    rng = np.random.default_rng(seed)
    cache: dict[tuple, float] = {}

    def scored(policy: Policy) -> float:
        key = tuple(sorted(policy.items()))
        if key not in cache:
            cache[key] = float(score(policy))
        return cache[key]

    first = repair(start or {name: 0.0 for name in layers}, macs_of, budget_macs, rng, step=step)
    if first is None:
        raise ValueError(f"no policy of these layers meets a budget of {budget_macs:,} MACs")
    parents = [first]
    while len(parents) < population:
        candidate = repair(mutate(first, rng, step=step), macs_of, budget_macs, rng, step=step)
        if candidate is not None:
            parents.append(candidate)
    history = []
    for _ in range(generations):
        brood = []
        for _ in range(children):
            parent = parents[int(rng.integers(len(parents)))]
            child = repair(mutate(parent, rng, step=step), macs_of, budget_macs, rng, step=step)
            if child is not None:
                brood.append(child)
        pool = {tuple(sorted(p.items())): p for p in parents + brood}
        ranked = sorted(pool.values(), key=lambda p: (-scored(p), macs_of(p)))
        parents = ranked[:population]
        history.append(scored(parents[0]))
    return SearchResult(parents[0], scored(parents[0]), len(cache), history)


def describe(policy: Policy) -> str:
    """``block2_pw 25 %, block3_pw 50 %, ...`` for printing."""
    return ", ".join(f"{name} {ratio:.0%}" for name, ratio in policy.items())


__all__ = ["SearchResult", "evolve", "mutate", "repair", "describe"]

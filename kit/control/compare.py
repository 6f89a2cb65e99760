"""Fixed-time vs adaptive control over the same seeded simulated day: the capstone's measured outcome.

>>> from kit.control.compare import compare
>>> result = compare(seed=0, hours=1, start="2026-10-15T08:00:00")
>>> sorted(result)
['adaptive', 'fixed']
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kit.control.adaptive import AdaptiveController, AdaptiveTimings, Policy, actuated_policy
from kit.control.fixed import FixedTimeController, Timings

#: The stored defaults (kit.store.defaults) as the fixed plan's timings, so both plans start equal.
FIXED_DEFAULT = Timings()


def simulate(make_controller: Callable[[Any], Any], *, seed: int, hours: float, start: str) -> dict[str, float]:
    """Run one controller on a fresh simulated board; return the world's summary."""
    from kit.board import Board
    from kit.pins import SimFactory
    from kit.sim.world import World

    world = World(seed=seed, start=start)
    with Board(world, pin_factory=SimFactory()) as board:
        make_controller(board).run(hours=hours)
        return dict(world.stats.summary())


def compare(
    *,
    seed: int = 0,
    hours: float = 24.0,
    start: str = "2026-10-15T00:00:00",
    policy: Policy = actuated_policy,
    timings: AdaptiveTimings | None = None,
) -> dict[str, dict[str, float]]:
    """Summaries of the fixed-time plan and the adaptive controller on the same seeded world."""
    return {
        "fixed": simulate(lambda b: FixedTimeController(b, FIXED_DEFAULT), seed=seed, hours=hours, start=start),
        "adaptive": simulate(
            lambda b: AdaptiveController(b, timings, policy=policy), seed=seed, hours=hours, start=start
        ),
    }

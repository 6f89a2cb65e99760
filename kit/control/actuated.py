"""SUMO-style actuated control: extend a green while vehicles keep coming, end it at a gap.

As in SUMO's ``actuated`` traffic lights (and the gap-out logic of NEMA controllers): each green runs
at least its minimum; after that it is extended while a vehicle is near the stop line on a served
arm (a loop detector ``within_m`` upstream), and ends when the flow shows a gap *and* someone waits
on the other phase, or at the maximum green. With nobody waiting elsewhere it rests where it is.

    >>> from kit.control.phases import View
    >>> policy = actuated()
    >>> policy(View("car_green", 15.0, queues={"n2c": 2}, approaching={"w2c": 1}))   # flow continues
    False
    >>> policy(View("car_green", 15.0, queues={"n2c": 2}, approaching={"w2c": 0}))   # a gap
    True
"""

from __future__ import annotations

from kit.control.phases import Policy, View

SERVED = {"car_green": ("w2c", "e2c"), "ped_green": ("n2c", "s2c")}


def actuated(max_car_green_s: float = 60.0, max_side_green_s: float = 30.0) -> Policy:
    """Gap-out actuated control with the given maximum greens."""

    def policy(view: View) -> bool:
        served = SERVED[view.phase]
        other = [arm for arm in ("w2c", "e2c", "n2c", "s2c") if arm not in served]
        waiting = sum(view.queues.get(a, 0) + view.approaching.get(a, 0) for a in other)
        if view.phase == "car_green":
            waiting += view.peds_waiting
        if not waiting:
            return False  # nobody needs the other phase: rest
        limit = max_car_green_s if view.phase == "car_green" else max_side_green_s
        flowing = sum(view.approaching.get(a, 0) + view.queues.get(a, 0) for a in served)
        return not flowing or view.phase_s >= limit

    policy.__name__ = "actuated"
    return policy

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
from kit.errors import UsageError

SERVED = {"car_green": ("w2c", "e2c"), "ped_green": ("n2c", "s2c")}
ARMS = ("w2c", "e2c", "n2c", "s2c")
#: ``kit_actuated(**KIT_CAPPED)``: a 20 s maximum side green and the crossing served once its request has waited 19 s
#: (chosen on the validation days among limits of 18, 19 and 20 s and side greens of 20 and 30 s).
KIT_CAPPED = {"max_car_green_s": 60.0, "max_side_green_s": 20.0, "ped_max_wait_s": 19.0}


def _gap_out(view: View, present: dict[str, int], peds: int, max_car_green_s: float, max_side_green_s: float) -> bool:
    """End the green at a gap in the served arms once someone waits elsewhere, or at the maximum."""
    served = SERVED[view.phase]
    waiting = sum(present[a] for a in ARMS if a not in served) + (peds if view.phase == "car_green" else 0)
    if not waiting:
        return False  # nobody needs the other phase: rest
    limit = max_car_green_s if view.phase == "car_green" else max_side_green_s
    return not sum(present[a] for a in served) or view.phase_s >= limit


def actuated(max_car_green_s: float = 60.0, max_side_green_s: float = 30.0) -> Policy:
    """Gap-out actuated control with the given maximum greens (stop-line and upstream loops on every arm)."""

    def policy(view: View) -> bool:
        present = {a: view.queues.get(a, 0) + view.approaching.get(a, 0) for a in ARMS}
        return _gap_out(view, present, view.peds_waiting, max_car_green_s, max_side_green_s)

    policy.__name__ = "actuated"
    policy.sees_moving = False  # never reads View.moving: drive() skips the camera's view
    return policy


def kit_actuated(
    max_car_green_s: float = 60.0, max_side_green_s: float = 30.0, ped_max_wait_s: float | None = None
) -> Policy:
    """The same gap-out rule fed only by what the kit senses (the learned policy's inputs, no loops).

    Per arm the camera model's queue class (empty, short, long) stands for the queue and the cars it sees
    driving in (within its 8 car lengths of each arm) for the loop; on the kit's own approach the ultrasonic
    echo also tells a car still driving in; the PIR tells someone at the kerb. The gap between this row and
    :func:`actuated` on the table is what seeing 60 m of each arm instead of a loop 40 m out is worth, for
    the same rule. With ``ped_max_wait_s`` the car green also ends once the crossing request has waited that long
    (the button's timer; the app's stored ``ped_max_wait_s`` does the same), whatever the flow.

        >>> policy = kit_actuated()
        >>> policy(View("car_green", 15.0, queues={"n2c": 2}, echo_m=0.6))   # a car drives in on w2c
        False
        >>> policy(View("car_green", 15.0, queues={"n2c": 2}, moving={"e2c": (48.0,)}))   # and one on e2c
        False
        >>> policy(View("car_green", 15.0, queues={"n2c": 2}))                # no flow seen: a gap
        True
        >>> flowing = View("car_green", 15.0, peds_waiting=1, ped_wait_s=21.0, echo_m=0.6)
        >>> kit_actuated()(flowing), kit_actuated(ped_max_wait_s=19.0)(flowing)
        (False, True)
    """
    from kit.control.learned import camera_class, car_driving_in

    if ped_max_wait_s is not None and (
        isinstance(ped_max_wait_s, bool) or not isinstance(ped_max_wait_s, (int, float)) or not ped_max_wait_s > 0
    ):
        raise UsageError(f"ped_max_wait_s={ped_max_wait_s!r}: give a positive number of seconds, or None for no limit")

    def policy(view: View) -> bool:
        if ped_max_wait_s is not None and view.phase == "car_green" and view.peds_waiting:
            if view.ped_wait_s >= ped_max_wait_s:
                return True
        present = {a: camera_class(view.queues.get(a, 0)) + len(view.moving.get(a, ())) for a in ARMS}
        present["w2c"] += car_driving_in(view)
        return _gap_out(view, present, 1 if view.peds_waiting else 0, max_car_green_s, max_side_green_s)

    policy.__name__ = "actuated_kit"
    return policy

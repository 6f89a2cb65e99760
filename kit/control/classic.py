"""The course's two controllers as phase policies for the SUMO junction (see :mod:`kit.control.phases`).

``fixed_time`` is the capstone's fixed plan (:data:`kit.control.compare.FIXED_DEFAULT`: 20 s car green,
7 s walk, every cycle). ``kit_adaptive`` is the kit's adaptive rule, the same pure function
:func:`kit.control.adaptive.actuated_policy` the app runs, fed from what the kit senses: its
ultrasonic sensor looks down the kit's approach (``w2c``; a queue means two or more cars, the 1.3 m
threshold), and a crossing request comes from the button/PIR, or from a vehicle waiting on the side road,
whose green runs with the walk.

    >>> from kit.control.phases import View
    >>> fixed = fixed_time()
    >>> fixed(View("car_green", 12.0)), fixed(View("car_green", 20.0))
    (False, True)
    >>> adaptive = kit_adaptive()
    >>> adaptive(View("car_green", 30.0, queues={"w2c": 0, "n2c": 0}, peds_waiting=0))
    False
"""

from __future__ import annotations

from kit.control.adaptive import AdaptiveTimings, Observation, actuated_policy
from kit.control.phases import Policy, View

#: The kit's approach as its ultrasonic sensor sees it: a queue stands when 2+ cars wait (1.3 m threshold).
QUEUE_CARS = 2


def is_night(hour: float) -> bool:
    """Little daylight (the LDR's night mode) on the kit's October day: before 06:30 or from 19:00."""
    return hour < 6.5 or hour >= 19.0


def fixed_time(car_green_s: float = 20.0, ped_green_s: float = 7.0) -> Policy:
    """End each green after its fixed time, wanted or not."""

    def policy(view: View) -> bool:
        return view.phase_s >= (car_green_s if view.phase == "car_green" else ped_green_s) - 1e-9

    policy.__name__ = "fixed"
    policy.sees_moving = False  # never reads View.moving: drive() skips the camera's view
    return policy


def kit_adaptive(timings: AdaptiveTimings | None = None) -> Policy:
    """The kit's adaptive rule (rest on car green, serve requests at a gap) with a fixed walk."""
    timings = timings or AdaptiveTimings()

    def policy(view: View) -> bool:
        if view.phase != "car_green":
            return view.phase_s >= timings.ped_green_s - 1e-9
        side = sum(view.queues.get(arm, 0) for arm in ("n2c", "s2c"))
        obs = Observation(
            phase_s=view.phase_s,
            queue=view.queues.get("w2c", 0) >= QUEUE_CARS,
            ped_request=view.peds_waiting > 0 or side > 0 or view.ped_wait_s > 0,
            ped_wait_s=view.ped_wait_s,
            night=is_night(view.hour),
        )
        return actuated_policy(obs, timings)

    policy.__name__ = "adaptive"
    policy.sees_moving = False  # never reads View.moving: drive() skips the camera's view
    return policy

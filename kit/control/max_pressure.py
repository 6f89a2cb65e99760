"""Max-pressure control (Varaiya 2013): serve the phase whose movements hold the most queued demand.

A movement's pressure is its upstream queue minus its downstream queue; the junction's exits lead off
the map (nothing queues downstream), so a phase's pressure is the number of vehicles on the arms it
would serve (lane-area detectors over each 200 m arm, as in PressLight and the LibSignal benchmarks). Pedestrians
waiting at the kerb count as one queued unit each on the walk phase. Checked at every tick once the
green's minimum has run: switch when the other phase's pressure is higher. A maximum wait for the
pedestrians (as the kit's rule has) keeps the crossing from being starved at the peaks.

    >>> from kit.control.phases import View
    >>> policy = max_pressure()
    >>> policy(View("car_green", 12.0, vehicles={"w2c": 3, "e2c": 1, "n2c": 5, "s2c": 0}))
    True
    >>> policy(View("car_green", 12.0, vehicles={"w2c": 3, "e2c": 3, "n2c": 5, "s2c": 0}))
    False
"""

from __future__ import annotations

from kit.control.phases import Policy, View


def pressures(view: View) -> dict[str, float]:
    """Pressure of each green phase."""
    q = view.vehicles
    return {
        "car_green": q.get("w2c", 0) + q.get("e2c", 0),
        "ped_green": q.get("n2c", 0) + q.get("s2c", 0) + view.peds_waiting,
    }


def max_pressure(ped_max_wait_s: float = 60.0) -> Policy:
    """Max-pressure with a cap on how long a crossing request may wait."""

    def policy(view: View) -> bool:
        p = pressures(view)
        other = "ped_green" if view.phase == "car_green" else "car_green"
        if view.phase == "car_green" and view.ped_wait_s >= ped_max_wait_s:
            return True
        return p[other] > p[view.phase]

    policy.__name__ = "max_pressure"
    policy.sees_moving = False  # never reads View.moving: drive() skips the camera's view
    return policy

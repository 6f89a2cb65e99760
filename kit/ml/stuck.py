"""Stuck sensors, told from their history: a reading that stays put while the world around it moves.

From one frame, a PIR stuck at "nobody" in the dead of night looks like a working one: the kerb is
often empty at 3 am. Over time it does not: pedestrians are served on the crossing (someone was
there) and the PIR never saw them. Likewise the ultrasonic distance stays put to the millimetre while
the camera sees another queue than the one it implies. :class:`StuckWatch` is that rule for one reading;
:class:`StuckSensors` applies it to the kit's distance sensor and PIR with the evidence each has:

| sensor | stuck when it has not changed for | while at least |
|---|---|---|
| ``distance`` (> 5 mm) | ``distance_hold_s`` (5 min) | ``distance_events`` (6) frames whose queue class is not the one the distance implies |
| ``pir`` | ``pir_hold_s`` (10 min) | ``pir_events`` (3) crossings served (the walk light came on) |

A flag clears as soon as the reading moves again. The app (``kit.apps.model_loop``) feeds the flags
to the fused model as ``distance_ok`` / ``pir_ok`` = 0, the masked input it was trained with, instead
of always "trusted"; ``python bench/stuck.py`` measures the detection delay and the false flags of a
normal simulated day.

    >>> from kit.ml.stuck import StuckWatch
    >>> pir = StuckWatch("pir", hold_s=600, min_events=3)
    >>> pir.update(0, 0.0)
    False
    >>> for minute in range(1, 16):                   # the walk light comes on every 5 minutes
    ...     flagged = pir.update(60 * minute, 0.0, events=int(minute % 5 == 0))
    >>> flagged, pir.events, pir.flagged_at
    (True, 3, 900.0)
    >>> pir.update(960, 1.0)                          # it moves again: trusted again
    False
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from kit.ml.sensors import queue_class_from_distance


class StuckWatch:
    """One reading: flagged once it has not moved by more than ``tolerance`` for ``hold_s`` seconds while
    ``min_events`` things happened that should have moved it.

    :param name: what the reading is (for messages and status).
    :param hold_s: how long the reading must stay put, in the caller's seconds.
    :param min_events: how many events (``update(..., events=n)``) must have happened meanwhile.
    :param tolerance: changes up to this size count as "not moved" (the reading's own noise).
    """

    def __init__(self, name: str, *, hold_s: float, min_events: int, tolerance: float = 0.0) -> None:
        if not (math.isfinite(float(hold_s)) and hold_s > 0):
            raise ValueError(f"{name}: hold_s={hold_s!r} must be a positive number of seconds, e.g. 600")
        if int(min_events) != min_events or min_events < 1:
            raise ValueError(f"{name}: min_events={min_events!r} must be a whole number >= 1, e.g. 3")
        if not (math.isfinite(float(tolerance)) and tolerance >= 0):
            raise ValueError(f"{name}: tolerance={tolerance!r} must be 0 or more, in the reading's units")
        self.name = name
        self.hold_s = float(hold_s)
        self.min_events = int(min_events)
        self.tolerance = float(tolerance)
        self.value: float | None = None  #: the value the reading has held since ``since``
        self.since: float | None = None
        self.events = 0  #: events since the reading last moved
        self.flagged_at: float | None = None  #: when the current flag was raised (None: trusted)

    @property
    def stuck(self) -> bool:
        return self.flagged_at is not None

    def update(self, t: float, value: float, *, events: int = 0) -> bool:
        """The reading at time ``t`` and the events since the last update; returns whether it is flagged."""
        value = float(value)
        if self.value is None or abs(value - self.value) > self.tolerance:
            self.value, self.since, self.events, self.flagged_at = value, float(t), 0, None
            return False
        self.events += int(events)
        if self.flagged_at is None and t - self.since >= self.hold_s and self.events >= self.min_events:
            self.flagged_at = float(t)
        return self.stuck

    def __repr__(self) -> str:
        state = f"stuck since {self.flagged_at:.0f} s" if self.stuck else "trusted"
        return f"<StuckWatch {self.name}: {state}, value {self.value}, {self.events} events>"


@dataclass(frozen=True)
class StuckRules:
    """The numbers of :class:`StuckSensors` (seconds; the distance tolerance in metres)."""

    distance_hold_s: float = 300.0
    distance_events: int = 6
    distance_tolerance_m: float = 0.005
    pir_hold_s: float = 600.0
    pir_events: int = 3


class StuckSensors:
    """The kit's distance sensor and PIR, each watched against the evidence that should move it.

    Call :meth:`update` on every sensor sample (``sample_period_s``, 1 s by default; a PIR read only
    with the camera, every 10 s, misses most of the short waits an actuated crossing has); tell it
    the camera's queue class when a frame was scored.

        >>> watch = StuckSensors()
        >>> for s in range(0, 1800, 1):             # 30 min: the distance reads 4 cars, the camera sees 0 or 1
        ...     _ = watch.update(s, distance_m=0.8, pir=False, walk=False,
        ...                      queue_class=(s // 120) % 2 if s % 10 == 0 else None)
        >>> watch.distance_ok, watch.pir_ok
        (False, True)
    """

    def __init__(self, rules: StuckRules | None = None) -> None:
        self.rules = r = rules or StuckRules()
        self.distance = StuckWatch(
            "distance", hold_s=r.distance_hold_s, min_events=r.distance_events, tolerance=r.distance_tolerance_m
        )
        self.pir = StuckWatch("pir", hold_s=r.pir_hold_s, min_events=r.pir_events)
        self._walk = False

    @property
    def distance_ok(self) -> bool:
        return not self.distance.stuck

    @property
    def pir_ok(self) -> bool:
        return not self.pir.stuck

    def update(
        self, t: float, *, distance_m: float, pir: bool, walk: bool, queue_class: int | None = None
    ) -> tuple[bool, bool]:
        """One sample: the readings, whether the walk light is on, the camera's queue class if a frame was
        scored since the last sample. Returns ``(distance_ok, pir_ok)``."""
        crossing = bool(walk) and not self._walk  # the walk light came on: someone was waiting
        self._walk = bool(walk)
        # the camera sees another queue than the distance implies (a working sensor then moves soon)
        disagree = queue_class is not None and int(queue_class) != queue_class_from_distance(distance_m)
        self.distance.update(t, distance_m, events=int(disagree))
        self.pir.update(t, float(bool(pir)), events=int(crossing))
        return self.distance_ok, self.pir_ok

    def status(self) -> str:
        """One line for ``kit status``: "ok" or which sensor is flagged since when (in the caller's seconds)."""
        flagged = [
            f"{w.name} stuck at {w.value:g} since {w.flagged_at:.0f} s" for w in (self.distance, self.pir) if w.stuck
        ]
        return "; ".join(flagged) if flagged else "ok"

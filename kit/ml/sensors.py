"""The sensor vector a fused model reads beside the camera frame: the kit's sensors at one moment, scaled to 0..1.

| index | name | from | scaled |
|---|---|---|---|
| 0 | ``distance`` | HC-SR04: metres to the tail of the queue | / ``DISTANCE_MAX_M`` (2 m) |
| 1 | ``pir`` | PIR motion sensor at the kerb | 0 or 1 |
| 2 | ``light`` | LDR light level | 0..1 as read |
| 3 | ``road_temp`` | TMP36 on the MCP3008 | (°C - 10) / 20 |
| 4 | ``distance_ok`` | 1 while the distance sensor is trusted | 0 or 1 |
| 5 | ``pir_ok`` | 1 while the PIR is trusted | 0 or 1 |

A sensor that is known to be failed (``*_ok`` = 0) has its value set to 0: the model was trained with
such masked readings, so it then leans on the camera. A sensor that is stuck *without* anyone
knowing keeps its ``*_ok`` at 1 and feeds a wrong value; the bench measures both. The app tells a
stuck sensor from its history (``kit.ml.stuck``) and passes ``distance_ok``/``pir_ok`` accordingly.

    >>> from kit.ml.sensors import vector, SENSORS
    >>> v = vector(distance_m=1.0, pir=True, light=0.8, road_temp_c=14.0)
    >>> [round(float(x), 2) for x in v]
    [0.5, 1.0, 0.8, 0.2, 1.0, 1.0]
    >>> vector_from_board(board)                                   # doctest: +SKIP

``SensorNoise`` says how the real parts err (an HC-SR04 misses an echo now and then, a PIR misses a
person standing still and fires for passers-by); datasets apply it to the world's exact readings, so
a model does not learn to trust a perfect sensor that no kit has. Only numpy is needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

SENSORS = ("distance", "pir", "light", "road_temp", "distance_ok", "pir_ok")
"""Names of the entries of the sensor vector, in order."""

DISTANCE_MAX_M = 2.0  # the board's DistanceSensor max_distance (kit.board.DISTANCE_MAX_M)
STUCK = ("distance", "pir")
"""Sensors the bench and the training data can make stuck or failed."""


def vector(
    *,
    distance_m: float,
    pir: bool | float,
    light: float,
    road_temp_c: float,
    distance_ok: bool = True,
    pir_ok: bool = True,
) -> np.ndarray:
    """One sensor vector (float32, ``len(SENSORS)``) from readings in their own units."""
    values = (distance_m, light, road_temp_c)
    if not all(np.isfinite(float(v)) for v in values):
        raise ValueError(
            f"sensor readings must be finite numbers, got distance_m={distance_m!r}, light={light!r}, "
            f"road_temp_c={road_temp_c!r}; mark a failed sensor with distance_ok/pir_ok=False"
        )
    d = min(max(float(distance_m), 0.0), DISTANCE_MAX_M) / DISTANCE_MAX_M
    out = np.array(
        [
            d if distance_ok else 0.0,
            float(bool(pir)) if pir_ok else 0.0,
            min(max(float(light), 0.0), 1.0),
            (float(road_temp_c) - 10.0) / 20.0,
            float(bool(distance_ok)),
            float(bool(pir_ok)),
        ],
        dtype=np.float32,
    )
    return out


def _read(get: Any) -> Any:
    # gpiozero averages a smoothed sensor's samples by iterating a deque its sampling thread appends to; a read
    # that meets an append raises RuntimeError ("deque mutated during iteration"): read again
    for attempt in range(5):
        try:
            return get()
        except RuntimeError:
            if attempt == 4:
                raise
    return None  # unreachable


def vector_from_board(board: Any, *, distance_ok: bool = True, pir_ok: bool = True) -> np.ndarray:
    """The sensor vector of a ``kit.Board`` now: distance sensor, PIR, light sensor, road temperature."""
    return vector(
        distance_m=_read(lambda: board.distance.distance),
        pir=_read(lambda: board.pir.motion_detected),
        light=_read(lambda: board.light_sensor.value),
        road_temp_c=_read(lambda: board.road_temperature_c),
        distance_ok=distance_ok,
        pir_ok=pir_ok,
    )


def queue_class_from_distance(distance_m: float) -> int:
    """The queue class (0 empty, 1 short, 2 long) the distance to the queue's tail implies.

    Thresholds half a car from the class boundaries of ``kit.sim.world`` (the model-scale lane), as lab 02's
    queue detector and ``kit.ml.fusion``'s step features read it. No echo (the sensor's maximum) reads as empty.

        >>> queue_class_from_distance(1.6), queue_class_from_distance(1.2), queue_class_from_distance(0.6)
        (0, 1, 2)
    """
    from kit.ml.data import LONG_QUEUE
    from kit.sim.world import CAR_SPACING_M, LANE_M

    if distance_m >= LANE_M - 0.5 * CAR_SPACING_M:
        return 0
    if distance_m > LANE_M - (LONG_QUEUE - 0.5) * CAR_SPACING_M:
        return 1
    return 2


@dataclass(frozen=True)
class SensorNoise:
    """How the kit's sensors err, per reading. ``SensorNoise.exact()`` reads the world as it is.

    ``pir_miss``: someone waits but stands still (no motion for the PIR); ``pir_false``: nobody waits
    but a passer-by or someone crossing sets it off; ``distance_dropout``: no echo comes back (the
    HC-SR04 then reads its maximum); the rest are Gaussian noise in the readings' units.
    """

    distance_noise_m: float = 0.01
    distance_dropout: float = 0.03
    pir_miss: float = 0.10
    pir_false: float = 0.06
    light_noise: float = 0.02
    temp_noise_c: float = 0.3

    @classmethod
    def exact(cls) -> SensorNoise:
        return cls(0.0, 0.0, 0.0, 0.0, 0.0, 0.0)

    def apply(
        self,
        rng: np.random.Generator,
        *,
        distance_m: np.ndarray,
        waiting: np.ndarray,
        light: np.ndarray,
        road_temp_c: np.ndarray,
    ) -> dict[str, np.ndarray]:
        """Noisy readings (arrays) from the world's exact ones (arrays of one length)."""
        n = len(distance_m)
        d = np.asarray(distance_m, float) + rng.normal(0, self.distance_noise_m, n)
        d = np.where(rng.random(n) < self.distance_dropout, DISTANCE_MAX_M, d)
        someone = np.asarray(waiting) > 0
        draw = rng.random(n)
        pir = np.where(someone, draw >= self.pir_miss, draw < self.pir_false)
        return {
            "distance_m": np.clip(d, 0.0, DISTANCE_MAX_M),
            "pir": pir,
            "light": np.clip(np.asarray(light, float) + rng.normal(0, self.light_noise, n), 0.0, 1.0),
            "road_temp_c": np.asarray(road_temp_c, float) + rng.normal(0, self.temp_noise_c, n),
        }


def vectors(
    readings: dict[str, np.ndarray], *, distance_ok: np.ndarray | None = None, pir_ok: np.ndarray | None = None
) -> np.ndarray:
    """Sensor vectors (n, ``len(SENSORS)``) from arrays of readings (as ``SensorNoise.apply`` returns)."""
    n = len(readings["distance_m"])
    d_ok = np.ones(n, bool) if distance_ok is None else np.asarray(distance_ok, bool)
    p_ok = np.ones(n, bool) if pir_ok is None else np.asarray(pir_ok, bool)
    out = np.empty((n, len(SENSORS)), dtype=np.float32)
    out[:, 0] = np.where(d_ok, np.clip(readings["distance_m"], 0, DISTANCE_MAX_M) / DISTANCE_MAX_M, 0.0)
    out[:, 1] = np.where(p_ok, np.asarray(readings["pir"], float), 0.0)
    out[:, 2] = np.clip(readings["light"], 0.0, 1.0)
    out[:, 3] = (np.asarray(readings["road_temp_c"], float) - 10.0) / 20.0
    out[:, 4] = d_ok
    out[:, 5] = p_ok
    return out


def stick(v: np.ndarray, sensor: str, value: float, *, known: bool = False) -> np.ndarray:
    """Copies of sensor vectors with one sensor stuck at `value` (scaled 0..1), unnoticed or `known` (masked)."""
    if sensor not in STUCK:
        raise ValueError(f"only {STUCK} can be stuck here, got {sensor!r}")
    out = np.array(v, dtype=np.float32, copy=True)
    i = SENSORS.index(sensor)
    ok = SENSORS.index(f"{sensor}_ok")
    out[..., i] = 0.0 if known else value
    out[..., ok] = 0.0 if known else 1.0
    return out

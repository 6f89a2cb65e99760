"""Seeded datasets of camera frames with their labels: queue-length class and pedestrian waiting.

Scenes are drawn the way the simulated world produces them (queues building on red and
emptying on green, pedestrians gathering at the kerb, the light of the hour, leaves of the
season, road works) and rendered by ``kit.sim.camera``. The labels come from the scene, so they
are exact. Classes are drawn in equal shares so that a small model learns every class.

    >>> from kit.ml.data import make_dataset, QUEUE_CLASSES
    >>> data = make_dataset(200, seed=1)
    >>> data.x.shape, data.x.dtype.name, QUEUE_CLASSES[data.queue[0]] in QUEUE_CLASSES
    ((200, 64, 64), 'uint8', True)

Held-out sets use another seed; ``PRESETS`` names the conditions the course uses:

    >>> night = make_dataset(100, seed=7, conditions="night")
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kit.sim.camera import Scene, render

QUEUE_CLASSES = ("empty", "short", "long")
"""Queue-length classes: 0 cars, 1 to 3 cars, 4 or more cars."""

LONG_QUEUE = 4  # cars from which a queue is "long"

# Conditions: a range (lo, hi) is drawn uniformly per frame; road_works is a probability (or a bool).
DEFAULT_CONDITIONS: dict[str, Any] = {
    "daylight": (0.5, 1.0),
    "leaves": (0.0, 0.0),
    "road_works": 0.0,
    "noise": (0.0, 0.03),
    "blur": (0.0, 0.8),
}

#: conditions a dict may add; left out of the resolved conditions when not given (older datasets stay the same):
#: ``diverted`` is the probability that the works close the lane and the queue waits in the other one behind a
#: temporary stop line (kit.sim.camera.Scene.diverted), drawn from a stream of its own
OPTIONAL_CONDITIONS = ("diverted",)

PRESETS: dict[str, dict[str, Any]] = {
    "train": dict(DEFAULT_CONDITIONS),
    "day": {"daylight": (0.6, 1.0)},  # the held-out set the floors are measured on
    "dusk": {"daylight": (0.25, 0.5)},
    "night": {"daylight": (0.0, 0.15)},
    "leaves": {"daylight": (0.6, 1.0), "leaves": (0.25, 0.6)},
    "road_works": {"daylight": (0.6, 1.0), "road_works": 1.0},
    "all": {"daylight": (0.0, 1.0), "leaves": (0.0, 0.5), "road_works": 0.3},
}


def queue_class(n: int) -> int:
    """The class index of a queue of `n` cars: 0 empty, 1 short (1-3), 2 long (4 or more)."""
    if n < 0:
        raise ValueError(f"a queue has 0 or more cars, got {n}")
    return 0 if n == 0 else (1 if n < LONG_QUEUE else 2)


def resolve_conditions(conditions: dict[str, Any] | str | None) -> dict[str, Any]:
    """Full conditions from None (training defaults), a preset name, or a partial dict (checked)."""
    if conditions is None:
        return dict(DEFAULT_CONDITIONS)
    if isinstance(conditions, str):
        if conditions not in PRESETS:
            raise ValueError(f"unknown conditions preset {conditions!r}; choose one of {sorted(PRESETS)}")
        conditions = PRESETS[conditions]
    known = {*DEFAULT_CONDITIONS, *OPTIONAL_CONDITIONS}
    unknown = set(conditions) - known
    if unknown:
        raise ValueError(f"unknown condition(s) {sorted(unknown)}; known: {sorted(known)}")
    out = dict(DEFAULT_CONDITIONS)
    for name, value in conditions.items():
        if name in ("road_works", "diverted"):
            p = float(value)
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{name} is a probability (or True/False), got {value!r}")
            out[name] = p
            continue
        if np.isscalar(value):
            value = (value, value)
        lo, hi = (float(v) for v in value)
        top = 1.0 if name in ("daylight", "leaves") else 10.0
        if not 0.0 <= lo <= hi <= top:
            raise ValueError(f"condition {name!r} must be a range 0 <= lo <= hi <= {top:g}, got {value!r}")
        out[name] = (lo, hi)
    return out


@dataclass
class Dataset:
    """Frames and labels: ``x`` uint8 (n, size, size), ``queue`` int class, ``pedestrian`` 0/1, ``meta``.

    ``meta`` holds one array per scene field (queue_length, pedestrians_waiting, daylight, leaves,
    road_works, blur, noise) plus ``seed`` and ``conditions``.

        >>> d = make_dataset(10, seed=0)
        >>> len(d), d.queue.shape, d.pedestrian.shape
        (10, (10,), (10,))
    """

    x: np.ndarray
    queue: np.ndarray
    pedestrian: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)
    sensors: np.ndarray | None = None
    """The sensor vector of each frame (n, len(kit.ml.sensors.SENSORS)), for fused models; None for camera-only sets."""

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def inputs(self) -> np.ndarray:
        """Frames as the model's float32 input: (n, size, size, 1) in 0..1."""
        return (self.x.astype(np.float32) / 255.0)[..., None]

    def subset(self, index: Any) -> Dataset:
        """The frames selected by a mask, slice or index array (meta arrays follow)."""
        meta = {
            k: (v[index] if isinstance(v, np.ndarray) and v.shape[:1] == self.queue.shape else v)
            for k, v in self.meta.items()
        }
        sensors = self.sensors[index] if self.sensors is not None else None
        return Dataset(self.x[index], self.queue[index], self.pedestrian[index], meta, sensors)

    def fused_inputs(self) -> dict[str, np.ndarray]:
        """Inputs of a fused model by name: ``frame`` as ``inputs()`` and ``sensors``."""
        if self.sensors is None:
            raise ValueError("this dataset has no sensor readings; make one with make_fused_dataset(n, seed=...)")
        return {"frame": self.inputs(), "sensors": self.sensors.astype(np.float32)}

    def save(self, path: str | Path) -> Path:
        """Write the dataset to a compressed ``.npz`` file; returns the path."""
        path = Path(path)
        arrays = {f"meta_{k}": v for k, v in self.meta.items() if isinstance(v, np.ndarray)}
        other = {k: v for k, v in self.meta.items() if not isinstance(v, np.ndarray)}
        if self.sensors is not None:
            arrays["sensors"] = self.sensors
        np.savez_compressed(
            path,
            x=self.x,
            queue=self.queue,
            pedestrian=self.pedestrian,
            meta_json=np.array(json.dumps(other)),
            **arrays,
        )
        return path if path.suffix == ".npz" else path.with_name(path.name + ".npz")


def load(path: str | Path) -> Dataset:
    """Read a dataset written by ``Dataset.save``."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no dataset at {path}; make one with kit.ml.data.make_dataset(n, seed=...).save(path)")
    with np.load(path, allow_pickle=False) as f:
        meta: dict[str, Any] = json.loads(str(f["meta_json"])) if "meta_json" in f else {}
        meta.update({k[5:]: f[k] for k in f.files if k.startswith("meta_") and k != "meta_json"})
        return Dataset(f["x"], f["queue"], f["pedestrian"], meta, f["sensors"] if "sensors" in f.files else None)


def save(dataset: Dataset, path: str | Path) -> Path:
    """Write `dataset` to ``path`` (.npz); the same as ``dataset.save(path)``."""
    return dataset.save(path)


def sample_scenes(n: int, *, seed: int, conditions: dict[str, Any] | str | None = None) -> list[Scene]:
    """`n` scenes as the world produces them under `conditions` (class-balanced labels)."""
    c = resolve_conditions(conditions)
    rng = np.random.default_rng(seed)

    def draw(name: str) -> np.ndarray:
        lo, hi = c[name]
        return rng.uniform(lo, hi, n)

    cls = rng.integers(0, 3, n)
    # a queue on red grows by arrivals: short queues are 1-3 cars, long ones tail off like a geometric draw
    length = np.where(
        cls == 0,
        0,
        np.where(cls == 1, rng.integers(1, LONG_QUEUE, n), LONG_QUEUE + np.minimum(rng.geometric(0.3, n) - 1, 10)),
    )
    waiting = rng.random(n) < 0.5
    people = np.where(waiting, 1 + np.minimum(rng.geometric(0.55, n) - 1, 4), 0)
    daylight, leaves, noise, blur = draw("daylight"), draw("leaves"), draw("noise"), draw("blur")
    works = rng.random(n) < c["road_works"]
    diverted = np.random.default_rng([int(seed), 7]).random(n) < c.get("diverted", 0.0)
    return [
        Scene(
            int(length[i]),
            int(people[i]),
            float(daylight[i]),
            float(leaves[i]),
            bool(works[i] or diverted[i]),
            float(blur[i]),
            float(noise[i]),
            diverted=bool(diverted[i]),
        )
        for i in range(n)
    ]


def make_dataset(n: int, *, seed: int, conditions: dict[str, Any] | str | None = None, size: int = 64) -> Dataset:
    """`n` rendered frames with labels; the same arguments always give the same dataset.

    `conditions` is None (training defaults: daylight 0.5-1, no leaves, no road works, light blur
    and noise), a name from ``PRESETS``, or a dict overriding some of ``DEFAULT_CONDITIONS``:
    ``{"daylight": (0, 0.2), "leaves": (0.3, 0.6), "road_works": 0.5, "noise": (0, 0.05), "blur": (0, 1)}``.
    """
    if int(n) != n or n < 0:
        raise ValueError(f"n is the number of frames (a whole number >= 0), got {n!r}")
    n = int(n)
    resolved = resolve_conditions(conditions)
    scenes = sample_scenes(n, seed=seed, conditions=resolved)
    frame_seeds = np.random.SeedSequence([int(seed), 1]).generate_state(max(n, 1))[:n]
    x = np.empty((n, size, size), dtype=np.uint8)
    for i, (scene, s) in enumerate(zip(scenes, frame_seeds)):
        x[i] = render(scene, seed=int(s), size=size)
    meta: dict[str, Any] = {
        "queue_length": np.array([s.queue_length for s in scenes], dtype=np.int16),
        "pedestrians_waiting": np.array([s.pedestrians_waiting for s in scenes], dtype=np.int16),
        "daylight": np.array([s.daylight for s in scenes], dtype=np.float32),
        "leaves": np.array([s.leaves for s in scenes], dtype=np.float32),
        "road_works": np.array([s.road_works for s in scenes], dtype=bool),
        **({"diverted": np.array([s.diverted for s in scenes], dtype=bool)} if "diverted" in resolved else {}),
        "blur": np.array([s.blur for s in scenes], dtype=np.float32),
        "noise": np.array([s.noise for s in scenes], dtype=np.float32),
        "seed": int(seed),
        "size": int(size),
        "conditions": {k: (list(v) if isinstance(v, tuple) else v) for k, v in resolved.items()},
    }
    queue = np.array([queue_class(s.queue_length) for s in scenes], dtype=np.int64)
    pedestrian = (meta["pedestrians_waiting"] > 0).astype(np.int64)
    return Dataset(x, queue, pedestrian, meta)


# -- the whole day: frames with the sensor readings of the same moment ------------------------------

HOURS: dict[str, tuple[tuple[float, float], ...]] = {
    "day": ((9.5, 15.5),),
    "dusk": ((6.6, 8.2), (16.6, 18.2)),  # mid-October at 50 N: sunrise about 7:20, sunset 17:40
    "night": ((18.8, 24.0), (0.0, 6.2)),
    "low_sun": ((7.6, 9.0), (15.6, 17.3)),  # the sun low enough to shine into the lens
    "any": ((0.0, 24.0),),
}
"""Windows of local time (hours) a condition's frames are taken in."""

FUSED_FIELDS = ("leaves", "glare", "fog", "rain", "dirt", "shake")

FUSED_PRESETS: dict[str, dict[str, Any]] = {
    # each weather/lens field is (probability a frame has it, lo, hi); road_works and stuck are probabilities
    "day": {"hours": "day"},
    "dusk": {"hours": "dusk"},
    "night": {"hours": "night"},
    "leaves": {"hours": "any", "leaves": (1.0, 0.25, 0.6)},
    "road_works": {"hours": "any", "road_works": 1.0},
    "stuck": {"hours": "any", "stuck": 1.0, "stuck_known": 0.0},
    "glare": {"hours": "low_sun", "glare": (1.0, 0.4, 0.9)},
    "shake": {"hours": "any", "shake": (1.0, 0.3, 1.0)},
    "fog": {"hours": "any", "fog": (1.0, 0.3, 0.7)},
    "rain": {"hours": "any", "rain": (1.0, 0.3, 1.0)},
    "dirt": {"hours": "any", "dirt": (1.0, 0.4, 0.9)},  # a dirty lens: never in training (drift must find it)
    "normal": {"hours": "any"},  # a normal day, all hours
    "stuck_flagged": {"hours": "any", "stuck": 1.0, "stuck_known": 1.0},
    "train": {
        "hours": "any",
        # leaves up to 3/4 of the lens, often: the model must learn that the distance sensor is then right
        "leaves": (0.45, 0.1, 0.75),
        "road_works": 0.25,
        "glare": (0.15, 0.2, 0.9),
        "fog": (0.1, 0.2, 0.7),
        "rain": (0.1, 0.2, 1.0),
        "shake": (0.2, 0.2, 1.0),
        # a stuck sensor in 30 % of the frames, flagged in 70 % of them (the app flags one from its history,
        # kit.ml.stuck): the camera must then carry that head on its own, and a clear picture must outvote a
        # sensor stuck unnoticed
        "stuck": 0.3,
        "stuck_known": 0.7,
    },
}
"""Conditions of fused datasets; ``train`` mixes them all (except a dirty lens) over the whole day."""


def resolve_fused(conditions: dict[str, Any] | str) -> dict[str, Any]:
    """A full fused condition from a preset name or a dict (unknown keys and bad ranges are refused)."""
    if isinstance(conditions, str):
        if conditions not in FUSED_PRESETS:
            raise ValueError(f"unknown fused conditions preset {conditions!r}; choose one of {sorted(FUSED_PRESETS)}")
        conditions = FUSED_PRESETS[conditions]
    known = {"hours", "road_works", "stuck", "stuck_known", *FUSED_FIELDS}
    unknown = set(conditions) - known
    if unknown:
        raise ValueError(f"unknown fused condition(s) {sorted(unknown)}; known: {sorted(known)}")
    out: dict[str, Any] = {
        "hours": "any",
        "road_works": 0.0,
        "stuck": 0.0,
        "stuck_known": 0.5,
        **{f: (0.0, 0.0, 0.0) for f in FUSED_FIELDS},
    }
    out.update(conditions)
    if out["hours"] not in HOURS:
        raise ValueError(f"hours must be one of {sorted(HOURS)}, got {out['hours']!r}")
    for f in FUSED_FIELDS:
        p, lo, hi = (float(v) for v in out[f])
        if not (0 <= p <= 1 and 0 <= lo <= hi <= 1):
            raise ValueError(f"{f} is (probability, lo, hi) with all in 0..1 and lo <= hi, got {out[f]!r}")
        out[f] = (p, lo, hi)
    for f in ("road_works", "stuck", "stuck_known"):
        if not 0 <= float(out[f]) <= 1:
            raise ValueError(f"{f} is a probability in 0..1, got {out[f]!r}")
    return out


def _draw_hours(rng: np.random.Generator, window: str, n: int) -> np.ndarray:
    spans = HOURS[window]
    widths = np.array([b - a for a, b in spans])
    pick = rng.choice(len(spans), size=n, p=widths / widths.sum())
    lo = np.array([spans[i][0] for i in pick])
    return lo + rng.random(n) * widths[pick]


def make_fused_dataset(
    n: int, *, seed: int, conditions: dict[str, Any] | str = "train", size: int = 64, noise: Any = None
) -> Dataset:
    """`n` frames, each with the sensor vector of the same simulated moment; seeded, class-balanced.

    For each frame a ``kit.sim.world.World`` is set at a moment of a day in October (its seed and time
    drawn from `seed`, the hour from the condition's window, leaves and road works as drawn): the
    world gives the daylight the camera renders, the light sensor's level (dimmed by leaves on it)
    and the road temperature. The queue and the people at the kerb are drawn class-balanced (as
    ``make_dataset`` does); the distance sensor reads the queue's tail with the world's geometry.
    ``noise`` (a ``kit.ml.sensors.SensorNoise``, default: the real parts' errors) spoils the readings;
    a ``stuck`` share of frames has the distance sensor or the PIR stuck at a random value, unnoticed,
    or noticed (masked, ``*_ok`` = 0) in ``stuck_known`` of them.

        >>> d = make_fused_dataset(50, seed=1, conditions="night")
        >>> d.x.shape, d.sensors.shape, float(d.meta["daylight"].max())
        ((50, 64, 64), (50, 6), 0.0)
    """
    from datetime import datetime, timedelta

    from kit.ml import sensors as S
    from kit.sim import world as W
    from kit.sim.camera import Scene

    if int(n) != n or n < 0:
        raise ValueError(f"n is the number of frames (a whole number >= 0), got {n!r}")
    n = int(n)
    c = resolve_fused(conditions)
    noise = S.SensorNoise() if noise is None else noise
    rng = np.random.default_rng([int(seed), 18])
    base = sample_scenes(n, seed=seed, conditions={"daylight": (0.0, 0.0)})  # traffic and blur/noise draws
    hours = _draw_hours(rng, c["hours"], n)
    days = rng.integers(0, 31, n)
    world_seeds = rng.integers(0, 2**31 - 1, n)

    def drawn(field_name: str) -> np.ndarray:
        p, lo, hi = c[field_name]
        on = rng.random(n) < p
        return np.where(on, rng.uniform(lo, hi, n), 0.0)

    weather = {f: drawn(f) for f in FUSED_FIELDS}
    works = rng.random(n) < c["road_works"]
    daylight = np.empty(n, np.float32)
    light = np.empty(n)
    temp = np.empty(n)
    for i in range(n):
        start = datetime(2026, 10, 1) + timedelta(days=int(days[i]), hours=float(hours[i]))
        world = W.World(
            seed=int(world_seeds[i]), start=start, leaves=float(weather["leaves"][i]), road_works=bool(works[i])
        )
        daylight[i], light[i], temp[i] = world.daylight, world.light_level, world.road_temperature_c
    queue_len = np.array([s.queue_length for s in base])
    waiting = np.array([s.pedestrians_waiting for s in base])
    distance = np.maximum(W.MIN_ECHO_M, W.LANE_M - W.CAR_SPACING_M * queue_len)
    readings = noise.apply(rng, distance_m=distance, waiting=waiting, light=light, road_temp_c=temp)
    vec = S.vectors(readings)
    stuck = np.where(rng.random(n) < c["stuck"], rng.integers(1, 3, n), 0)  # 0 none, 1 distance, 2 pir
    known = rng.random(n) < c["stuck_known"]
    stuck_values = np.where(stuck == 2, rng.integers(0, 2, n), rng.uniform(0, 1, n))
    for i in np.nonzero(stuck)[0]:
        vec[i] = S.stick(vec[i], S.STUCK[stuck[i] - 1], float(stuck_values[i]), known=bool(known[i]))
    scenes = [
        Scene(
            s.queue_length,
            s.pedestrians_waiting,
            float(daylight[i]),
            float(weather["leaves"][i]),
            bool(works[i]),
            s.blur,
            s.noise,
            **{f: float(weather[f][i]) for f in FUSED_FIELDS[1:]},
        )
        for i, s in enumerate(base)
    ]
    frame_seeds = np.random.SeedSequence([int(seed), 2]).generate_state(max(n, 1))[:n]
    x = np.empty((n, size, size), dtype=np.uint8)
    for i, (scene, s) in enumerate(zip(scenes, frame_seeds)):
        x[i] = render(scene, seed=int(s), size=size)
    meta: dict[str, Any] = {
        "queue_length": queue_len.astype(np.int16),
        "pedestrians_waiting": waiting.astype(np.int16),
        "hour": hours.astype(np.float32),
        "daylight": daylight,
        "light": light.astype(np.float32),
        "road_works": works,
        "stuck": stuck.astype(np.int8),
        "stuck_known": (known & (stuck > 0)),
        **{f: weather[f].astype(np.float32) for f in FUSED_FIELDS},
        "seed": int(seed),
        "size": int(size),
        "conditions": {k: (list(v) if isinstance(v, tuple) else v) for k, v in c.items()},
    }
    queue = np.array([queue_class(int(q)) for q in queue_len], dtype=np.int64)
    return Dataset(x, queue, (waiting > 0).astype(np.int64), meta, vec)

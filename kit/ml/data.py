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

PRESETS: dict[str, dict[str, Any]] = {
    "train": dict(DEFAULT_CONDITIONS),
    "day": {"daylight": (0.6, 1.0)},                  # the held-out set the floors are measured on
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
    unknown = set(conditions) - set(DEFAULT_CONDITIONS)
    if unknown:
        raise ValueError(f"unknown condition(s) {sorted(unknown)}; known: {sorted(DEFAULT_CONDITIONS)}")
    out = dict(DEFAULT_CONDITIONS)
    for name, value in conditions.items():
        if name == "road_works":
            p = float(value)
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"road_works is a probability (or True/False), got {value!r}")
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

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def inputs(self) -> np.ndarray:
        """Frames as the model's float32 input: (n, size, size, 1) in 0..1."""
        return (self.x.astype(np.float32) / 255.0)[..., None]

    def subset(self, index: Any) -> "Dataset":
        """The frames selected by a mask, slice or index array (meta arrays follow)."""
        meta = {k: (v[index] if isinstance(v, np.ndarray) and v.shape[:1] == self.queue.shape else v)
                for k, v in self.meta.items()}
        return Dataset(self.x[index], self.queue[index], self.pedestrian[index], meta)

    def save(self, path: str | Path) -> Path:
        """Write the dataset to a compressed ``.npz`` file; returns the path."""
        path = Path(path)
        arrays = {f"meta_{k}": v for k, v in self.meta.items() if isinstance(v, np.ndarray)}
        other = {k: v for k, v in self.meta.items() if not isinstance(v, np.ndarray)}
        np.savez_compressed(path, x=self.x, queue=self.queue, pedestrian=self.pedestrian,
                            meta_json=np.array(json.dumps(other)), **arrays)
        return path if path.suffix == ".npz" else path.with_name(path.name + ".npz")


def load(path: str | Path) -> Dataset:
    """Read a dataset written by ``Dataset.save``."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no dataset at {path}; make one with kit.ml.data.make_dataset(n, seed=...).save(path)")
    with np.load(path, allow_pickle=False) as f:
        meta: dict[str, Any] = json.loads(str(f["meta_json"])) if "meta_json" in f else {}
        meta.update({k[5:]: f[k] for k in f.files if k.startswith("meta_") and k != "meta_json"})
        return Dataset(f["x"], f["queue"], f["pedestrian"], meta)


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
    length = np.where(cls == 0, 0, np.where(cls == 1, rng.integers(1, LONG_QUEUE, n),
                                            LONG_QUEUE + np.minimum(rng.geometric(0.3, n) - 1, 10)))
    waiting = rng.random(n) < 0.5
    people = np.where(waiting, 1 + np.minimum(rng.geometric(0.55, n) - 1, 4), 0)
    daylight, leaves, noise, blur = draw("daylight"), draw("leaves"), draw("noise"), draw("blur")
    works = rng.random(n) < c["road_works"]
    return [Scene(int(length[i]), int(people[i]), float(daylight[i]), float(leaves[i]), bool(works[i]),
                  float(blur[i]), float(noise[i])) for i in range(n)]


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
        "blur": np.array([s.blur for s in scenes], dtype=np.float32),
        "noise": np.array([s.noise for s in scenes], dtype=np.float32),
        "seed": int(seed),
        "size": int(size),
        "conditions": {k: (list(v) if isinstance(v, tuple) else v) for k, v in resolved.items()},
    }
    queue = np.array([queue_class(s.queue_length) for s in scenes], dtype=np.int64)
    pedestrian = (meta["pedestrians_waiting"] > 0).astype(np.int64)
    return Dataset(x, queue, pedestrian, meta)

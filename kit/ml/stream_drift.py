"""Drift on a camera stream: compare a window with normal frames of the same light level and time of day.

Consecutive frames of a stream share one light level, so a monitor that compares a window with the
reference of a whole day (``kit.ml.drift``'s PSI and KS rules) fires at every dusk and all night.
This monitor asks a narrower question: *do these frames look like normal frames taken in this light
(as the light sensor reads it) at this time of day?* The reference is a few normal simulated days
(``record_day``), binned by light level and by the hour; each frame of a window is compared with
its own bin, so night is judged against night and noon against noon.

Per frame, three cheap statistics and the layout:

- ``brightness`` (mean grey level) and ``contrast`` (grey-level spread): leaves darken the light
  sensor more than the picture, a dirty lens flattens the picture;
- ``sharpness`` (mean absolute Laplacian over the spread): a smeared lens or shake blurs edges;
- ``layout``: the standardised 8x8 thumbnail (``kit.ml.drift.frame_layouts``): cones and barriers
  of road works, leaves on the lens.

Each statistic's z-score against the bin (mean and spread of the normal frames of that bin) is
averaged over the window's frames and multiplied by sqrt(n) (a standard error, fair here because
frames are compared within their own light and hour); the layout score is the largest such z over
the 64 cells. The alarm::

    drift  <=>  any |window z| of brightness, contrast, sharpness > Z  or  layout z > LAYOUT_Z

with ``Z`` and ``LAYOUT_Z`` in ``THRESHOLDS``; ``bench/drift.py --stream`` prints the false-alarm
share on normal days (seeds the reference never saw) and how many windows each fault needs.

    >>> from kit.ml.stream_drift import StreamReference, StreamMonitor, record_day
    >>> ref = StreamReference.from_days([record_day(seed=s, every_s=300) for s in (1, 2)])   # doctest: +SKIP
    >>> monitor = StreamMonitor(ref)                                                          # doctest: +SKIP
    >>> monitor.check(frames, light=light_readings, hour=hours).drift                       # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kit.ml.drift import frame_layouts

LIGHT_EDGES = (0.0, 0.06, 0.15, 0.3, 0.5, 0.7, 1.01)
"""Light-sensor bins (0..1 as the LDR reads)."""
HOUR_EDGES = (0, 4, 8, 12, 16, 20, 24)
"""Time-of-day bins (local hours)."""
STATS = ("brightness", "contrast", "sharpness")
THRESHOLDS = {"z": 5.0, "layout_z": 7.0}
"""Alarm levels of the window scores (see the module docstring; measured by ``bench/drift.py --stream``)."""
MIN_BIN = 12  # fewer normal frames than this in a (light, hour) bin: use the light bin over all hours


def frame_stats(frames: np.ndarray) -> np.ndarray:
    """(n, 3): brightness, contrast and sharpness of each uint8 frame."""
    f = np.asarray(frames, dtype=np.float32)
    if f.ndim == 2:
        f = f[None]
    if f.ndim != 3:
        raise ValueError(f"frames must be shaped (n, h, w) or (h, w), got {f.shape}")
    n = len(f)
    mean = f.reshape(n, -1).mean(axis=1)
    std = f.reshape(n, -1).std(axis=1)
    lap = np.abs(4 * f[:, 1:-1, 1:-1] - f[:, :-2, 1:-1] - f[:, 2:, 1:-1] - f[:, 1:-1, :-2] - f[:, 1:-1, 2:])
    sharp = lap.reshape(n, -1).mean(axis=1) / (std + 4.0)
    return np.column_stack([mean, std, sharp])


def bins_of(light: np.ndarray, hour: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(light bin, hour bin) indices of readings."""
    li = np.clip(np.searchsorted(LIGHT_EDGES, np.asarray(light, float), side="right") - 1, 0, len(LIGHT_EDGES) - 2)
    hi = np.clip(np.searchsorted(HOUR_EDGES, np.asarray(hour, float) % 24, side="right") - 1, 0, len(HOUR_EDGES) - 2)
    return li, hi


@dataclass
class StreamReference:
    """Mean and spread of the frame statistics and the layout per (light bin, hour bin) of normal days."""

    bins: dict[str, dict[str, list[float]]] = field(default_factory=dict)

    @classmethod
    def from_frames(cls, frames: np.ndarray, light: np.ndarray, hour: np.ndarray) -> StreamReference:
        """Build from normal frames with the light reading and the hour each was taken at."""
        frames = np.asarray(frames)
        if not (len(frames) == len(light) == len(hour)) or len(frames) == 0:
            raise ValueError(
                f"need one light reading and one hour per frame, got {len(frames)} frames, "
                f"{len(light)} light readings, {len(hour)} hours"
            )
        stats, layouts = frame_stats(frames), frame_layouts(frames)
        li, hi = bins_of(light, hour)
        out: dict[str, dict[str, list[float]]] = {}

        def add(key: str, mask: np.ndarray) -> None:
            if mask.sum() < MIN_BIN:
                return
            s, lay = stats[mask], layouts[mask]
            out[key] = {
                "n": [float(mask.sum())],
                "mean": s.mean(axis=0).tolist(),
                "std": s.std(axis=0).tolist(),
                "layout_mean": lay.mean(axis=0).tolist(),
                "layout_std": lay.std(axis=0).tolist(),
            }

        for a in range(len(LIGHT_EDGES) - 1):
            add(f"{a}", li == a)
            for b in range(len(HOUR_EDGES) - 1):
                add(f"{a}/{b}", (li == a) & (hi == b))
        return cls(out)

    @classmethod
    def from_days(cls, days: list[dict[str, np.ndarray]]) -> StreamReference:
        """Build from recorded days (``record_day`` results)."""
        return cls.from_frames(
            np.concatenate([d["frames"] for d in days]),
            np.concatenate([d["light"] for d in days]),
            np.concatenate([d["hour"] for d in days]),
        )

    def bin_for(self, light_bin: int, hour_bin: int) -> dict[str, list[float]]:
        """The normal statistics for a bin: (light, hour), else the light bin over all hours, else the nearest light bin."""
        for key in (f"{light_bin}/{hour_bin}", f"{light_bin}"):
            if key in self.bins:
                return self.bins[key]
        near = sorted((abs(int(k) - light_bin), k) for k in self.bins if "/" not in k)
        if not near:
            raise ValueError("this reference holds no frames; build it from normal days first")
        return self.bins[near[0][1]]

    def to_json(self) -> str:
        rounded = {k: {f: [round(float(x), 5) for x in v] for f, v in b.items()} for k, b in self.bins.items()}
        return json.dumps({"bins": rounded}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> StreamReference:
        return cls(**json.loads(text))

    @classmethod
    def load(cls, path: Any) -> StreamReference:
        """A reference saved with ``save`` (the fused model ships one: ``kit/models/fusion/stream_reference.json``)."""
        from pathlib import Path

        p = Path(path)
        if not p.exists():
            raise FileNotFoundError(
                f"no stream reference at {p}; make one with `python bench/drift.py --stream --save-reference PATH`"
            )
        return cls.from_json(p.read_text())

    def save(self, path: Any) -> Any:
        from pathlib import Path

        Path(path).write_text(self.to_json() + "\n")
        return path


@dataclass
class StreamReport:
    """Window scores and the reasons the alarm fired (empty: normal)."""

    n: int
    z: dict[str, float]
    layout_z: float
    reasons: list[str] = field(default_factory=list)

    @property
    def drift(self) -> bool:
        return bool(self.reasons)

    def __str__(self) -> str:
        zs = ", ".join(f"{k} z {v:+.1f}" for k, v in self.z.items())
        return f"{self.n} frames: {zs}, layout z {self.layout_z:.1f} -> " + (
            "DRIFT: " + "; ".join(self.reasons) if self.reasons else "normal"
        )


class StreamMonitor:
    """Check windows of a camera stream against a :class:`StreamReference` (same light, same hour).

    >>> report = StreamMonitor(reference).check(frames, light=readings, hour=hours)   # doctest: +SKIP
    >>> report.drift, report.reasons                                                  # doctest: +SKIP
    """

    def __init__(
        self, reference: StreamReference, *, z: float = THRESHOLDS["z"], layout_z: float = THRESHOLDS["layout_z"]
    ) -> None:
        self.reference = reference
        self.z_threshold = float(z)
        self.layout_z_threshold = float(layout_z)

    def scores(self, frames: np.ndarray, light: Any, hour: Any) -> tuple[dict[str, float], float]:
        frames = np.asarray(frames)
        n = len(frames)
        light = np.broadcast_to(np.asarray(light, float), (n,))
        hour = np.broadcast_to(np.asarray(hour, float), (n,))
        stats, layouts = frame_stats(frames), frame_layouts(frames)
        li, hi = bins_of(light, hour)
        zs = np.empty_like(stats)
        lz = np.empty_like(layouts)
        for i in range(n):
            b = self.reference.bin_for(int(li[i]), int(hi[i]))
            zs[i] = (stats[i] - np.asarray(b["mean"])) / np.maximum(np.asarray(b["std"]), 1e-3)
            lz[i] = (layouts[i] - np.asarray(b["layout_mean"])) / np.maximum(np.asarray(b["layout_std"]), 1e-3)
        root = math.sqrt(n)
        z = {name: float(zs[:, k].mean() * root) for k, name in enumerate(STATS)}
        return z, float(np.abs(lz.mean(axis=0) * root).max())

    def check(self, frames: np.ndarray, *, light: Any, hour: Any) -> StreamReport:
        """Scores and verdict of a window: uint8 frames (n, h, w), the light reading(s) and hour(s) they were taken at."""
        frames = np.asarray(frames)
        if frames.ndim != 3 or len(frames) == 0:
            raise ValueError(f"check() needs a window of frames shaped (n, h, w), got {frames.shape}")
        z, layout = self.scores(frames, light, hour)
        reasons = [f"{k} z {v:+.1f} beyond ±{self.z_threshold:g}" for k, v in z.items() if abs(v) > self.z_threshold]
        if layout > self.layout_z_threshold:
            reasons.append(f"layout z {layout:.1f} > {self.layout_z_threshold:g}")
        return StreamReport(len(frames), z, layout, reasons)


def record_day(
    *,
    seed: int,
    every_s: float = 60.0,
    hours: float = 24.0,
    start: str = "2026-10-15T00:00:00",
    leaves: float = 0.0,
    road_works: bool = False,
    dirt: float = 0.0,
    fault_at_h: float | None = None,
    size: int = 64,
    cycle_s: tuple[float, float] = (40.0, 30.0),
) -> dict[str, np.ndarray]:
    """A simulated stretch of a day as the kit sees it: frames, light readings and hours, every `every_s`.

    The world runs a fixed-time plan (green, then red for `cycle_s`); the camera is a
    ``kit.sim.camera.SimCamera`` on it. Leaves, road works or a dirty lens start at `fault_at_h`
    hours after `start` (from the start when None). Returns arrays ``frames``, ``light``, ``hour``,
    ``fault`` (True once the fault is on).
    """
    from kit.sim.camera import SimCamera
    from kit.sim.world import World

    world = World(seed=seed, start=start)
    camera = SimCamera(world, seed=seed, size=size)
    n = int(hours * 3600 // every_s)
    frames = np.empty((n, size, size), np.uint8)
    light, hour, fault = np.empty(n), np.empty(n), np.zeros(n, bool)
    green_s, red_s = cycle_s
    t_cycle = 0.0
    for i in range(n):
        on = fault_at_h is None or world.elapsed >= fault_at_h * 3600
        if on:
            world.leaf_cover = leaves
            world.road_works = road_works
            camera.dirt = dirt
        fault[i] = on and (leaves > 0 or road_works or dirt > 0)
        frames[i] = camera.capture()
        light[i] = world.light_level
        now = world.now
        hour[i] = now.hour + now.minute / 60 + now.second / 3600
        # advance to the next frame through the fixed-time plan
        left = every_s
        while left > 1e-9:
            phase = t_cycle % (green_s + red_s)
            green = phase < green_s
            step = min(left, (green_s - phase) if green else (green_s + red_s - phase))
            world.set_lights(car="green" if green else "red", ped="red" if green else "green")
            world.advance(step)
            t_cycle += step
            left -= step
    return {"frames": frames, "light": light, "hour": hour, "fault": fault}


def windows(day: dict[str, np.ndarray], size: int) -> list[slice]:
    """Consecutive, non-overlapping windows of `size` frames over a recorded day."""
    n = len(day["frames"])
    return [slice(i, i + size) for i in range(0, n - size + 1, size)]


FAULTS = {"leaves": {"leaves": 0.4}, "dirty lens": {"dirt": 0.6}, "road works": {"road_works": True}}
"""The faults the stream bench starts mid-morning on a day of another seed."""


def measure(
    *,
    reference_seeds: tuple[int, ...] = (1, 2, 3, 4),
    normal_seeds: tuple[int, ...] = (101, 102, 103),
    fault_seed: int = 201,
    every_s: float = 60.0,
    window: int = 16,
    fault_at_h: float = 10.0,
    reference_every_s: float = 120.0,
) -> dict[str, Any]:
    """False-alarm share on normal days and windows-to-detection of each fault (what ``bench/drift.py --stream`` prints).

    Reference: normal days of `reference_seeds`, a frame every `reference_every_s`. Normal days of
    `normal_seeds` (never in the reference) are cut into windows of `window` frames, one every
    `every_s`; each fault starts at `fault_at_h` on a day of `fault_seed` and is counted in windows
    from its start to the first alarm.
    """
    reference = StreamReference.from_days([record_day(seed=s, every_s=reference_every_s) for s in reference_seeds])
    monitor = StreamMonitor(reference)
    alarms = total = 0
    for seed in normal_seeds:
        day = record_day(seed=seed, every_s=every_s)
        for w in windows(day, window):
            alarms += monitor.check(day["frames"][w], light=day["light"][w], hour=day["hour"][w]).drift
            total += 1
    faults = {}
    for name, fault in FAULTS.items():
        day = record_day(seed=fault_seed, every_s=every_s, start="2026-10-15T00:00:00", fault_at_h=fault_at_h, **fault)
        flags = [
            (
                bool(day["fault"][w].all()),
                monitor.check(day["frames"][w], light=day["light"][w], hour=day["hour"][w]).drift,
            )
            for w in windows(day, window)
        ]
        during = [d for on, d in flags if on]
        first = next((k for k, d in enumerate(during) if d), None)
        faults[name] = {
            "windows_to_alarm": None if first is None else first + 1,
            "alarm_share": float(np.mean(during)) if during else 0.0,
            "windows": len(during),
        }
    return {
        "reference": reference,
        "false_alarm_share": alarms / max(total, 1),
        "false_alarms": alarms,
        "normal_windows": total,
        "window_frames": window,
        "window_minutes": window * every_s / 60,
        "faults": faults,
        "thresholds": dict(THRESHOLDS),
    }

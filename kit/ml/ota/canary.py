"""The canary: a candidate model runs as a shadow beside the current one on the same live frames.

Nothing the candidate says reaches the lights. Per frame the canary keeps both models' queue
probabilities, their latency and, when the sensors give one, the queue class the ultrasonic sensor
implies. After ``policy.frames`` frames it gives a :class:`Verdict`:

* **confidence**: the candidate's mean top probability may not fall more than ``max_confidence_drop``
  below the current model's (a model that is unsure of the scene is worse at it);
* **sensor consistency**: where the sensor gives a queue class, the candidate must agree with it at
  least as often as the current model, less ``max_sensor_drop``;
* **agreement** with the current model must be at least ``min_agreement`` *unless* the candidate agrees
  with the sensor more often (a retrained model is meant to disagree where the old one is wrong);
* **latency**: its p50 may be at most ``max_latency_ratio`` times the current model's (gaps under
  ``min_latency_gap_ms`` are noise and never refuse a model).

    >>> import numpy as np
    >>> canary = Canary(CanaryPolicy(frames=2))
    >>> p = np.array([0.9, 0.05, 0.05])
    >>> canary.add(p, 1.0, p, 1.1); canary.add(p, 1.0, p, 1.2)
    >>> v = canary.verdict(); v.promote, v.reason
    (True, 'agreement 1.00, confidence 0.90 vs 0.90, latency p50 1.15 ms vs 1.00 ms')
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class CanaryPolicy:
    """How long a candidate is watched and what it must do to replace the current model."""

    frames: int = 32
    min_agreement: float = 0.6
    max_confidence_drop: float = 0.10
    max_sensor_drop: float = 0.05
    max_latency_ratio: float = 2.0
    #: a slower p50 counts only past this gap too: sub-millisecond differences are scheduling noise on a busy
    #: machine, not a model that would miss its frame budget
    min_latency_gap_ms: float = 1.0
    #: after a swap: frames of probation in which a drift alarm or a confidence drop rolls the model back
    probation_frames: int = 32

    def __post_init__(self) -> None:
        if self.frames < 1 or self.probation_frames < 0:
            raise ValueError(f"need frames >= 1 and probation_frames >= 0, got {self.frames}, {self.probation_frames}")


@dataclass
class Verdict:
    """The canary's decision and the figures behind it."""

    promote: bool
    reason: str
    figures: dict[str, float] = field(default_factory=dict)


def _p50(values: list[float]) -> float:
    return float(np.median(values)) if values else 0.0


class Canary:
    """Collects side-by-side results of the current and the candidate model (see the module docstring)."""

    def __init__(self, policy: CanaryPolicy | None = None) -> None:
        self.policy = policy or CanaryPolicy()
        self.current: list[np.ndarray] = []
        self.candidate: list[np.ndarray] = []
        self.current_ms: list[float] = []
        self.candidate_ms: list[float] = []
        self.sensor: list[int | None] = []

    def __len__(self) -> int:
        return len(self.candidate)

    @property
    def done(self) -> bool:
        return len(self) >= self.policy.frames

    def add(
        self, current: Any, current_ms: float, candidate: Any, candidate_ms: float, sensor_class: int | None = None
    ) -> None:
        """One frame: both models' queue probabilities (3 numbers each) and latencies (ms)."""
        self.current.append(np.asarray(current, dtype=np.float64).reshape(-1))
        self.candidate.append(np.asarray(candidate, dtype=np.float64).reshape(-1))
        self.current_ms.append(float(current_ms))
        self.candidate_ms.append(float(candidate_ms))
        self.sensor.append(None if sensor_class is None else int(sensor_class))

    def figures(self) -> dict[str, float]:
        cur, cand = np.stack(self.current), np.stack(self.candidate)
        a, b = cur.argmax(axis=1), cand.argmax(axis=1)
        out = {
            "frames": float(len(self)),
            "agreement": float((a == b).mean()),
            "confidence_current": float(cur.max(axis=1).mean()),
            "confidence_candidate": float(cand.max(axis=1).mean()),
            "p50_ms_current": _p50(self.current_ms),
            "p50_ms_candidate": _p50(self.candidate_ms),
            "finite": float(np.isfinite(cand).all()),
        }
        known = np.array([s is not None for s in self.sensor])
        if known.any():
            truth = np.array([s for s in self.sensor if s is not None])
            out["sensor_agreement_current"] = float((a[known] == truth).mean())
            out["sensor_agreement_candidate"] = float((b[known] == truth).mean())
        return out

    def verdict(self) -> Verdict:
        """Promote or reject, with the reason in one line."""
        if not len(self):
            return Verdict(False, "no frames seen")
        f, p = self.figures(), self.policy
        summary = (
            f"agreement {f['agreement']:.2f}, confidence {f['confidence_candidate']:.2f} vs "
            f"{f['confidence_current']:.2f}, latency p50 {f['p50_ms_candidate']:.2f} ms vs {f['p50_ms_current']:.2f} ms"
        )
        if "sensor_agreement_candidate" in f:
            summary += (
                f", agrees with the sensor {f['sensor_agreement_candidate']:.2f} vs {f['sensor_agreement_current']:.2f}"
            )
        if not f["finite"]:
            return Verdict(False, "outputs NaN or infinite values; " + summary, f)
        if f["confidence_candidate"] < f["confidence_current"] - p.max_confidence_drop:
            return Verdict(False, "less confident than the current model; " + summary, f)
        sensor_better = False
        if "sensor_agreement_candidate" in f:
            if f["sensor_agreement_candidate"] < f["sensor_agreement_current"] - p.max_sensor_drop:
                return Verdict(False, "agrees with the sensor less often than the current model; " + summary, f)
            sensor_better = f["sensor_agreement_candidate"] > f["sensor_agreement_current"]
        if f["agreement"] < p.min_agreement and not sensor_better:
            return Verdict(
                False,
                f"disagrees with the current model on {1 - f['agreement']:.0%} of frames and "
                "the sensor does not back it; " + summary,
                f,
            )
        slower = f["p50_ms_candidate"] - f["p50_ms_current"] > p.min_latency_gap_ms
        if f["p50_ms_current"] > 0 and slower and f["p50_ms_candidate"] > p.max_latency_ratio * f["p50_ms_current"]:
            return Verdict(False, f"slower than {p.max_latency_ratio:g}x the current model; " + summary, f)
        return Verdict(True, summary, f)

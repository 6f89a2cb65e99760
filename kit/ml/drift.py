"""Drift monitors: notice on the device that the camera no longer sees what the model was trained on.

Two kinds of evidence, both cheap enough for a Pi:

* **input statistics** — the pixel-intensity histogram of a window of recent frames compared to
  the training reference with the population stability index (PSI); the per-frame mean
  intensity compared with a two-sample Kolmogorov–Smirnov test; and the scene *layout*: the
  window's mean 8×8 thumbnail (each frame standardised, so light does not count) against the
  reference's, as the largest z-score over the 64 cells (cones and barriers move it, dusk does not);
* **output confidence** — the mean top-class probability of the model over the window against
  its value on the reference frames (a model out of its depth becomes unsure).

The alarm (documented thresholds, measured by ``bench/drift.py``)::

    drift  <=>  PSI > 0.25  or  KS p < 1e-6  or  layout z > 8  or  mean confidence falls by > 0.10

PSI > 0.25 is the customary "major shift" level of credit-scoring practice (0.1–0.25 "some shift").
A KS test over 64 frames against thousands of reference frames is sensitive; 1e-6 keeps normal
days quiet while night and leaves give p-values far below it. Under no drift the layout score is
the largest of 64 roughly normal z-scores (median 2.4 over 100 normal windows in ``bench/drift.py``,
against 17 for leaves and 19 for road works); 8 leaves a wide margin on both sides.
Road works leave the light alone, so they show in the layout and the confidence rules.

Predictions are logged in the kit's SQLite store (table ``ml_predictions``, see
:class:`PredictionLog`): one row per frame with a 16-bin intensity histogram and the
standardised 8×8 layout, never the frame.

    >>> import numpy as np
    >>> from kit.ml.drift import DriftMonitor, Reference
    >>> rng = np.random.default_rng(0)
    >>> day = rng.integers(90, 200, size=(200, 32, 32), dtype=np.uint8)
    >>> monitor = DriftMonitor(Reference.from_frames(day))
    >>> monitor.check(rng.integers(90, 200, size=(64, 32, 32), dtype=np.uint8)).drift
    False
    >>> monitor.check(rng.integers(0, 60, size=(64, 32, 32), dtype=np.uint8)).drift   # night
    True
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "BINS",
    "PSI_THRESHOLD",
    "KS_P_THRESHOLD",
    "LAYOUT_Z_THRESHOLD",
    "CONFIDENCE_DROP",
    "frame_layouts",
    "intensity_histogram",
    "psi",
    "ks_2samp",
    "Reference",
    "DriftReport",
    "DriftMonitor",
    "PredictionLog",
]

BINS = 16
PSI_THRESHOLD = 0.25
KS_P_THRESHOLD = 1e-6
LAYOUT_Z_THRESHOLD = 8.0
CONFIDENCE_DROP = 0.10
LAYOUT = 8  # cells per side of the layout thumbnail


def intensity_histogram(frames: np.ndarray, bins: int = BINS) -> np.ndarray:
    """Fraction of pixels in each of ``bins`` equal intensity bins (0..255), over all frames given."""
    frames = np.asarray(frames)
    if frames.dtype != np.uint8:
        raise ValueError(f"intensity_histogram expects uint8 camera frames, got {frames.dtype}")
    counts = np.bincount((frames.ravel().astype(np.int64) * bins) >> 8, minlength=bins)
    return counts / max(int(counts.sum()), 1)


def _frame_histograms(frames: np.ndarray, bins: int = BINS) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim == 2:
        frames = frames[None]
    return np.stack([intensity_histogram(f, bins) for f in frames])


def frame_layouts(frames: np.ndarray, cells: int = LAYOUT) -> np.ndarray:
    """Each frame as a ``cells``×``cells`` thumbnail, standardised on its own, flattened: shape (n, cells²)."""
    f = np.asarray(frames, dtype=np.float32)
    if f.ndim == 2:
        f = f[None]
    n, h, w = f.shape
    if h % cells or w % cells:
        raise ValueError(f"frames must be a multiple of {cells} pixels wide and high, got {h}x{w}")
    t = f.reshape(n, cells, h // cells, cells, w // cells).mean(axis=(2, 4)).reshape(n, cells * cells)
    # +8 grey levels: a flat black frame stays flat instead of turning noise into structure
    return (t - t.mean(axis=1, keepdims=True)) / (t.std(axis=1, keepdims=True) + 8.0)


def layout_z(reference_mean: np.ndarray, reference_std: np.ndarray, layouts: np.ndarray) -> float:
    """Largest |z| over the cells of the window's mean layout against the reference (standard error of a mean)."""
    layouts = np.asarray(layouts, dtype=np.float64)
    se = np.maximum(np.asarray(reference_std, dtype=np.float64), 1e-3) / math.sqrt(len(layouts))
    return float(np.max(np.abs((layouts.mean(axis=0) - np.asarray(reference_mean)) / se)))


def psi(expected: np.ndarray, actual: np.ndarray, *, eps: float = 1e-4) -> float:
    """Population stability index ``sum((a - e) * ln(a / e))`` of two histograms (fractions).

    Empty bins get ``eps`` so that a bin that appears from nowhere counts a lot but not infinitely.
    """
    e = np.clip(np.asarray(expected, dtype=np.float64), eps, None)
    a = np.clip(np.asarray(actual, dtype=np.float64), eps, None)
    if e.shape != a.shape:
        raise ValueError(f"PSI needs histograms with the same bins, got {e.shape} and {a.shape}")
    e, a = e / e.sum(), a / a.sum()
    return float(np.sum((a - e) * np.log(a / e)))


def _kolmogorov_sf(x: float) -> float:
    """Survival function of the Kolmogorov distribution (asymptotic series)."""
    if x < 0.2:
        return 1.0
    return float(min(1.0, max(0.0, 2 * sum((-1) ** (k - 1) * math.exp(-2 * k * k * x * x) for k in range(1, 101)))))


def ks_2samp(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Two-sample Kolmogorov–Smirnov statistic D and its asymptotic p-value (no SciPy on the device)."""
    a = np.sort(np.asarray(a, dtype=np.float64))
    b = np.sort(np.asarray(b, dtype=np.float64))
    if len(a) == 0 or len(b) == 0:
        raise ValueError(f"the KS test needs two non-empty samples, got {len(a)} and {len(b)} values")
    grid = np.concatenate([a, b])
    cdf_a = np.searchsorted(a, grid, side="right") / len(a)
    cdf_b = np.searchsorted(b, grid, side="right") / len(b)
    d = float(np.max(np.abs(cdf_a - cdf_b)))
    n = len(a) * len(b) / (len(a) + len(b))
    # Stephens' small-sample correction of the asymptotic distribution
    p = _kolmogorov_sf((math.sqrt(n) + 0.12 + 0.11 / math.sqrt(n)) * d)
    return d, p


def _top_confidence(confidences: np.ndarray | None) -> np.ndarray | None:
    """Accept top-class confidences (n,) or full class probabilities (n, k)."""
    if confidences is None:
        return None
    c = np.asarray(confidences, dtype=np.float64)
    return c.max(axis=1) if c.ndim == 2 else c


@dataclass
class Reference:
    """What normal looks like: built once from the training frames (and the model's outputs on them).

    >>> import numpy as np
    >>> ref = Reference.from_frames(np.full((10, 16, 16), 120, np.uint8), confidences=np.full(10, 0.9))
    >>> round(ref.confidence, 2), len(ref.histogram)
    (0.9, 16)
    """

    histogram: list[float]
    frame_means: list[float]
    layout_mean: list[float]
    layout_std: list[float]
    confidence: float | None = None

    @classmethod
    def from_frames(cls, frames: np.ndarray, confidences: np.ndarray | None = None) -> Reference:
        frames = np.asarray(frames)
        hist = intensity_histogram(frames)
        means = frames.reshape(len(frames), -1).mean(axis=1)
        conf = _top_confidence(confidences)
        layouts = frame_layouts(frames)
        return cls(
            histogram=[float(v) for v in hist],
            frame_means=[round(float(v), 3) for v in means],
            layout_mean=[float(v) for v in layouts.mean(axis=0)],
            layout_std=[float(v) for v in layouts.std(axis=0)],
            confidence=None if conf is None else float(conf.mean()),
        )

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Reference:
        return cls(**json.loads(text))


@dataclass
class DriftReport:
    """The statistics of one window and the reasons the alarm fired (empty: no drift).

    >>> r = DriftReport(n=64, psi=0.4, ks_d=0.5, ks_p=1e-9, layout_z=3.0, confidence=None,
    ...                 confidence_drop=None, reasons=["PSI 0.40 > 0.25"])
    >>> r.drift
    True
    """

    n: int
    psi: float
    ks_d: float
    ks_p: float
    layout_z: float
    confidence: float | None
    confidence_drop: float | None
    reasons: list[str] = field(default_factory=list)

    @property
    def drift(self) -> bool:
        return bool(self.reasons)

    def __str__(self) -> str:
        conf = (
            "" if self.confidence is None else f", confidence {self.confidence:.2f} (drop {self.confidence_drop:+.2f})"
        )
        verdict = "DRIFT: " + "; ".join(self.reasons) if self.reasons else "no drift"
        return f"{self.n} frames: PSI {self.psi:.3f}, KS D {self.ks_d:.2f} p {self.ks_p:.1e}, layout z {self.layout_z:.1f}{conf} -> {verdict}"


class DriftMonitor:
    """Compare a window of recent frames (or logged predictions) with the training reference.

    >>> import numpy as np
    >>> ref = Reference.from_frames(np.random.default_rng(1).integers(80, 220, (300, 16, 16), dtype=np.uint8))
    >>> dark = np.random.default_rng(2).integers(0, 50, (64, 16, 16), dtype=np.uint8)
    >>> report = DriftMonitor(ref).check(dark)
    >>> report.drift, report.reasons[0].startswith("PSI")
    (True, True)
    """

    def __init__(
        self,
        reference: Reference,
        *,
        psi_threshold: float = PSI_THRESHOLD,
        ks_p_threshold: float = KS_P_THRESHOLD,
        layout_z_threshold: float = LAYOUT_Z_THRESHOLD,
        confidence_drop: float = CONFIDENCE_DROP,
    ) -> None:
        self.reference = reference
        self.psi_threshold = psi_threshold
        self.ks_p_threshold = ks_p_threshold
        self.layout_z_threshold = layout_z_threshold
        self.confidence_drop = confidence_drop

    def check(self, frames: np.ndarray, confidences: np.ndarray | None = None) -> DriftReport:
        """Statistics and verdict for a window of uint8 frames ``(n, h, w)`` (and optional model outputs)."""
        frames = np.asarray(frames)
        if frames.ndim != 3 or len(frames) == 0:
            raise ValueError(f"check() needs a window of frames shaped (n, h, w), got {frames.shape}")
        return self._report(
            histograms=_frame_histograms(frames),
            means=frames.reshape(len(frames), -1).mean(axis=1),
            layouts=frame_layouts(frames),
            confidences=_top_confidence(confidences),
        )

    def check_log(self, log: PredictionLog, *, last: int = 64, model: str | None = None) -> DriftReport:
        """Statistics and verdict for the last ``last`` rows of a :class:`PredictionLog`."""
        rows = log.window(last=last, model=model)
        if not len(rows["means"]):
            raise ValueError(f"the prediction log {log.table!r} has no rows yet; log some frames first")
        return self._report(rows["histograms"], rows["means"], rows["layouts"], rows["confidences"])

    def _report(
        self, histograms: np.ndarray, means: np.ndarray, layouts: np.ndarray, confidences: np.ndarray | None
    ) -> DriftReport:
        window_hist = np.asarray(histograms).mean(axis=0)
        value = psi(np.asarray(self.reference.histogram), window_hist)
        d, p = ks_2samp(means, np.asarray(self.reference.frame_means))
        reasons = []
        if value > self.psi_threshold:
            reasons.append(f"PSI {value:.2f} > {self.psi_threshold}")
        if p < self.ks_p_threshold:
            reasons.append(f"KS p {p:.1e} < {self.ks_p_threshold:g} on mean intensity")
        z = layout_z(np.asarray(self.reference.layout_mean), np.asarray(self.reference.layout_std), layouts)
        if z > self.layout_z_threshold:
            reasons.append(f"layout z {z:.1f} > {self.layout_z_threshold:g}")
        conf = drop = None
        if confidences is not None and len(confidences):
            conf = float(np.mean(confidences))
            if self.reference.confidence is not None:
                drop = self.reference.confidence - conf
                if drop > self.confidence_drop:
                    reasons.append(f"confidence fell by {drop:.2f} > {self.confidence_drop}")
        return DriftReport(len(means), value, d, p, z, conf, drop, reasons)


class PredictionLog:
    """One row per frame the model saw, in the kit's SQLite store: enough for drift checks, no pixels.

    The table ``ml_predictions`` (created on first use, through sqlite-utils):

    ============== ======= ==============================================
    column         type    meaning
    ============== ======= ==============================================
    id             integer row id (insertion order)
    ts             float   Unix time of the frame
    model          text    which model predicted (e.g. ``queue``)
    predicted      integer predicted class
    confidence     float   top-class probability
    mean_intensity float   mean pixel value 0..255
    histogram      text    JSON list of 16 intensity-bin fractions
    layout         text    JSON list of the 64 standardised 8×8 layout cells
    ============== ======= ==============================================

    ``store`` is a ``kit.store.Store`` (the table lives in its file, writes join its transactions),
    a path to a store file (opened as a ``Store``), or a bare ``sqlite_utils.Database``.

        >>> import numpy as np
        >>> from kit.store import Store
        >>> log = PredictionLog(Store(":memory:"))
        >>> log.append(np.zeros((16, 16), np.uint8), np.array([0.8, 0.1, 0.1]))
        >>> log.count()
        1
    """

    table = "ml_predictions"

    def __init__(self, store: Any) -> None:
        import sqlite_utils

        if isinstance(store, (str, os.PathLike)):
            from kit.store import Store

            store = Store(store)
        self.store = store
        if isinstance(store, sqlite_utils.Database):
            self.db = store
        elif isinstance(getattr(store, "db", None), sqlite_utils.Database):
            self.db = store.db
        else:
            raise TypeError(
                f"PredictionLog needs a kit.store.Store, a store path or a sqlite_utils.Database, got {store!r}"
            )
        self.db[self.table].create(
            {
                "id": int,
                "ts": float,
                "model": str,
                "predicted": int,
                "confidence": float,
                "mean_intensity": float,
                "histogram": str,
                "layout": str,
            },
            pk="id",
            if_not_exists=True,
        )
        self.db[self.table].create_index(["model", "id"], if_not_exists=True)

    def _row(self, frame: np.ndarray, probs: np.ndarray, model: str, ts: float | None) -> dict[str, Any]:
        probs = np.asarray(probs, dtype=np.float64).ravel()
        return {
            "ts": time.time() if ts is None else float(ts),
            "model": model,
            "predicted": int(np.argmax(probs)),
            "confidence": float(np.max(probs)),
            "mean_intensity": float(np.asarray(frame).mean()),
            "histogram": json.dumps([round(float(v), 5) for v in intensity_histogram(frame)]),
            "layout": json.dumps([round(float(v), 3) for v in frame_layouts(frame)[0]]),
        }

    def append(self, frame: np.ndarray, probs: np.ndarray, *, model: str = "queue", ts: float | None = None) -> None:
        """Log one frame's statistics and the model's class probabilities for it."""
        with self._transaction():
            self.db[self.table].insert(self._row(frame, probs, model, ts))

    def _transaction(self) -> Any:
        begin = getattr(self.store, "transaction", None)
        return begin() if begin is not None else self.db.conn

    def append_many(
        self, frames: np.ndarray, probs: np.ndarray, *, model: str = "queue", ts: float | None = None
    ) -> None:
        """Log a batch in one transaction."""
        rows = [self._row(f, p, model, ts) for f, p in zip(frames, probs)]
        with self._transaction():
            self.db[self.table].insert_all(rows, batch_size=1000)

    def count(self, model: str | None = None) -> int:
        if model is None:
            return self.db[self.table].count
        return self.db.execute(f"select count(*) from [{self.table}] where model = ?", [model]).fetchone()[0]

    def window(self, *, last: int = 64, model: str | None = None) -> dict[str, np.ndarray]:
        """The last ``last`` rows (oldest first) as arrays: ``histograms``, ``means``, ``layouts``,
        ``confidences``, ``predicted``."""
        where, args = ("where model = ?", [model]) if model is not None else ("", [])
        rows = list(
            self.db.query(
                f"select * from (select * from [{self.table}] {where} order by id desc limit ?) order by id",
                [*args, int(last)],
            )
        )
        return {
            "histograms": np.array([json.loads(r["histogram"]) for r in rows]).reshape(len(rows), BINS),
            "means": np.array([r["mean_intensity"] for r in rows], dtype=np.float64),
            "layouts": np.array([json.loads(r["layout"]) for r in rows]).reshape(len(rows), LAYOUT * LAYOUT),
            "confidences": np.array([r["confidence"] for r in rows], dtype=np.float64),
            "predicted": np.array([r["predicted"] for r in rows], dtype=np.int64),
        }

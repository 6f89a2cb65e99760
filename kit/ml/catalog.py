"""The shipped models, each with its typed card, and one way to measure any of them (``kit model info/bench``).

Three kinds ship in ``kit/models``: one-piece camera models (``NAME.tflite`` + ``NAME.json``), the
two-part camera early exit (``early_exit/``) and the fused camera + sensor early exit (``fusion/``).
``shipped()`` lists their cards, the model the app runs first; ``measure(card)`` runs the right host
on frames of a seed no training used and times it, so every model is benchmarked the same way.

    >>> from kit.ml import DEFAULT_APP_MODEL
    >>> from kit.ml.catalog import shipped, measure
    >>> shipped()[0].name == DEFAULT_APP_MODEL                    # the model the app runs comes first
    True
    >>> row = measure(shipped()[0], n=100, runs=20)                 # doctest: +SKIP
    >>> row.queue_accuracy, row.p50_ms                              # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kit.ml.card import ModelCard, scores, shipped_cards

BENCH_SEED = 40_000
"""Seed of the frames ``kit model bench`` measures on (never used for training any shipped model)."""


def shipped() -> list[ModelCard]:
    """Cards of every shipped model, the app's default first."""
    return [ModelCard.load(name) for name in shipped_cards()]


def kind(card: ModelCard) -> str:
    """``fusion``, ``early_exit``, ``single`` (a camera model) or ``other`` (no camera frame in) from its card."""
    if any(f.startswith("stem_int8") for f in card.files):
        return "fusion"
    if "stem.tflite" in card.files and "rest.tflite" in card.files:
        return "early_exit"
    if card.inputs and "frame" not in card.inputs:
        return "other"
    return "single"


@dataclass(frozen=True)
class Measured:
    """One row of ``kit model bench``."""

    name: str
    kind: str
    size_bytes: int
    frames: str
    queue_accuracy: float | None
    pedestrian_f1: float | None
    p50_ms: float
    p95_ms: float


def _times(call, items, runs: int) -> tuple[float, float]:
    import time

    for item in items[:5]:
        call(item)
    t = []
    for k in range(runs):
        item = items[k % len(items)]
        t0 = time.perf_counter()
        call(item)
        t.append((time.perf_counter() - t0) * 1e3)
    p50, p95 = np.percentile(t, [50, 95])
    return float(p50), float(p95)


def measure(card: ModelCard, *, n: int = 300, runs: int = 100, threads: int = 1, seed: int = BENCH_SEED) -> Measured:
    """Accuracy on `n` fresh frames (whole day for the fused model, the card's conditions otherwise) and latency."""
    from kit.ml.data import make_dataset, make_fused_dataset

    k = kind(card)
    if k == "fusion":
        from kit.ml.fusion import FusedHost

        host = FusedHost.load(card.folder, num_threads=threads)
        data = make_fused_dataset(n, seed=seed, conditions="normal")
        out = host.predict_batch(data.x, data.sensors)
        s = scores(out["queue"], out["pedestrian"], data.queue, data.pedestrian)
        p50, p95 = _times(lambda i: host.predict(data.x[i], data.sensors[i]), list(range(min(n, 50))), runs)
        return Measured(
            card.name, k, host.size_bytes, "whole day, normal", s["queue_accuracy"], s["pedestrian_f1"], p50, p95
        )
    if k == "early_exit":
        from kit.ml.early_exit import EarlyExitHost

        host = EarlyExitHost.load(card.folder, num_threads=threads)
        conditions = card.details.get("conditions") or {"daylight": (0.2, 1.0), "leaves": (0.0, 0.3)}
        data = make_dataset(n, seed=seed, conditions={k2: tuple(v) for k2, v in conditions.items()})
        labels = np.array([host.predict(f).label for f in data.x])
        p50, p95 = _times(host.predict, list(data.x[:50]), runs)
        return Measured(
            card.name,
            k,
            card.size_bytes,
            "daylight 0.2-1, leaves 0-0.3",
            float((labels == data.queue).mean()),
            None,
            p50,
            p95,
        )
    from kit.ml.host import ModelHost

    host = ModelHost(card.path, num_threads=threads)
    if k == "other":  # not a camera model (e.g. the learned signal policy): time it on zeros of its input's shape
        x = np.zeros((1, *host.input.shape[1:]), np.float32)
        p50, p95 = _times(lambda _i: host.run(x), [0], runs)
        return Measured(card.name, k, host.size_bytes, "- (no camera input)", None, None, p50, p95)
    data = make_dataset(n, seed=seed, conditions="day", size=host.frame_shape[0])
    out = host.predict_batches(data.x)
    s = scores(out["queue"], out["pedestrian"], data.queue, data.pedestrian)
    lat = host.latency(data.x[:50], warmup=10, runs=runs)
    return Measured(
        card.name,
        k,
        host.size_bytes,
        "daylight 0.6-1",
        s["queue_accuracy"],
        s["pedestrian_f1"],
        lat["p50_ms"],
        lat["p95_ms"],
    )

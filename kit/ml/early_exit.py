"""Early exit: a cheap head after the first block answers the easy frames; the rest of the network only runs for hard ones.

The model has two heads on the queue task: ``exit`` after a small stem and ``queue`` at the end of
the full network. It is deployed as two ``.tflite`` parts: the *stem* (frame -> exit probabilities
and the stem's feature map) and the *rest* (feature map -> final probabilities). When the exit head
is confident the host returns its answer and never invokes the rest, so the saving is real time,
not a mask. An empty road in daylight is easy; a queue at night, or behind leaves, is not.

Confidence rules (higher = surer, all in 0..1): ``"max"`` is the top probability; ``"entropy"`` is
``1 - H(p) / log(C)``; a :class:`LearnedGate` is fitted on validation frames to predict whether the
exit head is right (so nobody has to pick the rule by hand). A frame exits when its confidence is at
least the threshold. The threshold can be swept (accuracy vs mean latency vs share exited) and
calibrated on a validation set: the lowest threshold whose accuracy stays within ``max_loss`` of the
full model.

    >>> from kit.ml.early_exit import build_early_exit, train_early_exit, EarlyExitHost  # doctest: +SKIP
    >>> model = build_early_exit(64, width=32, seed=0)                 # needs TensorFlow  # doctest: +SKIP
    >>> train_early_exit(model, train_set, epochs=4, seed=0)  # doctest: +SKIP
    >>> host = EarlyExitHost.from_model(model, threshold=0.9)  # doctest: +SKIP
    >>> result = host.predict(frame)  # doctest: +SKIP
    >>> result.label, result.exited, result.confidence  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kit import progress
from kit.ml.partition import Part
from kit.ml.tflite import convert

RULES = ("max", "entropy")


def build_early_exit(size: int = 64, *, width: int = 64, seed: int = 0) -> Any:
    """A queue-class CNN with an early ``exit`` head after the stem and the final ``queue`` head.

    Input ``frame``: (size, size, 1) float32 in 0..1 (as ``kit.ml.data.Dataset.inputs()``).
    The stem is two strided convolutions (a few hundred thousand multiply-adds); the exit head reads
    its feature map pooled to a coarse grid (where along the lane the cars are). The rest is full-width
    convolutions at 1/4 resolution: it holds almost all the compute, which is what an exit can skip.
    """
    import keras

    if int(size) != size or size < 16 or size % 4:
        raise ValueError(f"size must be a multiple of 4 pixels, >= 16, got {size!r}")
    if width < 1:
        raise ValueError(f"width is the number of filters in the rest of the network (>= 1), got {width!r}")
    keras.utils.set_random_seed(int(seed))
    L = keras.layers
    inp = keras.Input((size, size, 1), name="frame")
    x = L.Conv2D(8, 3, strides=2, padding="same", activation="relu", name="stem1")(inp)
    stem = L.Conv2D(16, 3, strides=2, padding="same", activation="relu", name="stem2")(x)
    e = L.MaxPooling2D(2, name="exit_pool")(stem)
    e = L.Flatten(name="exit_flat")(e)
    exit_head = L.Dense(3, activation="softmax", name="exit")(e)
    x = stem
    for i, (filters, stride) in enumerate([(width, 1), (width, 1), (width, 1), (2 * width, 2)], start=1):
        x = L.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False, name=f"rest{i}")(x)
        x = L.BatchNormalization(momentum=0.9, name=f"rest{i}_bn")(x)  # folded into the convolution by the converter
        x = L.ReLU(name=f"rest{i}_relu")(x)
    x = L.MaxPooling2D(2, name="rest_pool")(x)
    x = L.Flatten(name="rest_flat")(x)  # keep where the cars are: queue length is a position along the lane
    queue = L.Dense(3, activation="softmax", name="queue")(x)
    return keras.Model(inp, {"exit": exit_head, "queue": queue}, name="early_exit")


def train_early_exit(
    model: Any,
    dataset: Any,
    *,
    epochs: int = 5,
    seed: int = 0,
    batch_size: int = 32,
    learning_rate: float = 2e-3,
    verbose: int = 0,
) -> Any:
    """Train both heads together (equal weights) on a ``kit.ml.data.Dataset``; returns the Keras history."""
    import keras

    keras.utils.set_random_seed(int(seed))
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss={"exit": "sparse_categorical_crossentropy", "queue": "sparse_categorical_crossentropy"},
    )
    y = {"exit": dataset.queue, "queue": dataset.queue}
    steps = -(-len(dataset.queue) // batch_size)
    bar = progress.keras_callback(epochs=epochs, steps_per_epoch=steps, desc="training the early-exit model")
    return model.fit(
        dataset.inputs(),
        y,
        epochs=epochs,
        batch_size=batch_size,
        shuffle=True,
        verbose=verbose,
        callbacks=[bar] if bar else [],
    )


def _features(p: np.ndarray) -> np.ndarray:
    top2 = np.sort(p, axis=1)[:, -2:]
    h = -(p * np.log(np.clip(p, 1e-12, 1.0))).sum(axis=1) / np.log(p.shape[1])
    return np.column_stack([top2[:, 1], top2[:, 1] - top2[:, 0], 1.0 - h])


class LearnedGate:
    """A learned exit rule: logistic regression from the exit head's probabilities to "the exit answer is right".

    Features: top probability, margin to the second, one minus the normalised entropy. Its output (the
    probability that exiting is right) is used as the confidence, so it is swept and calibrated like the
    other rules.

        >>> gate = LearnedGate.fit(val_exit_probs, val_labels)  # doctest: +SKIP
        >>> threshold = calibrate(val_exit_probs, val_full_probs, val_labels, rule=gate)  # doctest: +SKIP
        >>> host.rule, host.threshold = gate, threshold  # doctest: +SKIP
    """

    def __init__(self, weights: Sequence[float], bias: float) -> None:
        self.weights = np.asarray(weights, dtype=np.float64)
        self.bias = float(bias)

    @classmethod
    def fit(
        cls, exit_probs: np.ndarray, labels: np.ndarray, *, steps: int = 2000, learning_rate: float = 1.0
    ) -> LearnedGate:
        """Fit on a validation set by gradient descent on the log loss (deterministic: starts at zero)."""
        p = np.asarray(exit_probs, dtype=np.float64)
        labels = np.asarray(labels)
        if labels.shape != (len(p),) or len(p) == 0:
            raise ValueError(f"need one label per row of exit_probs, got {labels.shape[0]} labels for {len(p)} rows")
        x = _features(p)
        y = (p.argmax(axis=1) == labels).astype(np.float64)
        w, b = np.zeros(x.shape[1]), 0.0
        for _ in range(steps):
            z = 1.0 / (1.0 + np.exp(-(x @ w + b)))
            w -= learning_rate * x.T @ (z - y) / len(y)
            b -= learning_rate * float(np.mean(z - y))
        return cls(w, b)

    def __call__(self, probs: np.ndarray) -> np.ndarray:
        p = np.asarray(probs, dtype=np.float64)
        return 1.0 / (1.0 + np.exp(-(_features(p if p.ndim == 2 else p[None]) @ self.weights + self.bias)))

    def to_dict(self) -> dict[str, Any]:
        return {"weights": self.weights.tolist(), "bias": self.bias}

    def __repr__(self) -> str:
        return f"LearnedGate(weights={np.round(self.weights, 3).tolist()}, bias={self.bias:.3f})"


def confidence(probs: np.ndarray, rule: str | LearnedGate = "max") -> np.ndarray:
    """Confidence of each row of class probabilities, 0..1 (``"max"``, ``"entropy"`` or a :class:`LearnedGate`)."""
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim == 1:
        p = p[None]
    if isinstance(rule, LearnedGate):
        return rule(p)
    if rule == "max":
        return p.max(axis=1)
    if rule == "entropy":
        h = -(p * np.log(np.clip(p, 1e-12, 1.0))).sum(axis=1)
        return 1.0 - h / np.log(p.shape[1])
    raise ValueError(f"unknown confidence rule {rule!r}; use one of {RULES}")


@dataclass(frozen=True)
class SweepRow:
    threshold: float
    accuracy: float
    exit_share: float
    mean_ms: float


def sweep(
    exit_probs: np.ndarray,
    full_probs: np.ndarray,
    labels: np.ndarray,
    *,
    stem_ms: float,
    rest_ms: float,
    thresholds: Sequence[float] | None = None,
    rule: str | LearnedGate = "max",
) -> list[SweepRow]:
    """Accuracy, share of frames exiting early and mean latency for every threshold.

    ``stem_ms``/``rest_ms`` are measured per-frame times of the two parts; a frame that exits costs
    ``stem_ms``, any other ``stem_ms + rest_ms``.
    """
    conf = confidence(exit_probs, rule)
    early = np.asarray(exit_probs).argmax(axis=1)
    late = np.asarray(full_probs).argmax(axis=1)
    labels = np.asarray(labels)
    if not (len(conf) == len(late) == len(labels)):
        raise ValueError(
            f"exit_probs, full_probs and labels must have one row per frame, got {len(conf)}, {len(late)}, {len(labels)}"
        )
    if thresholds is None:
        thresholds = np.round(np.linspace(0.5, 1.0, 26), 3) if rule == "max" else np.round(np.linspace(0.0, 1.0, 26), 3)
    rows = []
    for t in thresholds:
        exits = conf >= t
        pred = np.where(exits, early, late)
        share = float(exits.mean())
        rows.append(SweepRow(float(t), float((pred == labels).mean()), share, stem_ms + (1.0 - share) * rest_ms))
    return rows


def calibrate(
    exit_probs: np.ndarray,
    full_probs: np.ndarray,
    labels: np.ndarray,
    *,
    max_loss: float = 0.01,
    rule: str | LearnedGate = "max",
    thresholds: Sequence[float] | None = None,
) -> float:
    """The lowest threshold (most exits) whose accuracy is within ``max_loss`` of the full model's.

    Fit it on a validation set, never on the frames you report. Returns ``1.0``-ish (almost never exit)
    when no threshold keeps the accuracy.
    """
    if not 0 <= max_loss < 1:
        raise ValueError(f"max_loss is a fraction of accuracy (0.01 = one point), got {max_loss!r}")
    if thresholds is None:
        conf = confidence(exit_probs, rule)
        thresholds = np.unique(np.concatenate([conf, [1.0 + 1e-9]]))
    full_acc = float((np.asarray(full_probs).argmax(axis=1) == np.asarray(labels)).mean())
    rows = sweep(exit_probs, full_probs, labels, stem_ms=0.0, rest_ms=0.0, thresholds=thresholds, rule=rule)
    ok = [r.threshold for r in rows if r.accuracy >= full_acc - max_loss]
    return float(min(ok)) if ok else float(max(thresholds))


@dataclass(frozen=True)
class ExitResult:
    probs: np.ndarray
    label: int
    exited: bool
    confidence: float
    ms: float


class EarlyExitHost:
    """Runs the stem part on every frame and the rest part only when the exit head is not confident.

    >>> import numpy as np
    >>> from kit.ml import MODELS_DIR
    >>> host = EarlyExitHost.load(MODELS_DIR / "early_exit")  # a folder written by host.save(...)
    >>> frame = np.zeros((64, 64), np.uint8)                  # uint8 camera frame or float 0..1
    >>> r = host.predict(frame)
    >>> r.label in (0, 1, 2), isinstance(r.exited, bool)
    (True, True)
    >>> host.threshold = 0.99                                 # stricter: fewer frames exit
    """

    def __init__(
        self,
        stem: bytes,
        rest: bytes,
        *,
        threshold: float = 0.9,
        rule: str | LearnedGate = "max",
        full: bytes | None = None,
        num_threads: int = 1,
    ) -> None:
        if not isinstance(rule, LearnedGate) and rule not in RULES:
            raise ValueError(f"unknown confidence rule {rule!r}; use one of {RULES} or a LearnedGate")
        self.stem = Part(stem, num_threads=num_threads, name="stem")
        self.rest = Part(rest, num_threads=num_threads, name="rest")
        if self.stem.output_names != ["exit", "features"]:
            raise ValueError(f"the stem part must output 'exit' and 'features', it has {self.stem.output_names}")
        if self.rest.input_shape != tuple(self._features_shape()):
            raise ValueError(
                f"the rest part takes {self.rest.input_shape} but the stem gives {self._features_shape()}: "
                "stem and rest come from different models"
            )
        self.full = Part(full, num_threads=num_threads, name="full") if full is not None else None
        self.threshold = float(threshold)
        self.rule = rule

    def _features_shape(self) -> tuple[int, ...]:
        details = self.stem._runner.get_output_details()["features"]
        return tuple(int(d) for d in details["shape"][1:])

    @classmethod
    def from_model(cls, model: Any, **kwargs: Any) -> EarlyExitHost:
        """Cut a model from :func:`build_early_exit` into its two parts (and the one-piece full model)."""
        stem, rest, full = split_early_exit(model)
        return cls(convert(stem), convert(rest), full=convert(full), **kwargs)

    def save(self, folder: str | os.PathLike) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "stem.tflite").write_bytes(self.stem.content)
        (folder / "rest.tflite").write_bytes(self.rest.content)
        if self.full is not None:
            (folder / "full.tflite").write_bytes(self.full.content)
        rule = (
            {"rule": "learned", "gate": self.rule.to_dict()}
            if isinstance(self.rule, LearnedGate)
            else {"rule": self.rule}
        )
        (folder / "early_exit.json").write_text(json.dumps({"threshold": self.threshold, **rule}))
        return folder

    @classmethod
    def load(cls, folder: str | os.PathLike, **kwargs: Any) -> EarlyExitHost:
        folder = Path(folder)
        for name in ("stem.tflite", "rest.tflite"):
            if not (folder / name).exists():
                raise FileNotFoundError(f"no {name} in {str(folder)!r}: write one with EarlyExitHost.save(folder)")
        settings = json.loads((folder / "early_exit.json").read_text()) if (folder / "early_exit.json").exists() else {}
        if settings.get("rule") == "learned":
            gate = settings.pop("gate")
            settings["rule"] = LearnedGate(gate["weights"], gate["bias"])
        settings.update(kwargs)
        from kit.ml.host import verify_against_card

        parts = {}
        for name in ("stem.tflite", "rest.tflite", "full.tflite"):
            if (folder / name).exists():
                parts[name] = (folder / name).read_bytes()
                verify_against_card(folder / name, parts[name])  # a card.json in the folder: sha256 must match
        return cls(parts["stem.tflite"], parts["rest.tflite"], full=parts.get("full.tflite"), **settings)

    @staticmethod
    def _input(frame: np.ndarray) -> np.ndarray:
        frame = np.asarray(frame)
        return frame.astype(np.float32) / 255.0 if frame.dtype == np.uint8 else frame.astype(np.float32)

    def predict(self, frame: np.ndarray) -> ExitResult:
        """One frame: the exit head's answer when confident enough, else the full network's."""
        t0 = time.perf_counter()
        out = self.stem(self._input(frame))
        probs = out["exit"][0]
        conf = float(confidence(probs, self.rule)[0])
        exited = conf >= self.threshold
        if not exited:
            probs = self.rest(out["features"])["queue"][0]
        return ExitResult(probs, int(np.argmax(probs)), exited, conf, (time.perf_counter() - t0) * 1e3)

    def both_heads(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Exit and final probabilities of every frame (both parts always run): the input of a sweep."""
        exit_p, full_p = [], []
        for frame in frames:
            out = self.stem(self._input(frame))
            exit_p.append(out["exit"][0])
            full_p.append(self.rest(out["features"])["queue"][0])
        return np.array(exit_p), np.array(full_p)

    def part_ms(self, frame: np.ndarray, *, runs: int = 30) -> tuple[float, float]:
        """Median milliseconds of the stem part and of the rest part on one frame."""
        x = self._input(frame)
        features = self.stem(x)["features"]
        return self.stem.time_ms(x, runs=runs), self.rest.time_ms(features, runs=runs)


def split_early_exit(model: Any) -> tuple[Any, Any, Any]:
    """Keras ``(stem, rest, full)`` from a :func:`build_early_exit` model (weights shared).

    stem: ``frame -> {"exit", "features"}``; rest: ``features -> {"queue"}``; full: ``frame -> {"queue"}``.
    """
    import keras

    try:
        features = model.get_layer("stem2").output
        exit_head = model.get_layer("exit").output
        queue = model.get_layer("queue").output
    except ValueError as exc:
        raise ValueError(f"not an early-exit model (build it with build_early_exit): {exc}") from exc
    stem = keras.Model(model.inputs[0], {"exit": exit_head, "features": features}, name="stem")
    rest = keras.Model(features, {"queue": queue}, name="rest")
    full = keras.Model(model.inputs[0], {"queue": queue}, name="full")
    return stem, rest, full


def evaluate(host: EarlyExitHost, frames: np.ndarray, labels: np.ndarray, *, repeats: int = 1) -> dict[str, Any]:
    """Measured on real frames: accuracy, share exited and mean ms of early exit vs the one-piece full model.

    The two are timed frame by frame, interleaved, so a busy machine slows both alike; ``repeats``
    passes over the frames are averaged. ``exited`` says which frames left early.
    """
    if host.full is None:
        raise ValueError("evaluate needs the one-piece full model: build the host with from_model or a full.tflite")
    labels = np.asarray(labels)
    for f in frames[:5]:  # warm up both paths so the first calls' allocations are not counted
        host.predict(f)
        host.full(host._input(f))
    ee_ms, full_ms, results, full_pred = [], [], [], []
    for _ in range(max(1, repeats)):
        results, full_pred = [], []
        for f in frames:
            r = host.predict(f)
            t0 = time.perf_counter()
            p = host.full(host._input(f))["queue"][0]
            full_ms.append((time.perf_counter() - t0) * 1e3)
            ee_ms.append(r.ms)
            results.append(r)
            full_pred.append(int(np.argmax(p)))
    return {
        "accuracy": float(np.mean(np.array([r.label for r in results]) == labels)),
        "full_accuracy": float(np.mean(np.array(full_pred) == labels)),
        "exit_share": float(np.mean([r.exited for r in results])),
        "mean_ms": float(np.mean(ee_ms)),
        "full_mean_ms": float(np.mean(full_ms)),
        "exited": np.array([r.exited for r in results]),
    }

"""Model cards: a JSON file beside each model saying how it was made and how well it does.

    >>> from kit.ml.card import load_card, check_file
    >>> card = load_card("intersection")                 # kit/models/intersection.json
    >>> card["metrics"]["queue_accuracy"] >= 0.9
    True
    >>> check_file(card)                                  # [] when the .tflite is the one the card describes
    []

``evaluate`` measures the metrics a card reports (queue-class accuracy, pedestrian precision,
recall and F1) for any hosted model on a dataset; training and the tests use the same function.
Only numpy is needed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kit.errors import KitError
from kit.ml import MODELS_DIR

FLOORS = {"queue_accuracy": 0.90, "pedestrian_f1": 0.90}
"""Minimum metrics on held-out daylight frames without leaves for a model the kit ships."""


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def card_path(name_or_path: str | Path) -> Path:
    """The card of a shipped model name (``kit/models/NAME.json``), a ``.tflite`` path or a ``.json`` path."""
    p = Path(name_or_path)
    if p.suffix == ".json":
        return p
    if p.suffix == ".tflite":
        return p.with_suffix(".json")
    return MODELS_DIR / f"{p.name}.json"


def load_card(name_or_path: str | Path) -> dict[str, Any]:
    """Read a model card; ``card["_dir"]`` is set to its folder so relative files resolve."""
    path = card_path(name_or_path)
    if not path.exists():
        raise FileNotFoundError(f"no model card at {path}; `kit model train` writes one beside each model")
    card = json.loads(path.read_text())
    card["_dir"] = str(path.parent)
    return card


def write_card(card: dict[str, Any], path: str | Path) -> Path:
    """Write `card` as stable, readable JSON (sorted keys, 2-space indent)."""
    path = Path(path)
    clean = {k: v for k, v in card.items() if not k.startswith("_")}
    path.write_text(json.dumps(clean, indent=2, sort_keys=True) + "\n")
    return path


def model_file(card: dict[str, Any]) -> Path:
    """Path of the model file a loaded card describes."""
    return Path(card.get("_dir", MODELS_DIR)) / card["file"]


def check_file(card: dict[str, Any]) -> list[str]:
    """Problems between a card and its model file (missing, size or sha256 differ); [] when they match."""
    path = model_file(card)
    if not path.exists():
        return [f"{path} is missing"]
    problems = []
    size = path.stat().st_size
    if size != card["size_bytes"]:
        problems.append(f"{path.name} is {size} bytes, the card says {card['size_bytes']}")
    digest = file_sha256(path)
    if digest != card["sha256"]:
        problems.append(f"{path.name} sha256 is {digest[:12]}..., the card says {card['sha256'][:12]}...")
    return problems


def f1_parts(truth: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """Precision, recall and F1 of binary predictions (0 when undefined)."""
    truth, predicted = np.asarray(truth).astype(bool), np.asarray(predicted).astype(bool)
    tp = int((truth & predicted).sum())
    precision = tp / max(int(predicted.sum()), 1)
    recall = tp / max(int(truth.sum()), 1)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def scores(
    queue_probs: np.ndarray,
    pedestrian_probs: np.ndarray,
    queue: np.ndarray,
    pedestrian: np.ndarray,
    threshold: float = 0.5,
) -> dict[str, Any]:
    """Card metrics from model outputs and labels."""
    pred_q = np.asarray(queue_probs).argmax(axis=1)
    pred_p = np.asarray(pedestrian_probs).reshape(-1) >= threshold
    parts = f1_parts(pedestrian, pred_p)
    confusion = np.zeros((3, 3), dtype=int)
    np.add.at(confusion, (np.asarray(queue), pred_q), 1)
    return {
        "n": int(len(pred_q)),
        "queue_accuracy": round(float((pred_q == np.asarray(queue)).mean()), 4),
        "queue_confusion": confusion.tolist(),
        "pedestrian_f1": round(parts["f1"], 4),
        "pedestrian_precision": round(parts["precision"], 4),
        "pedestrian_recall": round(parts["recall"], 4),
    }


def evaluate(host: Any, data: Any, *, batch_size: int = 64) -> dict[str, Any]:
    """Card metrics of a ModelHost (or a model path) on a ``kit.ml.data.Dataset``.

    Rows of ``queue_confusion`` are true classes, columns predicted classes (empty, short, long).
    """
    if isinstance(host, (str, Path)):
        from kit.ml.host import ModelHost

        host = ModelHost(host)
    out = host.predict_batches(data.x, batch_size=batch_size)
    return scores(out["queue"], out["pedestrian"], data.queue, data.pedestrian)


# -- the typed card ---------------------------------------------------------------------------

SCHEMA_VERSION = 2
"""Version of the card layout ``ModelCard`` writes. Version 1 is the untyped JSON of ``kit model train``
before cards were typed; ``ModelCard.from_dict`` still reads it."""


@dataclass(frozen=True)
class Interval:
    """A figure measured over several fresh seeds: the mean and the lowest and highest seed.

    >>> Interval.of([0.95, 0.97, 0.96])
    Interval(mean=0.96, low=0.95, high=0.97, seeds=3)
    """

    mean: float
    low: float
    high: float
    seeds: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Interval:
        v = np.asarray(list(values), dtype=float)
        if v.size == 0:
            raise ValueError("an interval needs at least one measured value")
        return cls(round(float(v.mean()), 4), round(float(v.min()), 4), round(float(v.max()), 4), int(v.size))

    def __str__(self) -> str:
        return f"{self.mean:.3f} [{self.low:.3f}, {self.high:.3f}]"


@dataclass
class ModelCard:
    """What a shipped model is, how it was made and how well it does, with types instead of nested dicts.

        >>> card = ModelCard.load("fusion")              # kit/models/fusion/card.json  # doctest: +SKIP
        >>> card.schema_version, card.files[0]  # doctest: +SKIP
        (2, 'stem_int8.tflite')
        >>> card.conditions["night"]["queue_accuracy"].mean >= 0.95  # doctest: +SKIP
        True
        >>> card.check_files()                                    # [] when the files are the ones described  # doctest: +SKIP
        []

    ``conditions`` maps a condition (``day``, ``night``, ...) to figures (``queue_accuracy``,
    ``pedestrian_f1``, ...) measured over several fresh seeds. ``details`` holds what only some
    models have (architecture, data, training settings, thresholds).
    """

    name: str
    task: str
    files: list[str]
    sha256: dict[str, str]
    size_bytes: int
    precision: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    conditions: dict[str, dict[str, Interval]] = field(default_factory=dict)
    reproduce: str = ""
    limitations: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    """Where the training frames came from, when the card says (a retrained model: ``data.uploaded.device``, the
    device whose uploads it learned, which that device's app reads; ``data.replay``)."""
    schema_version: int = SCHEMA_VERSION
    folder: Path = field(default=MODELS_DIR, compare=False, repr=False)

    @property
    def path(self) -> Path:
        """The first (main) model file."""
        return self.folder / self.files[0]

    def figure(self, condition: str, metric: str) -> Interval | None:
        """One figure, or None when the card does not report it."""
        return self.conditions.get(condition, {}).get(metric)

    def check_files(self) -> list[str]:
        """Problems between the card and its files (missing, sha256 differs); [] when they match."""
        problems = []
        for name in self.files:
            p = self.folder / name
            if not p.exists():
                problems.append(f"{p} is missing")
            elif file_sha256(p) != self.sha256.get(name):
                problems.append(
                    f"{name} sha256 is {file_sha256(p)[:12]}..., the card says {str(self.sha256.get(name))[:12]}..."
                )
        return problems

    def to_dict(self) -> dict[str, Any]:
        d = {
            k: getattr(self, k)
            for k in (
                "schema_version",
                "name",
                "task",
                "files",
                "sha256",
                "size_bytes",
                "precision",
                "inputs",
                "outputs",
                "reproduce",
                "limitations",
                "details",
            )
        }
        d["conditions"] = {c: {m: asdict(i) for m, i in figs.items()} for c, figs in self.conditions.items()}
        if self.data:  # only retrained models say (the shipped cards stay as they are)
            d["data"] = self.data
        return d

    def save(self, path: str | Path | None = None) -> Path:
        """Write the card as stable JSON (default: ``FOLDER/NAME.json``)."""
        path = Path(path) if path is not None else self.folder / f"{self.name}.json"
        path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")
        return path

    @classmethod
    def from_dict(cls, d: dict[str, Any], folder: str | Path = MODELS_DIR) -> ModelCard:
        """A card from its JSON; schema 1 (untyped ``kit model train`` cards) is read as well."""
        version = int(d.get("schema_version", 1))
        if version > SCHEMA_VERSION:
            raise ValueError(
                f"card {d.get('name')!r} has schema version {version}; this kit reads up to "
                f"{SCHEMA_VERSION}: update the kit"
            )
        if version == 1:
            return cls._from_v1(d, Path(folder))
        conditions = {c: {m: Interval(**i) for m, i in figs.items()} for c, figs in d.get("conditions", {}).items()}
        return cls(
            name=d["name"],
            task=d["task"],
            files=list(d["files"]),
            sha256=dict(d["sha256"]),
            size_bytes=int(d["size_bytes"]),
            precision=d["precision"],
            inputs=d["inputs"],
            outputs=d["outputs"],
            conditions=conditions,
            reproduce=d.get("reproduce", ""),
            limitations=d.get("limitations", ""),
            details=d.get("details", {}),
            data=d.get("data", {}),
            folder=Path(folder),
        )

    @classmethod
    def _from_v1(cls, d: dict[str, Any], folder: Path) -> ModelCard:
        # one held-out figure per condition (no seeds interval in version 1: low = high = mean, seeds 1)
        def figs(m: dict[str, Any]) -> dict[str, Interval]:
            return {
                k: Interval(float(v), float(v), float(v), 1)
                for k, v in m.items()
                if k in ("queue_accuracy", "pedestrian_f1") and isinstance(v, (int, float))
            }

        if isinstance(d.get("files"), dict):  # the early-exit pair before cards were typed
            test = d.get("metrics_on_test", {})
            return cls(
                name=d["name"],
                task=d.get("task", ""),
                files=sorted(d["files"]),
                sha256={k: v["sha256"] for k, v in d["files"].items()},
                size_bytes=sum(int(v["bytes"]) for v in d["files"].values()),
                precision="float32",
                inputs={},
                outputs={},
                conditions={"test": figs({"queue_accuracy": test.get("accuracy")}), **_intervals(d)},
                reproduce=d.get("produced_by", ""),
                details={"metrics_on_test": test, "conditions": d.get("data", {}).get("conditions")},
                schema_version=1,
                folder=folder,
            )
        conditions = {"day": figs(d.get("metrics", {}))}
        conditions.update({c: figs(m) for c, m in d.get("stress", {}).items()})
        conditions.update(_intervals(d))
        inputs = {d["input"]["name"]: d["input"]} if "input" in d else {}
        details = {k: d[k] for k in ("architecture", "data", "training", "floors", "keras_weights") if k in d}
        return cls(
            name=d["name"],
            task="queue class and pedestrian waiting from a camera frame",
            files=[d["file"]],
            sha256={d["file"]: d["sha256"]},
            size_bytes=int(d["size_bytes"]),
            precision=d.get("precision", "float32"),
            inputs=inputs,
            outputs=d.get("outputs", {}),
            conditions=conditions,
            reproduce=d.get("reproduce", ""),
            limitations=d.get("limitations", ""),
            details=details,
            schema_version=1,
            folder=folder,
        )

    @classmethod
    def load(cls, name_or_path: str | Path) -> ModelCard:
        """The card of a shipped model name, a ``.json`` card, a ``.tflite`` file or a folder holding ``card.json``."""
        p = Path(name_or_path)
        if not p.suffix and not p.is_dir() and (MODELS_DIR / p.name).is_dir():
            p = MODELS_DIR / p.name  # a shipped model made of several files
        path = p / "card.json" if p.is_dir() else card_path(p)
        if not path.exists():
            raise FileNotFoundError(f"no model card at {path}; shipped models: {', '.join(shipped_cards()) or 'none'}")
        fix = "restore it from the kit, or write it again (kit model train writes one beside its model)"
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CardError(f"{path} is not a model card (bad JSON: {exc}); {fix}") from exc
        try:
            return cls.from_dict(data, path.parent)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise CardError(f"{path} is not a model card ({type(exc).__name__}: {exc}); {fix}") from exc


class CardError(KitError, ValueError):
    """A model card that cannot be read: the command line prints it as one line."""


def _intervals(d: dict[str, Any]) -> dict[str, dict[str, Interval]]:
    """Figures over fresh seeds that ``bench/cards.py`` added to an untyped card (key ``figures``)."""
    return {c: {m: Interval(**i) for m, i in figs.items()} for c, figs in d.get("figures", {}).items()}


def shipped_cards() -> list[str]:
    """Names of the shipped models that have a card, the app's default first."""
    from kit.ml import DEFAULT_APP_MODEL

    names = sorted(p.stem for p in MODELS_DIR.glob("*.json"))
    names += sorted(p.name for p in MODELS_DIR.iterdir() if p.is_dir() and (p / "card.json").exists())
    return sorted(names, key=lambda n: (n != DEFAULT_APP_MODEL, n))

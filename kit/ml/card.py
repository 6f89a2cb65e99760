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
from pathlib import Path
from typing import Any

import numpy as np

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


def scores(queue_probs: np.ndarray, pedestrian_probs: np.ndarray, queue: np.ndarray, pedestrian: np.ndarray,
           threshold: float = 0.5) -> dict[str, Any]:
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

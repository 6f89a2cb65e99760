"""A loss that tolerates wrong labels: generalized cross-entropy (GCE) next to plain cross-entropy.

Labels for the queue classes come from people or from a second sensor, and both are wrong
sometimes (a car hidden by a leaf counted as "empty", a tired annotator). Plain cross-entropy
``-log p_y`` grows without bound on a confidently "wrong" label, so a few bad labels pull the
model hard. The choice here is **generalized cross-entropy** (Zhang & Sabuncu, NeurIPS 2018)::

    L_q(p, y) = (1 - p_y ** q) / q        0 < q <= 1

``q -> 0`` is cross-entropy, ``q = 1`` is the mean absolute error (robust but slow to learn);
``q = 0.7`` (the paper's choice) keeps most of CE's speed while bounding the loss by ``1/q``.
Its gradient with respect to the logits is CE's gradient weighted by ``p_y ** q``: examples the
model finds implausible count less. Chosen over symmetric CE because it has one knob and no
``log 0`` to clip.

The numpy versions (loss and logit gradient) train the kit's numpy heads on the device;
:func:`keras_loss` gives the same loss for Keras training on a laptop.

    >>> import numpy as np
    >>> from kit.ml.robust import generalized_cross_entropy, cross_entropy
    >>> p = np.array([[0.01, 0.99, 0.0]])       # the model is sure of class 1, the label says 0
    >>> round(cross_entropy(p, np.array([0])), 2), round(generalized_cross_entropy(p, np.array([0])), 2)
    (4.61, 1.37)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = [
    "DEFAULT_Q",
    "LOSSES",
    "cross_entropy",
    "generalized_cross_entropy",
    "logit_gradient",
    "softmax",
    "add_label_noise",
    "keras_loss",
]

DEFAULT_Q = 0.7
LOSSES = ("ce", "gce")
_EPS = 1e-7


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, stable for large logits."""
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _p_true(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels, dtype=np.int64)
    if probs.ndim != 2 or len(labels) != len(probs):
        raise ValueError(f"expected probs (n, k) and n labels, got probs {probs.shape} and {labels.shape} labels")
    return np.clip(probs[np.arange(len(labels)), labels], _EPS, 1.0)


def cross_entropy(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean ``-log p_y`` over the batch."""
    return float(np.mean(-np.log(_p_true(probs, labels))))


def generalized_cross_entropy(probs: np.ndarray, labels: np.ndarray, q: float = DEFAULT_Q) -> float:
    """Mean ``(1 - p_y**q) / q`` over the batch (bounded by ``1/q``)."""
    _check_q(q)
    return float(np.mean((1.0 - _p_true(probs, labels) ** q) / q))


def _check_q(q: float) -> None:
    if not 0.0 < q <= 1.0:
        raise ValueError(f"generalized cross-entropy needs 0 < q <= 1, got q={q}; 0.7 is the usual choice")


def logit_gradient(logits: np.ndarray, labels: np.ndarray, *, loss: str = "ce", q: float = DEFAULT_Q) -> np.ndarray:
    """Gradient of the mean loss with respect to the logits, shape ``(n, k)``.

    CE: ``p - onehot(y)``. GCE: ``p_y**q * (p - onehot(y))`` (derivative of ``(1 - p_y**q)/q``).
    """
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; choose one of {LOSSES}")
    probs = softmax(logits)
    n = len(labels)
    onehot = np.zeros_like(probs)
    onehot[np.arange(n), np.asarray(labels, dtype=np.int64)] = 1.0
    grad = probs - onehot
    if loss == "gce":
        _check_q(q)
        grad = grad * (_p_true(probs, labels) ** q)[:, None]
    return grad / n


def add_label_noise(labels: np.ndarray, rate: float, *, n_classes: int, seed: int) -> np.ndarray:
    """Flip a fraction ``rate`` of labels to another class chosen uniformly (symmetric noise)."""
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"noise rate must be in [0, 1), got {rate}")
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels, dtype=np.int64).copy()
    flip = rng.random(len(labels)) < rate
    shift = rng.integers(1, n_classes, size=int(flip.sum()))
    labels[flip] = (labels[flip] + shift) % n_classes
    return labels


def keras_loss(name: str = "gce", *, q: float = DEFAULT_Q) -> Callable[[Any, Any], Any]:
    """The same losses for Keras (sparse integer labels, softmax outputs). Imports TensorFlow.

    model.compile(loss={"queue": keras_loss("gce")}, ...)
    """
    import tensorflow as tf

    if name == "ce":
        return tf.keras.losses.SparseCategoricalCrossentropy()
    if name != "gce":
        raise ValueError(f"unknown loss {name!r}; choose one of {LOSSES}")
    _check_q(q)

    def gce(y_true: Any, y_pred: Any) -> Any:
        y = tf.cast(tf.reshape(y_true, [-1]), tf.int32)
        p = tf.gather(y_pred, y, axis=1, batch_dims=1)
        p = tf.clip_by_value(p, _EPS, 1.0)
        return (1.0 - tf.pow(p, q)) / q

    gce.__name__ = f"gce_q{q}"
    return gce

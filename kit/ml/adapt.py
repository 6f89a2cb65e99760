"""On-device adaptation: a few labelled frames retrain the model's last layer, without TensorFlow.

The camera model splits in two before its head. The body — every convolution — is exported once,
on a laptop, as a feature-extractor ``.tflite`` and runs on the Pi through LiteRT like any other
model. The head — the ``queue`` softmax layer — is plain numpy (:class:`SoftmaxHead`), so the
device can train it by gradient descent on a handful of frames someone labelled (an operator on
site, or a second sensor). An L2 penalty keeps the weights near the factory head, so the model
gains the new scene without forgetting the old ones.

Which features: the model's own penultimate layer is a global average over the last feature
map (64 numbers), and that average throws away *where* things are. A head trained on it cannot
do better at night than the factory one (measured: 0.66 with 1000 labelled night frames). So
the extractor keeps a 4×4 grid of averages instead (16 cells × 64 channels = 1024 features); the
factory head, copied to every cell with weight 1/16, predicts exactly what the full model does,
and adaptation can then learn that a bright blob far up the lane at night is the last car.

Every head the device trains is stored, versioned, in the kit's SQLite store (table
``ml_head_versions``, see :class:`HeadStore`); loading a version is how you roll back.

On a laptop (needs TensorFlow, once)::

    from kit.ml.model import load_keras
    head = export_feature_extractor(load_keras("intersection"), "intersection.features.tflite")
    head.save("intersection.head.npz")

On the device (numpy + LiteRT only)::

    >>> adapter = Adapter("intersection.features.tflite", SoftmaxHead.load("intersection.head.npz"))  # doctest: +SKIP
    >>> adapter.adapt(frames, labels, seed=0)          # a few labelled autumn frames    # doctest: +SKIP
    >>> HeadStore(store).save(adapter.head, note="autumn, 30 frames")                    # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import io
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kit.ml import robust

__all__ = ["FEATURE_LAYER", "SoftmaxHead", "export_feature_extractor", "Adapter", "HeadStore"]

FEATURE_LAYER = "pool"  # kit.ml.model: the global average pooling before the heads
GRID = 4  # cells per side kept by the feature extractor


@dataclass
class SoftmaxHead:
    """A dense softmax layer in numpy: ``probs = softmax(features @ weights + bias)``.

    >>> import numpy as np
    >>> head = SoftmaxHead(np.zeros((4, 3), np.float32), np.zeros(3, np.float32))
    >>> head.predict_proba(np.ones((2, 4))).shape
    (2, 3)
    >>> x, y = np.eye(3, 4), np.arange(3)
    >>> trained = head.fit(x, y, epochs=50, lr=1.0, l2=0.0, seed=0)
    >>> trained.predict_proba(x).argmax(axis=1).tolist()
    [0, 1, 2]
    """

    weights: np.ndarray
    bias: np.ndarray

    def __post_init__(self) -> None:
        self.weights = np.asarray(self.weights, dtype=np.float32)
        self.bias = np.asarray(self.bias, dtype=np.float32)
        if self.weights.ndim != 2 or self.bias.shape != (self.weights.shape[1],):
            raise ValueError(
                f"a head needs weights (features, classes) and bias (classes,), got {self.weights.shape} and {self.bias.shape}"
            )

    @property
    def n_features(self) -> int:
        return int(self.weights.shape[0])

    def _check(self, features: np.ndarray) -> np.ndarray:
        x = np.asarray(features, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"this head takes features shaped (n, {self.n_features}), got {x.shape}")
        return x

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        return robust.softmax(self._check(features) @ self.weights + self.bias)

    def fit(
        self,
        features: np.ndarray,
        labels: np.ndarray,
        *,
        epochs: int = 100,
        lr: float = 0.02,
        l2: float = 0.1,
        batch_size: int = 16,
        loss: str = "ce",
        seed: int = 0,
    ) -> SoftmaxHead:
        """A new head trained from this one by minibatch SGD; ``l2`` pulls toward this head's weights."""
        x = self._check(features)
        y = np.asarray(labels, dtype=np.int64)
        if len(y) != len(x) or len(y) == 0:
            raise ValueError(f"need one label per feature row and at least one, got {len(x)} rows and {len(y)} labels")
        if y.min() < 0 or y.max() >= self.weights.shape[1]:
            raise ValueError(
                f"labels must be class indices 0..{self.weights.shape[1] - 1}, got {sorted(set(y.tolist()))}"
            )
        rng = np.random.default_rng(seed)
        w0, b0 = self.weights.copy(), self.bias.copy()
        w, b = w0.copy(), b0.copy()
        for _ in range(epochs):
            order = rng.permutation(len(y))
            for start in range(0, len(y), batch_size):
                idx = order[start : start + batch_size]
                dz = robust.logit_gradient(x[idx] @ w + b, y[idx], loss=loss)
                w -= lr * (x[idx].T @ dz + l2 * (w - w0))
                b -= lr * (dz.sum(axis=0) + l2 * (b - b0))
        return SoftmaxHead(w, b)

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        np.savez(buf, weights=self.weights, bias=self.bias)
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> SoftmaxHead:
        with np.load(io.BytesIO(data)) as f:
            return cls(f["weights"], f["bias"])

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_bytes(self.to_bytes())
        return path

    @classmethod
    def load(cls, path: str | Path) -> SoftmaxHead:
        return cls.from_bytes(Path(path).read_bytes())


def export_feature_extractor(
    model: Any, path: str | Path, *, pool: str = FEATURE_LAYER, head: str = "queue", grid: int = GRID
) -> SoftmaxHead:
    """Write the body of a Keras camera model as a ``.tflite`` with one output, ``features``.

    The features are the feature map that enters the global pooling layer ``pool``, averaged over
    a ``grid``×``grid`` grid of cells and flattened (cell-major). Returns the model's ``head``
    layer spread over the cells as a :class:`SoftmaxHead`, so that ``Adapter(path, head)``
    predicts exactly what the full model predicts. Needs TensorFlow (run it on a laptop).
    """
    import tensorflow as tf

    from kit.ml.tflite import convert

    try:
        fmap = model.get_layer(pool).input
        dense = model.get_layer(head)
    except ValueError as exc:
        names = [lyr.name for lyr in model.layers]
        raise ValueError(f"{exc}; the model's layers are {names}") from exc
    side = int(fmap.shape[1])
    if side % grid or int(fmap.shape[2]) != side:
        raise ValueError(
            f"the feature map before {pool!r} is {tuple(fmap.shape[1:3])}, not a square divisible by grid={grid}"
        )
    x = tf.keras.layers.AveragePooling2D(side // grid, name="grid_pool")(fmap)
    x = tf.keras.layers.Flatten(name="features")(x)
    body = tf.keras.Model(model.inputs, {"features": x}, name="features")
    path = Path(path)
    path.write_bytes(convert(body))
    w, b = dense.get_weights()
    cells = grid * grid
    # mean over cells == global average, so the same weights / cells on every cell give the same logits
    return SoftmaxHead(np.tile(w / cells, (cells, 1)), b)


class Adapter:
    """A TFLite feature extractor plus a numpy head: predicts, and adapts the head on labelled frames.

    ``extractor`` is the path of a features ``.tflite`` (see :func:`export_feature_extractor`) or a
    ``ModelHost`` with a ``features`` output.

        >>> adapter = Adapter("intersection.features.tflite", head)          # doctest: +SKIP
        >>> adapter.accuracy(frames, labels)                                 # doctest: +SKIP
        0.65
        >>> adapter.adapt(few_frames, few_labels, seed=0)                    # doctest: +SKIP
        >>> adapter.accuracy(frames, labels)                                 # doctest: +SKIP
        0.9
    """

    def __init__(self, extractor: Any, head: SoftmaxHead, *, num_threads: int = 1) -> None:
        from kit.ml.host import ModelHost

        self.host = extractor if isinstance(extractor, ModelHost) else ModelHost(extractor, num_threads=num_threads)
        if "features" not in self.host.output_names:
            raise ValueError(
                f"{self.host.path} has outputs {self.host.output_names}, not 'features'; "
                "export one with kit.ml.adapt.export_feature_extractor(model, path)"
            )
        self.head = head
        self.factory_head = head

    def features(self, frames: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """Penultimate-layer features of uint8 frames, shape (n, features)."""
        frames = np.asarray(frames)
        if frames.ndim == 2:
            frames = frames[None]
        out = self.host.predict_batches(frames, batch_size=batch_size)["features"]
        return out.reshape(len(frames), -1)

    def predict_proba(self, frames: np.ndarray) -> np.ndarray:
        return self.head.predict_proba(self.features(frames))

    def accuracy(self, frames: np.ndarray, labels: np.ndarray) -> float:
        return float(np.mean(self.predict_proba(frames).argmax(axis=1) == np.asarray(labels)))

    def adapt(self, frames: np.ndarray, labels: np.ndarray, **fit_kwargs: Any) -> SoftmaxHead:
        """Train the head on labelled frames (``SoftmaxHead.fit`` options); the adapter keeps the new head."""
        self.head = self.head.fit(self.features(frames), labels, **fit_kwargs)
        return self.head

    def reset(self) -> None:
        """Back to the head the adapter was created with."""
        self.head = self.factory_head


class HeadStore:
    """Versions of a model's head in the kit's SQLite store: save after adapting, load to use or roll back.

    The table ``ml_head_versions`` (created on first use, through sqlite-utils):

    ========== ======= ====================================================
    column     type    meaning
    ========== ======= ====================================================
    version    integer 1, 2, 3 ... (primary key, never reused)
    model      text    which head (e.g. ``queue``)
    ts         float   Unix time it was saved
    n_examples integer labelled frames it was trained on (0: factory head)
    note       text    free text: why, on what
    metrics    text    JSON of whatever was measured (accuracy before/after)
    sha256     text    hash of ``weights``: the same head has the same hash
    weights    blob    ``np.savez`` bytes with ``weights`` and ``bias``
    ========== ======= ====================================================

        >>> import numpy as np
        >>> from kit.store import Store
        >>> heads = HeadStore(Store(":memory:"))
        >>> heads.save(SoftmaxHead(np.zeros((4, 3)), np.zeros(3)), note="factory")
        1
        >>> heads.load().weights.shape
        (4, 3)
    """

    table = "ml_head_versions"

    def __init__(self, store: Any, *, model: str = "queue") -> None:
        import sqlite_utils

        if isinstance(store, (str, Path)):
            from kit.store import Store

            store = Store(store)
        self.store = store
        self.db = store if isinstance(store, sqlite_utils.Database) else getattr(store, "db", None)
        if not isinstance(self.db, sqlite_utils.Database):
            raise TypeError(
                f"HeadStore needs a kit.store.Store, a store path or a sqlite_utils.Database, got {store!r}"
            )
        self.model = model
        self.db[self.table].create(
            {
                "version": int,
                "model": str,
                "ts": float,
                "n_examples": int,
                "note": str,
                "metrics": str,
                "sha256": str,
                "weights": bytes,
            },
            pk="version",
            not_null={"model", "ts", "weights"},
            if_not_exists=True,
        )

    def save(
        self, head: SoftmaxHead, *, note: str = "", n_examples: int = 0, metrics: dict[str, Any] | None = None
    ) -> int:
        """Store a head as the newest version; returns its version number."""
        import json

        blob = head.to_bytes()
        begin = getattr(self.store, "transaction", None)
        with begin() if begin is not None else self.db.conn:
            table = self.db[self.table]
            table.insert(
                {
                    "model": self.model,
                    "ts": time.time(),
                    "n_examples": int(n_examples),
                    "note": note,
                    "metrics": json.dumps(metrics or {}),
                    "sha256": hashlib.sha256(blob).hexdigest(),
                    "weights": blob,
                }
            )
            return int(table.last_pk)

    def versions(self) -> list[dict[str, Any]]:
        """Every version of this model's head, oldest first, without the weights."""
        import json

        rows = self.db.query(
            f"select version, ts, n_examples, note, metrics, sha256 from [{self.table}] where model = ? order by version",
            [self.model],
        )
        return [{**r, "metrics": json.loads(r["metrics"] or "{}")} for r in rows]

    def load(self, version: int | None = None) -> SoftmaxHead:
        """The newest head, or a given version (roll back by loading an older one)."""
        if version is None:
            row = self.db.execute(
                f"select weights from [{self.table}] where model = ? order by version desc limit 1", [self.model]
            ).fetchone()
        else:
            row = self.db.execute(
                f"select weights from [{self.table}] where model = ? and version = ?", [self.model, int(version)]
            ).fetchone()
        if row is None:
            have = [v["version"] for v in self.versions()]
            raise LookupError(
                f"no stored head for model {self.model!r}"
                + (f" with version {version}" if version is not None else "")
                + f"; stored versions: {have or 'none'} (save one with HeadStore.save(head))"
            )
        return SoftmaxHead.from_bytes(row[0])

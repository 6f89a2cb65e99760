"""The cloud retrain loop: frames the device uploaded while drift alarmed become a candidate model.

    device:    FrameUploader.add(frame, queue_class, pedestrian, sensors=vector)   while drift alarms
               FrameUploader.flush()  ─► s3://BUCKET/frames/<device>/<first-frame>-<sha12>.npz   (cloud worker)
    operator:  kit model retrain --from-s3 DEVICE --out DIR [--base fusion|intersection] [--deploy]
               ─► fine-tune the running model's Keras weights on those frames (plus a replay of its own
                  training distribution, so that the old scenes are not forgotten), convert, write a card:
                  the fused default (frame + sensor vector) as a folder like kit/models/fusion
                  (kit.ml.ota.retrain_fused), a camera model as NAME.tflite
               ─► kit model deploy: the device verifies, canaries and swaps it like any other model

    >>> from kit.ml.ota.retrain import FrameUploader, retrain_from_s3          # doctest: +SKIP
    >>> up = FrameUploader("kit-0001")                                          # doctest: +SKIP
    >>> up.add(frame, queue_class=2, pedestrian=0)                              # doctest: +SKIP
    >>> up.flush()                                                               # doctest: +SKIP
    'frames/kit-0001/000000-3f1c2a9b0d4e.npz'
    >>> card = retrain_from_s3("kit-0001", out="models", seed=0)                # doctest: +SKIP

The labels are what the device's own sensors say at the moment of the frame (a queue class, a pedestrian
from the PIR sensor); nobody labels frames by hand. The ultrasonic sensor's distance to the nearest car tells
an empty queue from a queue, not its length: ``bench/lifecycle.py`` uses the simulation's true class instead. The card's metrics are measured on the last uploaded frames, held out of the training (the
newest scenes, the ones the candidate must handle), beside the base model on the same frames.
Needs TensorFlow (``pip install -e .[train]``) for the retrain; the uploader needs boto3 only.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from kit.errors import UsageError
from kit.ml import DEFAULT_APP_MODEL
from kit.ml.ota.desired import DeployError

PREFIX = "frames"
REPLAY_SEED_OFFSET = 20_000  # replayed training frames: another seed than the base model's own training set


def frames_prefix(device: str) -> str:
    """The S3 prefix of a device's uploaded frames: ``frames/<device>/``."""
    if not isinstance(device, str) or not device.strip() or "/" in device:
        raise UsageError(f"a device is a thing name without '/', e.g. kit-0001; got {device!r}")
    return f"{PREFIX}/{device}/"


def pack(
    frames: np.ndarray,
    queue: np.ndarray,
    pedestrian: np.ndarray,
    meta: dict[str, Any],
    sensors: np.ndarray | None = None,
) -> bytes:
    """One chunk as bytes (a compressed ``.npz``: ``x`` uint8 frames, ``queue``, ``pedestrian``, ``meta`` JSON;
    ``sensors``, the sensor vector of each frame's moment (``kit.ml.sensors``), when the device has them)."""
    buf = io.BytesIO()
    extra = {} if sensors is None else {"sensors": np.asarray(sensors, np.float32)}
    np.savez_compressed(
        buf,
        x=np.asarray(frames, np.uint8),
        queue=np.asarray(queue, np.int8),
        pedestrian=np.asarray(pedestrian, np.int8),
        meta=np.array(json.dumps(meta, sort_keys=True)),
        **extra,
    )
    return buf.getvalue()


def unpack(raw: bytes, key: str = "chunk") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frames, queue classes and pedestrian flags of a chunk written by :func:`pack`, checked."""
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as f:
            x, q, p = f["x"], f["queue"].astype(np.int64), f["pedestrian"].astype(np.int64)
    except Exception as exc:  # noqa: BLE001 - any unreadable object is the same mistake for the operator
        raise DeployError(f"{key} is not a frames chunk (.npz with x, queue, pedestrian): {exc}") from None
    if x.ndim != 3 or len(x) != len(q) or len(q) != len(p) or x.dtype != np.uint8:
        raise DeployError(
            f"{key}: frames {x.shape} {x.dtype}, {len(q)} queue and {len(p)} pedestrian labels do not match"
        )
    if len(q) and (q.min() < 0 or q.max() > 2 or p.min() < 0 or p.max() > 1):
        raise DeployError(f"{key}: queue classes must be 0..2 and pedestrian flags 0/1")
    return x, q, p


class FrameUploader:
    """The device's side: frames with their sensor labels, buffered, uploaded in chunks (see the module docstring).

    :meth:`add` is a list append (the model loop may call it); :meth:`flush` does the upload and belongs
    on a worker that may wait for the network (the cloud link), never on the control thread.
    ``limit`` bounds the frames one drift episode uploads (the device's data plan, the bucket's size).
    """

    def __init__(
        self, device: str, *, chunk: int = 64, limit: int = 4000, bucket: str | None = None, s3: Any = None
    ) -> None:
        self.prefix = frames_prefix(device)
        self.device = device
        if chunk < 1 or limit < 1:
            raise UsageError(f"chunk and limit are numbers of frames >= 1, got {chunk}, {limit}")
        self.chunk, self.limit = int(chunk), int(limit)
        self.bucket, self.s3 = bucket, s3
        self.buffer: list[tuple[np.ndarray, int, int, Any]] = []
        self.sent = 0  # frames uploaded
        self.requests = 0  # PUT requests made, failed ones too (what the data plan pays for)
        self.keys: list[str] = []

    @property
    def full(self) -> bool:
        """True once ``limit`` frames are uploaded or waiting."""
        return self.sent + len(self.buffer) >= self.limit

    def add(self, frame: np.ndarray, queue_class: int, pedestrian: int = 0, *, sensors: Any = None) -> bool:
        """Keep one frame and its sensor labels (and sensor vector); True when a chunk is ready to :meth:`flush`."""
        if not self.full:
            self.buffer.append((np.asarray(frame, np.uint8), int(queue_class), int(bool(pedestrian)), sensors))
        return len(self.buffer) >= self.chunk

    def flush(self) -> str | None:
        """Upload the buffered frames as one chunk; its key, or None when there was nothing to send."""
        if not self.buffer:
            return None
        if self.s3 is None:
            from kit.cloud.config import client, current
            from kit.ml.ota.deploy import _ensure_bucket

            self.s3, self.bucket = client("s3"), self.bucket or current().bucket
            _ensure_bucket(self.s3, self.bucket, current().local)  # the local endpoint starts with no bucket
        batch, self.buffer = self.buffer, []
        with_sensors = all(b[3] is not None for b in batch)
        raw = pack(
            np.stack([b[0] for b in batch]),
            np.array([b[1] for b in batch]),
            np.array([b[2] for b in batch]),
            {"device": self.device, "labels": "the device's sensors at the frame's moment", "t": time.time()},
            sensors=np.stack([np.asarray(b[3], np.float32) for b in batch]) if with_sensors else None,
        )
        # the first frame's number orders the chunks in time; the digest makes a re-sent chunk the same object
        key = f"{self.prefix}{self.sent:06d}-{hashlib.sha256(raw).hexdigest()[:12]}.npz"
        try:
            self.requests += 1
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=raw, ContentType="application/octet-stream")
        except Exception:
            self.buffer = batch + self.buffer  # kept for the next try: nothing the sensors labelled is lost
            raise
        self.sent += len(batch)
        self.keys.append(key)
        return key


def download_frames(device: str, *, bucket: str | None = None, s3: Any = None) -> tuple[Any, list[str]]:
    """Every chunk a device uploaded, in the order it sent them, as one ``kit.ml.data.Dataset``; and the keys."""
    from kit.cloud.config import client, current
    from kit.ml.data import Dataset

    s3 = s3 or client("s3")
    bucket = bucket or current().bucket
    prefix = frames_prefix(device)
    keys: list[str] = []
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys += [o["Key"] for o in page.get("Contents", []) if o["Key"].endswith(".npz")]
    except s3.exceptions.NoSuchBucket:
        raise DeployError(f"no bucket {bucket!r}: give --bucket, or set KIT_BUCKET to the devices' bucket") from None
    if not keys:
        raise DeployError(
            f"no frames under s3://{bucket}/{prefix}: the device uploads them while its drift monitor alarms "
            "(kit.ml.ota.retrain.FrameUploader); check the device name"
        )
    raws = [s3.get_object(Bucket=bucket, Key=k)["Body"].read() for k in sorted(keys)]
    parts = [unpack(raw, k) for raw, k in zip(raws, sorted(keys))]
    sensors = [_sensors_of(raw) for raw in raws]
    shapes = {p[0].shape[1:] for p in parts}
    if len(shapes) != 1:
        raise DeployError(f"the chunks under {prefix} hold frames of several sizes {sorted(shapes)}; keep one camera")
    x, q, p = (np.concatenate([part[i] for part in parts]) for i in range(3))
    # the sensor vectors of the frames' moments, when every chunk has them (the app sends them; a fused retrain
    # reads them)
    s = (
        np.concatenate(sensors)
        if all(v is not None and len(v) == len(part[0]) for v, part in zip(sensors, parts))
        else None
    )
    meta = {"device": device, "keys": sorted(keys), "chunks_with_sensors": sum(v is not None for v in sensors)}
    return Dataset(x, q, p, meta, sensors=s), sorted(keys)


def _sensors_of(raw: bytes) -> np.ndarray | None:
    with np.load(io.BytesIO(raw), allow_pickle=False) as f:
        return f["sensors"].astype(np.float32) if "sensors" in f.files else None


def split_uploads(data: Any, holdout: float, device: str) -> tuple[Any, Any]:
    """(frames to train on, the newest `holdout` share held out to score on), refused when too few remain."""
    n_held = int(round(len(data) * holdout))
    if len(data) - n_held < 16:
        raise DeployError(f"only {len(data)} frames uploaded by {device}: retraining needs at least 16 to learn from")
    return data.subset(slice(0, len(data) - n_held)), data.subset(slice(len(data) - n_held, len(data)))


def fused_base(base: str | Path) -> Path | None:
    """The folder of a fused base model (a shipped name such as ``fusion`` or a folder), or None for a one-piece model."""
    from kit.ml import MODELS_DIR

    p = Path(base)
    folder = p if p.is_dir() else (MODELS_DIR / p.name if not p.suffix and (MODELS_DIR / p.name).is_dir() else None)
    if folder is None:
        return None
    if not (folder / "stem_int8.tflite").exists() or not (folder / "card.json").exists():
        raise DeployError(
            f"the base {str(base)!r} is a folder but not a fused model (card.json, stem/rest parts); "
            "give --base fusion, --base intersection or a folder written by kit model retrain --base fusion"
        )
    return folder


def retrain_from_s3(
    device: str,
    *,
    out: str | Path = "models",
    name: str | None = None,
    base: str | Path = DEFAULT_APP_MODEL,
    seed: int = 0,
    epochs: int = 15,
    replay: int = 500,
    learning_rate: float = 3e-3,
    holdout: float = 0.2,
    bucket: str | None = None,
    s3: Any = None,
    progress: Any = print,
    pedestrian_labels: str | None = None,
) -> dict[str, Any]:
    """Fine-tune ``base`` on the frames ``device`` uploaded; write the candidate and its card; return the card.

    ``base`` is the app's default model (``fusion``: camera + sensors, which needs the chunks' sensor vectors;
    written as the folder ``OUT/NAME/`` laid out like ``kit/models/fusion``, see ``kit.ml.ota.retrain_fused``),
    or a one-piece camera model such as ``intersection`` (written as ``OUT/NAME.tflite`` + card). The
    newest ``holdout`` share of the uploaded frames is kept out of training and scores both the candidate
    and the base model (``metrics`` and ``metrics_base`` in the card; a fused card's ``details``).
    ``replay`` frames of the base model's own training distribution (another seed) are mixed in so that it
    keeps what it knew. ``card["_path"]`` is what ``kit.ml.ota.deploy.deploy`` takes. ``pedestrian_labels``
    (a fused base only; default ``base``): what the uploads teach its pedestrian heads, the base model's own
    answers or the PIR (``kit.ml.ota.retrain_fused.PEDESTRIAN_LABELS``).
    """
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from kit.ml.card import evaluate, file_sha256, load_card, write_card
    from kit.ml.data import Dataset, make_dataset

    if epochs < 1 or replay < 0 or not 0.0 <= holdout < 1.0 or learning_rate <= 0:
        raise UsageError(
            f"need epochs >= 1, replay >= 0, 0 <= holdout < 1 and a learning rate > 0; got {epochs}, {replay}, "
            f"{holdout}, {learning_rate}"
        )
    say = progress or (lambda _msg: None)
    if pedestrian_labels not in (None, "base", "pir"):
        raise UsageError(f"pedestrian_labels is 'base' or 'pir', got {pedestrian_labels!r}")
    folder = fused_base(base)
    if folder is not None:  # camera + sensors, two parts: a folder in, a folder out
        from kit.ml.ota.retrain_fused import retrain_fused

        return retrain_fused(
            device,
            folder,
            out=out,
            name=name,
            seed=seed,
            epochs=epochs,
            replay=replay,
            learning_rate=learning_rate,
            holdout=holdout,
            bucket=bucket,
            s3=s3,
            progress=progress,
            base_arg=base,
            pedestrian_labels=pedestrian_labels or "base",
        )
    if pedestrian_labels is not None:
        raise UsageError(
            f"--pedestrian-labels is for a fused base (camera + sensors); {str(base)!r} is a camera model, "
            "whose uploads teach the pedestrian from the PIR"
        )
    try:
        base_card = load_card(base)
    except (FileNotFoundError, ValueError) as exc:
        raise DeployError(f"base model: {exc}") from None
    if not base_card.get("keras_weights"):
        raise DeployError(f"the base model {base_card.get('name')!r} lists no Keras weights to fine-tune; give --base")
    size = int(base_card["architecture"]["size"])
    data, keys = download_frames(device, bucket=bucket, s3=s3)
    if data.x.shape[1:] != (size, size):
        raise DeployError(f"the device uploaded {data.x.shape[1:]} frames; the base model reads ({size}, {size})")
    fit_on, held = split_uploads(data, holdout, device)
    n_held = len(held)
    say(f"{len(data)} frames from s3 (keys {len(keys)}): {len(fit_on)} to train on, the newest {n_held} held out")
    train_spec = base_card.get("data", {}).get("train", {})
    replay_seed = int(train_spec.get("seed", 0)) + REPLAY_SEED_OFFSET + int(seed)
    if replay:
        old = make_dataset(replay, seed=replay_seed, conditions=train_spec.get("conditions"), size=size)
        fit_on = Dataset(
            np.concatenate([fit_on.x, old.x]),
            np.concatenate([fit_on.queue, old.queue]),
            np.concatenate([fit_on.pedestrian, old.pedestrian]),
        )

    import tensorflow as tf

    from kit.ml.host import ModelHost
    from kit.ml.model import load_keras
    from kit.ml.tflite import convert
    from kit.ml.train import fit

    tf.config.experimental.enable_op_determinism()
    model = load_keras(base_card)
    from kit.ml.quiet import native_stderr

    t0 = time.perf_counter()
    with native_stderr():  # tf.data's native graph notes would reach the operator's terminal
        fit(model, fit_on, epochs=epochs, learning_rate=learning_rate, seed=seed, progress=progress)
    train_s = time.perf_counter() - t0
    name = name or f"{base_card['name']}-{device}-retrained"
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.tflite"
    path.with_suffix(".json").unlink(missing_ok=True)  # a card of an earlier run no longer describes it
    path.write_bytes(convert(model))
    weights = out / f"{name}.weights.npz"
    np.savez_compressed(weights, *model.get_weights())
    card = {k: v for k, v in base_card.items() if not k.startswith("_")}
    card.update(
        {
            "name": name,
            "file": path.name,
            "size_bytes": path.stat().st_size,
            "sha256": file_sha256(path),
            "keras_weights": {
                "file": weights.name,
                "sha256": file_sha256(weights),
                "size_bytes": weights.stat().st_size,
            },
            "base": {"name": base_card["name"], "sha256": base_card.get("sha256")},
            "data": {
                "uploaded": {
                    "device": device,
                    "frames": len(data),
                    "trained_on": len(data) - n_held,
                    "held_out": n_held,
                    "labels": "the device's sensors at each frame's moment (queue class, PIR pedestrian)",
                    "keys": keys,
                },
                "replay": {
                    "generator": "kit.ml.data.make_dataset",
                    "n": replay,
                    "seed": replay_seed,
                    "conditions": train_spec.get("conditions"),
                },
            },
            "training": {
                "from": f"the Keras weights of {base_card['name']}",
                "seed": seed,
                "epochs": epochs,
                "learning_rate": learning_rate,
                "train_seconds": round(train_s, 1),
                "tensorflow": tf.__version__,
            },
            "reproduce": f"kit model retrain --from-s3 {device} --base {base} --seed {seed} --epochs {epochs} "
            f"--replay {replay} --out {out}",
            "limitations": f"fine-tuned on {len(data) - n_held} frames of one device's scene, labelled by its sensors",
        }
    )
    card.pop("stress", None)  # measured on the base model's frames, not this one's
    if n_held:
        card["metrics"] = {**evaluate(ModelHost(path), held), "measured_on": f"the newest {n_held} uploaded frames"}
        base_host = ModelHost(Path(base_card["_dir"]) / base_card["file"])
        card["metrics_base"] = evaluate(base_host, held)
        say(
            f"held-out uploaded frames: queue accuracy {card['metrics']['queue_accuracy']:.3f} "
            f"(base {card['metrics_base']['queue_accuracy']:.3f})"
        )
    else:
        card["metrics"] = {}
    write_card(card, path.with_suffix(".json"))
    say(f"wrote {path} ({card['size_bytes']} bytes) and its card")
    card["_path"] = str(path)
    return card

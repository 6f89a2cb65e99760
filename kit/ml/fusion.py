"""The fused model: the camera frame and the sensor vector in one small network, with an early exit.

Mid fusion: the frame goes through convolutions, the sensor vector (``kit.ml.sensors``) through a
small dense layer, and the two feature vectors are joined before the heads ``queue`` (empty, short,
long) and ``pedestrian`` (someone waits). Why not late fusion (one model per source, their answers
averaged)? Because how much to trust the camera changes with the light, with leaves on the lens and
with a stuck sensor, and a fixed average cannot change with them; joined features let the heads learn
it, and the light sensor's own reading tells them how dark the frame is. Why not early fusion? A
sensor reading is not a pixel.

Two things teach the heads when to trust which source. The sensor branch also reads the queue class
the distance implies (``queue_from_distance``: steps half a car from the class boundaries, as lab 02's
queue detector), so the distance is as sharp a clue as the frame; a dense layer on the raw reading
learned those steps too slowly, and the network then followed the camera even behind leaves, where
the distance alone is right 98 % of the time. And the frame features are trained to say how much of
the lens leaves hide (outputs ``aux_leaves``, ``aux_exit_leaves``, used in training only), so the
heads can tell "the camera is hidden" (believe the distance) from "the distance sensor is stuck"
(believe the clear picture). With the PIR stuck or flagged the pedestrian head has only the frame,
and a network that always had a working PIR left finding people to it: the frame features are also
trained to find the pedestrians the lens shows (``aux_exit_pedestrian``, ``aux_pedestrian``, training
only; people behind leaves do not count), which took the F1 with a flagged PIR from 0.80 to 0.92 by
day and from 0.82 to 0.92 at dusk (``bench/fusion.py --breakdown``). At night it stays near 0.63: in
the rendered night frames a person at the kerb is as faint as the sensor noise, and a camera-only
network does no better.

The network is cut in two for the device (an early exit, as in ``kit.ml.early_exit``):

- the **stem** (frame, sensors -> ``exit_queue``, ``exit_pedestrian``, ``features``) is two cheap strided
  convolutions and a head on a coarse grid of them joined with the sensors: with working sensors and
  a plain frame it is sure, and the rest never runs;
- the **rest** (features, sensors -> ``queue``, ``pedestrian``) is the deeper part, run only when the
  stem is unsure (night, leaves, a sensor that disagrees with the picture).

    >>> from kit.ml.fusion import FusedHost  # doctest: +SKIP
    >>> host = FusedHost.load("fusion")                        # kit/models/fusion (int8 pair + card)  # doctest: +SKIP
    >>> r = host.predict(frame, sensors)                       # uint8 frame, kit.ml.sensors vector  # doctest: +SKIP
    >>> r.queue, r.pedestrian, r.exited  # doctest: +SKIP
    (2, True, True)

Training (``train_fused``, ``python bench/fusion.py --ship``) needs TensorFlow; hosting needs only a
TFLite runtime.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kit.ml import MODELS_DIR
from kit.ml.data import LONG_QUEUE
from kit.ml.sensors import DISTANCE_MAX_M, SENSORS
from kit.sim.world import CAR_SPACING_M, LANE_M

HEADS = ("queue", "pedestrian")
PART_FILES = {"float32": ("stem.tflite", "rest.tflite"), "int8": ("stem_int8.tflite", "rest_int8.tflite")}
WEIGHTS_FILE = "weights.npz"
"""The trained Keras weights beside the parts (float32, ``model.get_weights()`` order): what a retrain starts from."""


def build_fused(size: int = 64, *, seed: int = 0, width: int = 32, sensors: bool = True, camera: bool = True) -> Any:
    """The Keras fused model: inputs ``frame`` (size, size, 1) in 0..1 and ``sensors`` (6,); four heads.

    Outputs: ``exit_queue``, ``exit_pedestrian`` (the stem's heads) and ``queue``, ``pedestrian`` (the
    full network's), and ``aux_exit_leaves``, ``aux_leaves`` (share of the lens leaves hide; training
    only, not exported), ``aux_exit_pedestrian``, ``aux_pedestrian`` (someone at the kerb the lens shows,
    from the frame features alone; training only). ``camera=False`` or ``sensors=False`` build the ablations: the same network with
    one source cut off (its input is still taken, and ignored), so that every variant is hosted alike.
    """
    import keras

    if int(size) != size or size < 16 or size % 16:
        raise ValueError(f"size must be a multiple of 16 pixels, got {size!r}")
    keras.utils.set_random_seed(int(seed))
    L = keras.layers
    frame = keras.Input((size, size, 1), name="frame")
    vec = keras.Input((len(SENSORS),), name="sensors")
    s = L.Concatenate(name="sensor_features")([vec, L.Lambda(queue_from_distance, name="distance_classes")(vec)])
    s = L.Dense(16, activation="relu", name="sensor_dense")(s)
    if not sensors:  # the input stays (every variant is hosted alike); its values never reach the heads
        s = L.Lambda(lambda t: t * 0.0, name="no_sensors")(s)
    x = L.Conv2D(8, 3, strides=2, padding="same", activation="relu", name="stem1")(frame)
    features = L.Conv2D(16, 3, strides=2, padding="same", activation="relu", name="stem2")(x)
    # the exit head looks at a coarse grid (where along the lane and at which kerb something is)
    e = L.MaxPooling2D(4, name="exit_pool")(features)
    e = L.Flatten(name="exit_flat")(e)
    e_cam = e
    if not camera:
        e = L.Lambda(lambda t: t * 0.0, name="exit_no_camera")(e)
    e = L.Concatenate(name="exit_join")([e, s])
    e = L.Dense(32, activation="relu", name="exit_dense")(e)
    exit_queue = L.Dense(3, activation="softmax", name="exit_queue")(e)
    # trained on the share of the lens leaves hide: the frame features then say when the camera is hidden
    exit_leaves = L.Dense(1, activation="sigmoid", name="aux_exit_leaves")(L.Flatten(name="exit_grid")(features))
    exit_ped = L.Dense(1, activation="sigmoid", name="exit_pedestrian")(e)
    # trained on the pedestrian label from the frame alone: the camera features must find people by themselves,
    # not leave it to the PIR (with the PIR stuck or flagged, the head has only them)
    exit_cam_ped = L.Dense(1, activation="sigmoid", name="aux_exit_pedestrian")(e_cam)
    x = features
    for i, (filters, stride) in enumerate([(width, 1), (width, 2), (2 * width, 2)], start=1):
        x = L.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False, name=f"rest{i}")(x)
        x = L.BatchNormalization(momentum=0.9, name=f"rest{i}_bn")(x)
        x = L.ReLU(name=f"rest{i}_relu")(x)
    x = L.MaxPooling2D(2, name="rest_pool")(x)
    x = L.Flatten(name="rest_flat")(x)
    x = L.Dropout(0.3, name="rest_dropout")(x)  # 1024 camera features against 16 sensor ones: do not overfit the frame
    x = L.Dense(48, activation="relu", name="rest_dense")(x)
    camera_features = x
    if not camera:
        x = L.Lambda(lambda t: t * 0.0, name="rest_no_camera")(x)
    x = L.Concatenate(name="rest_join")([x, s])
    x = L.Dense(32, activation="relu", name="fused_dense")(x)
    queue = L.Dense(3, activation="softmax", name="queue")(x)
    ped = L.Dense(1, activation="sigmoid", name="pedestrian")(x)
    leaves = L.Dense(1, activation="sigmoid", name="aux_leaves")(camera_features)
    cam_ped = L.Dense(1, activation="sigmoid", name="aux_pedestrian")(camera_features)
    name = "fused" if camera and sensors else ("camera_only" if camera else "sensors_only")
    return keras.Model(
        {"frame": frame, "sensors": vec},
        {
            "exit_queue": exit_queue,
            "exit_pedestrian": exit_ped,
            "queue": queue,
            "pedestrian": ped,
            "aux_exit_leaves": exit_leaves,
            "aux_leaves": leaves,
            "aux_exit_pedestrian": exit_cam_ped,
            "aux_pedestrian": cam_ped,
        },
        name=name,
    )


# the distance reading (scaled by 2 m) half a car either side of the queue-class boundaries of kit.sim.world
_ONE_CAR = (LANE_M - 0.5 * CAR_SPACING_M) / DISTANCE_MAX_M
_LONG = (LANE_M - (LONG_QUEUE - 0.5) * CAR_SPACING_M) / DISTANCE_MAX_M
_NO_ECHO = (LANE_M + CAR_SPACING_M) / DISTANCE_MAX_M


def queue_from_distance(v: Any) -> Any:
    """Three 0..1 features of sensor vectors: at least one car, a long queue, no echo (0 while the sensor is flagged).

    The queue class the distance sensor implies, as the lab 02 queue detector reads it: thresholds
    half a car from the class boundaries, with a slope steep for the sensor's noise (0.5 cm) and
    smooth for the network. A dense layer on the raw reading learns such steps only slowly, and the
    fused network then followed the camera even with leaves on the lens, where this reading alone is
    right 98 % of the time.
    """
    import keras

    d, ok = v[:, 0:1], v[:, 4:5]
    steps = [(_ONE_CAR - d) * 100.0, (_LONG - d) * 100.0, (d - _NO_ECHO) * 100.0]
    return keras.ops.concatenate([keras.ops.sigmoid(t) * ok for t in steps], axis=1)


def train_fused(
    model: Any,
    data: Any,
    *,
    epochs: int = 10,
    seed: int = 0,
    batch_size: int = 64,
    learning_rate: float = 3e-3,
    progress: Callable[[str], None] | None = None,
) -> Any:
    """Train all four heads together (exit heads at half weight) on a fused ``Dataset``; returns the model."""
    import keras
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(int(seed))
    names = list(model.output_names)  # the heads and the leaves flags (aux_), which older models do not have
    steps = epochs * -(-len(data) // batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=max(steps, 1), alpha=0.05)
    model.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss={n: ("sparse_categorical_crossentropy" if n.endswith("queue") else "binary_crossentropy") for n in names},
        loss_weights={n: (0.25 if n.startswith("aux_") else 0.5 if n.startswith("exit_") else 1.0) for n in names},
    )

    class Progress(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            if progress:
                progress(f"epoch {epoch + 1}/{epochs}: loss {(logs or {}).get('loss', float('nan')):.3f}")

    ped = data.pedestrian.astype(np.float32)
    leaves = np.asarray(data.meta.get("leaves", np.zeros(len(data))), np.float32)
    # the frame features learn to find people the lens shows: behind leaves that is the PIR's job
    seen = ped * (leaves < 0.3)

    def target(name: str) -> np.ndarray:
        if name.endswith("queue"):
            return data.queue
        if name.endswith("pedestrian"):
            return seen if name.startswith("aux_") else ped
        return leaves

    model.fit(
        data.fused_inputs(),
        {n: target(n) for n in names},
        epochs=epochs,
        batch_size=batch_size,
        shuffle=True,
        verbose=0,
        callbacks=[Progress()],
    )
    return model


def architecture(model: Any, *, seed: int = 0) -> dict[str, Any]:
    """What :func:`build_fused` needs to rebuild `model` (a card's ``details.architecture``)."""
    names = {layer.name for layer in model.layers}
    return {
        "builder": "kit.ml.fusion.build_fused",
        "size": int(model.get_layer("stem1").input.shape[1]),
        "width": int(model.get_layer("rest1").filters),
        "seed": int(seed),
        "camera": "rest_no_camera" not in names,
        "sensors": "no_sensors" not in names,
    }


def save_weights(model: Any, folder: str | Path) -> dict[str, Any]:
    """Write `model`'s weights to ``FOLDER/weights.npz``; the card's ``keras_weights`` entry (file, sha256, size).

    float32, as trained: the file rebuilds the very network the parts were converted from (float16 would
    halve it and make every retrain start from another network than the shipped one).
    """
    from kit.ml.card import file_sha256

    path = Path(folder) / WEIGHTS_FILE
    np.savez_compressed(path, *[np.asarray(w, np.float32) for w in model.get_weights()])
    return {"file": path.name, "sha256": file_sha256(path), "size_bytes": path.stat().st_size}


def load_fused_keras(name_or_folder: str | Path = "fusion") -> Any:
    """The trained Keras fused model of a shipped (``kit/models/NAME``) or saved folder, from its card and weights.

        >>> from kit.ml.fusion import load_fused_keras  # doctest: +SKIP
        >>> model = load_fused_keras("fusion")          # kit/models/fusion/card.json + weights.npz  # doctest: +SKIP
        >>> sorted(model.output_names)[:2]  # doctest: +SKIP
        ['aux_exit_leaves', 'aux_exit_pedestrian']

    The weights file must be the one the card describes (sha256): a retrain from other weights would not
    start from the model the device runs.
    """
    from kit.ml.card import file_sha256

    folder = Path(name_or_folder)
    if not folder.is_dir():
        folder = MODELS_DIR / str(name_or_folder)
    card_file = folder / "card.json"
    if not card_file.exists():
        raise FileNotFoundError(f"no fused model card at {card_file}; give a folder like kit/models/fusion")
    details = json.loads(card_file.read_text()).get("details", {})
    weights, arch = details.get("keras_weights"), details.get("architecture")
    if not weights or not arch:
        raise ValueError(
            f"the card in {folder} lists no Keras weights (details.keras_weights, details.architecture); "
            "re-ship it with python bench/fusion.py --ship"
        )
    path = folder / weights["file"]
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing; the card lists it as the model's Keras weights")
    digest = file_sha256(path)
    if digest != weights["sha256"]:
        raise ValueError(f"{path.name} sha256 is {digest[:12]}..., the card says {weights['sha256'][:12]}...")
    model = build_fused(
        int(arch["size"]),
        seed=int(arch.get("seed", 0)),
        width=int(arch["width"]),
        camera=bool(arch.get("camera", True)),
        sensors=bool(arch.get("sensors", True)),
    )
    with np.load(path) as f:
        model.set_weights([f[f"arr_{i}"] for i in range(len(f.files))])
    return model


def split_fused(model: Any) -> tuple[Any, Any]:
    """Keras ``(stem, rest)`` sharing the weights of a :func:`build_fused` model."""
    import keras

    frame, vec = model.inputs[0], model.inputs[1]
    if frame.name.split(":")[0] != "frame":  # keras keeps dict inputs in sorted order
        frame, vec = vec, frame
    features = model.get_layer("stem2").output
    stem = keras.Model(
        {"frame": frame, "sensors": vec},
        {
            "exit_queue": model.get_layer("exit_queue").output,
            "exit_pedestrian": model.get_layer("exit_pedestrian").output,
            "features": features,
        },
        name="stem",
    )
    # the rest takes the features as a new input and replays the layers after them
    f_in = keras.Input(tuple(features.shape[1:]), name="features")
    s_in = keras.Input((len(SENSORS),), name="sensors")
    names = {layer.name for layer in model.layers}
    s = s_in
    if "distance_classes" in names:
        s = model.get_layer("sensor_features")([s_in, model.get_layer("distance_classes")(s_in)])
    s = model.get_layer("sensor_dense")(s)
    if "no_sensors" in names:
        s = model.get_layer("no_sensors")(s)
    x = f_in
    for i in (1, 2, 3):
        for suffix in ("", "_bn", "_relu"):
            x = model.get_layer(f"rest{i}{suffix}")(x)
    for name in ("rest_pool", "rest_flat", "rest_dropout", "rest_dense"):
        x = model.get_layer(name)(x)
    if "rest_no_camera" in names:
        x = model.get_layer("rest_no_camera")(x)
    x = model.get_layer("rest_join")([x, s])
    x = model.get_layer("fused_dense")(x)
    rest = keras.Model(
        {"features": f_in, "sensors": s_in},
        {"queue": model.get_layer("queue")(x), "pedestrian": model.get_layer("pedestrian")(x)},
        name="rest",
    )
    return stem, rest


def export_parts(
    model: Any,
    folder: str | Path,
    *,
    calibration: Any = None,
    variants: tuple[str, ...] = ("float32", "int8"),
    n_calibration: int = 300,
) -> dict[str, tuple[Path, Path]]:
    """Write the stem and rest ``.tflite`` parts of each variant to `folder` (int8 calibrated on `calibration`)."""
    from kit.ml import tflite

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "card.json").unlink(missing_ok=True)  # it describes the old files: hosts would refuse the new ones
    stem, rest = split_fused(model)
    out = {}
    for variant in variants:
        rep_stem = rep_rest = None
        if variant == "int8":
            if calibration is None:
                raise ValueError("int8 parts need calibration data: pass calibration=a fused Dataset (training frames)")
            pick = np.random.default_rng(0).choice(
                len(calibration), min(n_calibration, len(calibration)), replace=False
            )
            cal = calibration.subset(np.sort(pick)).fused_inputs()
            rep_stem = cal
            rep_rest = {"features": np.asarray(stem(cal)["features"]), "sensors": cal["sensors"]}
        stem_name, rest_name = PART_FILES[variant]
        tflite.convert(stem, variant, representative=rep_stem, path=folder / stem_name)
        tflite.convert(rest, variant, representative=rep_rest, path=folder / rest_name)
        out[variant] = (folder / stem_name, folder / rest_name)
    return out


@dataclass(frozen=True)
class FusedResult:
    """One answer of the fused host: probabilities, labels, whether the stem answered alone, and its time."""

    queue_probs: np.ndarray
    pedestrian_prob: float
    exited: bool
    confidence: float
    ms: float

    @property
    def queue(self) -> int:
        return int(np.argmax(self.queue_probs))

    @property
    def pedestrian(self) -> bool:
        return self.pedestrian_prob >= 0.5


def confidence(queue_probs: np.ndarray, pedestrian_prob: np.ndarray) -> np.ndarray:
    """How sure the stem is of both heads, 0.5..1: the lower of the top queue probability and max(p, 1 - p)."""
    q = np.asarray(queue_probs).reshape(-1, 3).max(axis=1)
    p = np.asarray(pedestrian_prob).reshape(-1)
    return np.minimum(q, np.maximum(p, 1.0 - p))


class FusedHost:
    """The fused model on the device: the stem on every frame, the rest only when the stem is unsure.

        >>> host = FusedHost.load("fusion", variant="int8")  # doctest: +SKIP
        >>> r = host.predict(frame, sensors)  # doctest: +SKIP
        >>> out = host.predict_batch(frames, sensor_rows)     # {"queue": (n, 3), "pedestrian": (n, 1), "exited": (n,)}  # doctest: +SKIP

    Both parts are ``kit.ml.host.ModelHost`` objects (``host.stem``, ``host.rest``), so the files are
    checked and int8 inputs/outputs are (de)quantized the same way as for any model. ``threshold``
    (0.5..1; above 1 = never exit) is the stem confidence from which its answer is taken.
    """

    def __init__(
        self, stem: str | Path | Any, rest: str | Path | Any, *, threshold: float = 0.95, num_threads: int = 1
    ) -> None:
        from kit.ml.host import ModelHost

        # paths, or ModelHost objects already loaded (e.g. from a delivered bundle, kit.ml.ota.bundle)
        self.stem = stem if isinstance(stem, ModelHost) else ModelHost(stem, num_threads=num_threads)
        self.rest = rest if isinstance(rest, ModelHost) else ModelHost(rest, num_threads=num_threads)
        self.path: Path = self.stem.path.parent  #: where it came from: its folder, or a delivered bundle's file
        self.card: dict[str, Any] | None = None  #: the card a delivered bundle came with (kit.ml.ota.bundle)
        if set(self.stem.output_names) != {"exit_queue", "exit_pedestrian", "features"}:
            raise ValueError(f"{self.stem.path.name} is not a fused stem (outputs {self.stem.output_names})")
        if self.rest.input.shape[1:] != self.stem.outputs["features"].shape[1:]:
            raise ValueError(
                f"{self.rest.path.name} takes {self.rest.input.shape[1:]} but the stem gives "
                f"{self.stem.outputs['features'].shape[1:]}: parts of different models"
            )
        self.threshold = float(threshold)

    @classmethod
    def load(cls, name_or_folder: str | Path = "fusion", *, variant: str = "int8", **kwargs: Any) -> FusedHost:
        """The parts of a shipped (``kit/models/NAME``) or saved folder; the card's threshold unless given."""
        folder = Path(name_or_folder)
        if not folder.is_dir():
            folder = MODELS_DIR / str(name_or_folder)
        if variant not in PART_FILES:
            raise ValueError(f"variant must be one of {sorted(PART_FILES)}, got {variant!r}")
        card = folder / "card.json"
        if "threshold" not in kwargs and card.exists():
            kwargs["threshold"] = json.loads(card.read_text())["details"]["threshold"]
        stem, rest = PART_FILES[variant]
        return cls(folder / stem, folder / rest, **kwargs)

    @property
    def size_bytes(self) -> int:
        return self.stem.size_bytes + self.rest.size_bytes

    def predict(self, frame: np.ndarray, sensors: np.ndarray) -> FusedResult:
        """One frame (uint8 or float 0..1) and its sensor vector."""
        t0 = time.perf_counter()
        out = self.stem.predict(frame, sensors=sensors)
        q, p = out["exit_queue"][0], float(out["exit_pedestrian"][0, 0])
        conf = float(confidence(q, p)[0])
        exited = conf >= self.threshold
        if not exited:
            final = self.rest.run(out["features"], sensors=np.asarray(sensors, np.float32).reshape(1, -1))
            q, p = final["queue"][0], float(final["pedestrian"][0, 0])
        return FusedResult(q, p, exited, conf, (time.perf_counter() - t0) * 1e3)

    def both(self, frames: np.ndarray, sensors: np.ndarray, batch_size: int = 128) -> dict[str, np.ndarray]:
        """Stem and full answers of many frames (both parts always run): what sweeps and figures use."""
        parts = []
        for i in range(0, len(frames), batch_size):
            s = np.asarray(sensors[i : i + batch_size], np.float32)
            out = self.stem.predict(frames[i : i + batch_size], sensors=s)
            final = self.rest.run(out["features"], sensors=s)
            parts.append(
                {
                    "exit_queue": out["exit_queue"],
                    "exit_pedestrian": out["exit_pedestrian"],
                    "queue": final["queue"],
                    "pedestrian": final["pedestrian"],
                }
            )
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    def predict_batch(self, frames: np.ndarray, sensors: np.ndarray) -> dict[str, np.ndarray]:
        """Early-exit answers of many frames: the stem's where it is sure, else the full network's."""
        both = self.both(frames, sensors)
        exited = confidence(both["exit_queue"], both["exit_pedestrian"]) >= self.threshold
        return {
            "queue": np.where(exited[:, None], both["exit_queue"], both["queue"]),
            "pedestrian": np.where(exited[:, None], both["exit_pedestrian"], both["pedestrian"]),
            "exited": exited,
        }


def calibrate(
    both: dict[str, np.ndarray], queue: np.ndarray, pedestrian: np.ndarray, *, max_loss: float = 0.005
) -> float:
    """The lowest exit threshold at which queue accuracy and pedestrian accuracy each stay within `max_loss` of the full model's."""
    queue, pedestrian = np.asarray(queue), np.asarray(pedestrian).astype(bool)
    full_q = both["queue"].argmax(axis=1) == queue
    stem_q = both["exit_queue"].argmax(axis=1) == queue
    full_p = (both["pedestrian"].reshape(-1) >= 0.5) == pedestrian
    stem_p = (both["exit_pedestrian"].reshape(-1) >= 0.5) == pedestrian
    conf = confidence(both["exit_queue"], both["exit_pedestrian"])
    for t in np.round(np.arange(0.5, 1.0001, 0.005), 3):
        out = conf >= t
        if (
            np.where(out, stem_q, full_q).mean() >= full_q.mean() - max_loss
            and np.where(out, stem_p, full_p).mean() >= full_p.mean() - max_loss
        ):
            return float(t)
    return 1.01  # never exit


# -- figures per condition, over fresh seeds ----------------------------------------------------

CONDITIONS = ("day", "dusk", "night", "leaves", "road_works", "stuck")
"""The conditions every fused figure is reported for (``kit.ml.data.FUSED_PRESETS``); ``stuck`` is one
sensor (distance or PIR) stuck at a wrong value without anyone knowing."""
MORE_CONDITIONS = ("stuck_flagged", "glare", "shake", "fog", "rain", "dirt")
EVAL_SEEDS = (20_001, 20_002, 20_003)
"""Seeds of the frames figures are measured on: never used by training, calibration or validation."""


def figures(
    predict: Callable[[Any], dict[str, np.ndarray]],
    *,
    conditions: tuple[str, ...] = CONDITIONS,
    seeds: tuple[int, ...] = EVAL_SEEDS,
    n: int = 300,
    size: int = 64,
    cache: dict | None = None,
) -> dict[str, dict[str, Any]]:
    """Queue accuracy and pedestrian F1 of `predict` (a fused Dataset -> {"queue", "pedestrian"}) per condition.

    Each condition is measured on `n` frames of each seed; the result holds an ``Interval`` (mean,
    lowest and highest seed) per metric. `cache` (a dict) keeps the rendered sets between calls.
    """
    from kit.ml.card import Interval, scores
    from kit.ml.data import make_fused_dataset

    out: dict[str, dict[str, Any]] = {}
    for condition in conditions:
        per_seed = []
        for seed in seeds:
            key = (condition, seed, n, size)
            if cache is None or key not in cache:
                data = make_fused_dataset(n, seed=seed, conditions=condition, size=size)
                if cache is not None:
                    cache[key] = data
            data = cache[key] if cache is not None else data
            got = predict(data)
            per_seed.append(scores(got["queue"], got["pedestrian"], data.queue, data.pedestrian))
        out[condition] = {m: Interval.of([s[m] for s in per_seed]) for m in ("queue_accuracy", "pedestrian_f1")}
    return out


def predictor(host: FusedHost, *, early_exit: bool = True) -> Callable[[Any], dict[str, np.ndarray]]:
    """A `figures` predictor for a host: its early-exit answers, or the full network's."""

    def predict(data: Any) -> dict[str, np.ndarray]:
        if early_exit:
            return host.predict_batch(data.x, data.sensors)
        both = host.both(data.x, data.sensors)
        return {"queue": both["queue"], "pedestrian": both["pedestrian"]}

    return predict


def exit_share(host: FusedHost, data: Any) -> float:
    """Share of frames of `data` the stem answers alone at the host's threshold."""
    return float(host.predict_batch(data.x, data.sensors)["exited"].mean())


# -- making the shipped model -----------------------------------------------------------------


def calibration_data(seed: int, n: int = 600) -> dict[str, Any]:
    """Frames of each condition of ``CONDITIONS`` for calibrating the exit threshold (`seed`: not an evaluation seed).

    600 per condition: on 200, half a point is one frame's noise, and the threshold calibrated on them let the
    early exit cost 1.3 points of queue accuracy with a stuck sensor on the evaluation seeds.
    """
    from kit.ml.data import make_fused_dataset

    return {c: make_fused_dataset(n, seed=seed, conditions=c) for c in CONDITIONS}


VARIANTS = ("sensors_only", "camera_only", "fused")


def make(
    folder: str | Path,
    *,
    seed: int = 0,
    n_train: int = 6000,
    n_val: int = 1000,
    epochs: int = 20,
    variant: str = "fused",
    progress: Callable[[str], None] | None = print,
    data: tuple[Any, Any] | None = None,
    calibration_sets: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train one variant on the whole day, export its float32 and int8 parts, calibrate the exit threshold.

    Training frames come from `seed`, validation (threshold calibration, int8 calibration check) from
    `seed + 1`; figures are measured elsewhere on ``EVAL_SEEDS``. `data` passes (train, validation)
    sets already made with those seeds, so several variants share them. The exit threshold is the
    highest of the thresholds calibrated on each condition of ``CONDITIONS`` (frames of `seed + 1`,
    `calibration_sets` when given): the early exit may cost at most half a point in any of them.
    Returns what the card needs.
    """
    import tensorflow as tf

    from kit.ml.data import make_fused_dataset
    from kit.ml.model import count_macs

    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    say = progress or (lambda _m: None)
    t0 = time.perf_counter()
    if data is None:
        data = (
            make_fused_dataset(n_train, seed=seed, conditions="train"),
            make_fused_dataset(n_val, seed=seed + 1, conditions="train"),
        )
    train, val = data
    t_data = time.perf_counter() - t0
    model = build_fused(seed=seed, camera=variant != "sensors_only", sensors=variant != "camera_only")
    say(f"{variant}: {model.count_params()} parameters, {n_train} frames of seed {seed}, {epochs} epochs")
    t1 = time.perf_counter()
    train_fused(model, train, epochs=epochs, seed=seed, progress=progress)
    t_train = time.perf_counter() - t1
    macs = count_macs(model)  # before the split: shared layers then have more than one caller
    paths = export_parts(model, folder, calibration=train)
    weights = save_weights(model, folder)
    host = FusedHost(*paths["int8"], threshold=1.01)
    if calibration_sets is None:
        calibration_sets = calibration_data(seed + 1)
    threshold = max(calibrate(host.both(v.x, v.sensors), v.queue, v.pedestrian) for v in calibration_sets.values())
    return {
        "paths": paths,
        "threshold": threshold,
        "params": int(model.count_params()),
        "macs": macs,
        "data_seconds": round(t_data, 1),
        "train_seconds": round(t_train, 1),
        "tensorflow": tf.__version__,
        "seed": seed,
        "n_train": n_train,
        "n_val": n_val,
        "epochs": epochs,
        "keras_weights": weights,
        "architecture": architecture(model, seed=seed),
    }

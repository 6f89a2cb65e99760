"""The cloud retrain of a fused model (camera + sensors, early exit): uploaded frames WITH their sensor vectors.

    kit model retrain --from-s3 kit-0001 --base fusion --out models [--deploy]
    ─► models/fusion-kit-0001-retrained/   card.json, stem.tflite, rest.tflite, stem_int8.tflite,
                                           rest_int8.tflite, weights.npz, stream_reference.json

The base's trained Keras network (``kit.ml.fusion.load_fused_keras``: its card's ``weights.npz``) is
fine-tuned with ``train_fused`` on the frames the device uploaded while drift alarmed, each with the sensor
vector of its moment, plus ``replay`` frames of the fused training distribution
(``make_fused_dataset(conditions="train")``, another seed than the base's) so that night, leaves and stuck
sensors are not forgotten. The parts are exported with ``export_parts`` (float32, and int8 calibrated on
the training frames). The exit threshold is the base's: calibrating a new one needs frames of every
condition the model must keep (``kit.ml.fusion.calibration_data``, 3600 frames), and the newest uploads
are held out to score the candidate, not to tune it; the card reports the share of held-out frames the
stem answers alone and what the early exit costs on them (``early_exit``).

A folder laid out like ``kit/models/fusion``: ``FusedHost.load(folder)`` hosts it, the app runs it
(``kit run intersection --model DIR``), ``kit.ml.ota.deploy.deploy(folder, device=...)`` sends it.

    >>> from kit.ml.ota.retrain import retrain_from_s3                               # doctest: +SKIP
    >>> card = retrain_from_s3("kit-0001", base="fusion", out="models", seed=0)       # doctest: +SKIP
    >>> card["details"]["metrics"]["queue_accuracy"], card["details"]["metrics_base"]["queue_accuracy"]  # doctest: +SKIP
    (0.99, 0.83)
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from kit.ml.ota.desired import DeployError

PEDESTRIAN_LABELS = {
    "base": "the base model's own pedestrian answer (full network) on each uploaded frame",
    "pir": "the device's PIR at the frame's moment",
}
"""What an uploaded frame's pedestrian target is. ``base`` (the default): the PIR is also an input of the fused
model, so a label copied from it teaches the pedestrian heads to copy the PIR, errors and all (on the diverted
works, ``bench/fused_retrain.py --pedestrian-labels pir`` prints what that costs against true labels); the uploads
then teach the queue (from the distance sensor) and keep the pedestrian heads where they were. ``pir``: when it is
the pedestrians the camera no longer sees (a moved crossing), the PIR is the only teacher there is."""
TRAIN_CONDITIONS = "train"
"""The fused training distribution (``kit.ml.data.FUSED_PRESETS``) that ``bench/fusion.py`` trains on and the replay draws."""


def retrain_fused(
    device: str,
    base: Path,
    *,
    out: str | Path,
    name: str | None,
    seed: int,
    epochs: int,
    replay: int,
    learning_rate: float,
    holdout: float,
    bucket: str | None,
    s3: Any,
    progress: Any,
    base_arg: str | Path,
    pedestrian_labels: str = "base",
) -> dict[str, Any]:
    """Fine-tune the fused model in folder `base` on `device`'s uploads; write ``OUT/NAME/``; return its card as a dict.

    Called by ``kit.ml.ota.retrain.retrain_from_s3`` (which checked the arguments); ``card["_path"]`` is the folder.
    ``pedestrian_labels``: what the uploads teach the pedestrian heads (see ``PEDESTRIAN_LABELS``).
    """
    from kit.ml.card import ModelCard, file_sha256, scores
    from kit.ml.data import Dataset, make_fused_dataset
    from kit.ml.fusion import PART_FILES, FusedHost, load_fused_keras
    from kit.ml.ota.retrain import REPLAY_SEED_OFFSET, download_frames, split_uploads
    from kit.ml.sensors import SENSORS

    say = progress or (lambda _msg: None)
    try:
        base_card = ModelCard.load(base)
    except (FileNotFoundError, ValueError) as exc:
        raise DeployError(f"base model: {exc}") from None
    arch = base_card.details.get("architecture")
    if not base_card.details.get("keras_weights") or not arch:
        raise DeployError(
            f"the fused base model {base_card.name!r} lists no Keras weights to fine-tune "
            "(details.keras_weights); re-ship it with python bench/fusion.py --ship, or give --base"
        )
    problems = base_card.check_files()
    if problems:
        raise DeployError(f"base model {base_card.name!r}: {problems[0]}; restore its folder")
    size = int(arch["size"])
    name = name or f"{base_card.name}-{device}-retrained"
    out = Path(out)
    folder = out / name
    if folder.exists() and not folder.is_dir():
        raise DeployError(f"{folder} is a file; give another --name or --out for the fused model's folder")
    if folder.resolve() == Path(base).resolve():
        raise DeployError(
            f"{folder} is the base model's own folder: give another --name or --out (it would be overwritten)"
        )
    data, keys = download_frames(device, bucket=bucket, s3=s3)
    if data.sensors is None:
        raise DeployError(
            f"the frames {device} uploaded carry no sensor vectors (in {data.meta.get('chunks_with_sensors', 0)} of "
            f"{len(keys)} chunks): a fused model learns from frame + sensors; give --base intersection to retrain "
            "the camera-only model"
        )
    if data.sensors.shape[1:] != (len(SENSORS),):
        raise DeployError(
            f"the uploaded sensor vectors have {data.sensors.shape[1:]} values; the base model reads "
            f"{len(SENSORS)} ({', '.join(SENSORS)})"
        )
    if data.x.shape[1:] != (size, size):
        raise DeployError(f"the device uploaded {data.x.shape[1:]} frames; the base model reads ({size}, {size})")
    fit_on, held = split_uploads(data, holdout, device)
    say(
        f"{len(data)} frames with sensor vectors from s3 (keys {len(keys)}): {len(fit_on)} to train on, "
        f"the newest {len(held)} held out"
    )
    base_seed = int(base_card.details.get("training", {}).get("seed", 0))
    replay_seed = base_seed + REPLAY_SEED_OFFSET + int(seed)

    import tensorflow as tf

    from kit.ml.fusion import export_parts, save_weights, train_fused
    from kit.ml.quiet import native_stderr

    try:
        model = load_fused_keras(base)
    except (FileNotFoundError, ValueError) as exc:
        raise DeployError(f"base model: {exc}") from None
    pedestrian = fit_on.pedestrian.astype(np.float32)
    if pedestrian_labels == "base":  # soft targets: the base's probability, as sure or unsure as it was
        pedestrian = np.asarray(model.predict(fit_on.fused_inputs(), batch_size=256, verbose=0)["pedestrian"])
        pedestrian = pedestrian.reshape(-1).astype(np.float32)
    # the uploads' leaves are unknown: 0, so the training-only leaves head learns nothing false from works frames
    # with a clear lens, and little from others (its loss weighs a quarter)
    uploaded = Dataset(
        fit_on.x, fit_on.queue, pedestrian, {"leaves": np.zeros(len(fit_on), np.float32)}, fit_on.sensors
    )
    if replay:
        old = make_fused_dataset(replay, seed=replay_seed, conditions=TRAIN_CONDITIONS, size=size)
        uploaded = Dataset(
            np.concatenate([uploaded.x, old.x]),
            np.concatenate([uploaded.queue, old.queue]),
            np.concatenate([uploaded.pedestrian, old.pedestrian.astype(np.float32)]),
            {"leaves": np.concatenate([uploaded.meta["leaves"], old.meta["leaves"]])},
            np.concatenate([uploaded.sensors, old.sensors.astype(np.float32)]),
        )
    t0 = time.perf_counter()
    with native_stderr():  # tf.data's native graph notes would reach the operator's terminal
        train_fused(model, uploaded, epochs=epochs, seed=seed, learning_rate=learning_rate, progress=progress)
    train_s = time.perf_counter() - t0

    paths = export_parts(model, folder, calibration=uploaded)  # int8 ranges of the frames it learned from
    weights = save_weights(model, folder)
    if (base / "stream_reference.json").exists():  # frame statistics of normal days: not the model's
        shutil.copyfile(base / "stream_reference.json", folder / "stream_reference.json")
    threshold = float(base_card.details.get("threshold", 0.95))
    files = [p.name for p in paths["int8"] + paths["float32"]]

    details: dict[str, Any] = {k: base_card.details[k] for k in ("fusion", "builder", "host") if k in base_card.details}
    details.update(
        {
            "threshold": threshold,
            "threshold_from": f"the base model {base_card.name!r} (not recalibrated)",
            "keras_weights": weights,
            "architecture": arch,
            "base": {"name": base_card.name, "sha256": dict(base_card.sha256)},
            "training": {
                "from": f"the Keras weights of {base_card.name}",
                "seed": seed,
                "epochs": epochs,
                "learning_rate": learning_rate,
                "train_seconds": round(train_s, 1),
                "tensorflow": tf.__version__,
                "int8_calibration": "the training frames (uploads and replay)",
            },
        }
    )
    data_card = {
        "uploaded": {
            "device": device,
            "frames": len(data),
            "trained_on": len(fit_on),
            "held_out": len(held),
            "labels": "queue: the class the device's distance sensor implied at the frame's moment; "
            f"pedestrian: {PEDESTRIAN_LABELS[pedestrian_labels]}; inputs: the frame and the sensor vector "
            "of the same moment",
            "pedestrian_labels": pedestrian_labels,
            "keys": keys,
        },
        "replay": {
            "generator": "kit.ml.data.make_fused_dataset",
            "n": replay,
            "seed": replay_seed,
            "conditions": TRAIN_CONDITIONS,
        },
    }
    if len(held):
        new = FusedHost(*paths["int8"], threshold=threshold)
        got = new.predict_batch(held.x, held.sensors)
        full = new.both(held.x, held.sensors)
        old_host = FusedHost.load(base, variant="int8")
        was = old_host.predict_batch(held.x, held.sensors)
        measured_on = f"the newest {len(held)} uploaded frames (int8 early exit)"
        details["metrics"] = {
            **scores(got["queue"], got["pedestrian"], held.queue, held.pedestrian),
            "measured_on": measured_on,
        }
        details["metrics_base"] = {
            **scores(was["queue"], was["pedestrian"], held.queue, held.pedestrian),
            "measured_on": measured_on,
        }
        full_s = scores(full["queue"], full["pedestrian"], held.queue, held.pedestrian)
        details["early_exit"] = {
            "exit_share": round(float(got["exited"].mean()), 3),
            "queue_accuracy_full_network": full_s["queue_accuracy"],
            "pedestrian_f1_full_network": full_s["pedestrian_f1"],
        }
        say(
            f"held-out uploaded frames: queue accuracy {details['metrics']['queue_accuracy']:.3f} "
            f"(base {details['metrics_base']['queue_accuracy']:.3f}), pedestrian F1 "
            f"{details['metrics']['pedestrian_f1']:.3f} (base {details['metrics_base']['pedestrian_f1']:.3f})"
        )
    else:
        details["metrics"] = {}
    card = ModelCard(
        name=name,
        task=base_card.task,
        files=files,
        sha256={f: file_sha256(folder / f) for f in files},
        size_bytes=sum((folder / f).stat().st_size for f in PART_FILES["int8"]),
        precision="int8",
        inputs=base_card.inputs,
        outputs=base_card.outputs,
        reproduce=f"kit model retrain --from-s3 {device} --base {base_arg} --seed {seed} --epochs {epochs} "
        f"--replay {replay} --learning-rate {learning_rate:g} --holdout {holdout:g} "
        f"--pedestrian-labels {pedestrian_labels} --out {out}",
        limitations=f"Fine-tuned from {base_card.name} on {len(fit_on)} frames of one device's scene, the queue "
        "labelled by its distance sensor, the pedestrian by "
        + ("the base model" if pedestrian_labels == "base" else "its PIR (also an input)")
        + "; no figures over fresh seeds per condition (the base's are in its card): the metrics are on the newest "
        "uploads, held out, against the sensors' labels. The exit threshold is the base's.",
        details=details,
        data=data_card,  # the device's app reads data.uploaded.device: its drift monitor then knows the uploads
        folder=folder,
    )
    card.save(folder / "card.json")
    say(f"wrote {folder} ({card.size_bytes} bytes int8) and its card")
    return {**json.loads((folder / "card.json").read_text()), "_path": str(folder)}

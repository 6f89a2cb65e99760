"""The app's model loop: camera frames through the hosted model, watched by a drift monitor.

A small object the app composes (it never imports the app). Which model it hosts is its own business:
``ModelLoop(options.model)`` loads the shipped early-exit host, a one-piece ``.tflite`` file, or nothing;
the control loop only asks :attr:`ModelLoop.queue_long` (is a long queue in view, and is the model trusted).
When a drift window alarms, its frames with the sensors' readings of the same moments go to
:attr:`ModelLoop.uploads` (an append); the app's cloud worker sends them to S3 for a retrain
(``kit model retrain --from-s3 DEVICE``), never the control thread.

    >>> from kit.apps.health import Health
    >>> from kit.apps.model_loop import ModelLoop
    >>> loop = ModelLoop(None, Health())
    >>> loop.load(); loop.active, loop.queue_long
    (False, False)
"""

from __future__ import annotations

import json
import logging
from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kit.apps.health import Health, short

log = logging.getLogger("kit.intersection")

#: frames of alarming drift windows waiting for the cloud worker; beyond this the oldest are dropped (a device
#: without its cloud for hours must not fill its memory)
MAX_UPLOADS = 1024


class ModelLoop:
    """Hosts the camera model. :meth:`look` takes one frame; returns the readings to log."""

    def __init__(
        self,
        model: str | None,
        health: Health,
        *,
        board: Any = None,
        simulated: bool = True,
        models_folder: str | None = None,
        thing_name: str | None = None,
        required: bool = False,
    ) -> None:
        self.model = model
        self.required = required  # a model the user named: not loading it is an error, not a fallback
        #: with a folder, models delivered over the air replace this one while it serves (kit.ml.ota.FieldModel);
        #: with a thing name too, the updater reads the shadow's desired.model itself
        self.models_folder = models_folder
        self.thing_name = thing_name
        self.field: Any = None
        self.health = health
        self.board = board  # the fused model reads the sensor vector from it
        self.simulated = simulated
        self._fused = False
        self._lights: list[float] = []
        self._hours: list[float] = []
        self.host: Any = None
        self.drift: Any = None
        self._early_exit = False
        self._frames: list[Any] = []
        self._confidences: list[Any] = []
        self.queue_class: int | None = None  # last predicted queue class (0 empty, 1 short, 2 long)
        self.pedestrian: float | None = None  # the last frame's pedestrian probability (a model with that head)
        self.drifting = False
        self._sensed: list[Any] = []  # the sensor vector at each frame of the current window
        #: (frame, queue class, pedestrian, sensor vector) of frames in alarming drift windows, labelled by the
        #: sensors at the frame's moment (distance: the queue class; PIR: a pedestrian); the cloud worker
        #: uploads them (kit.apps.cloud_link.CloudLink). Filled only when ``collect`` is True (the app with --cloud).
        self.uploads: deque = deque(maxlen=MAX_UPLOADS)
        self.collect = False
        #: a sample of the frames kept for upload, (frame, light reading, hour) (light and hour with a fused model,
        #: whose stream monitor bins by them): what a model retrained on this device's uploads also knows
        self._uploaded: deque = deque(maxlen=256)
        self._reference_frames: Any = None  # the trained conditions' frames the drift reference was built from
        self._factory_drift: Any = None
        self._drift_for: str | None = None  # sha256 of the delivered model the drift reference describes
        #: stuck-sensor flags from the sensors' history (kit.ml.stuck), fed to the fused model as distance_ok/pir_ok
        self.stuck: Any = None
        self._scored: int | None = None  # the queue class of a frame scored since the last watch()
        self.flag_log: list[tuple[str, float]] = []  #: (sensor, intersection seconds) of every stuck flag raised

    @property
    def active(self) -> bool:
        return self.host is not None

    @property
    def trusted(self) -> bool:
        """The camera model is used for control only while the drift monitor sees familiar frames."""
        return self.host is not None and not self.drifting

    @property
    def queue_long(self) -> bool:
        return self.trusted and self.queue_class is not None and self.queue_class >= 2

    @property
    def pedestrian_seen(self) -> bool:
        """A trusted model's last frame showed someone waiting (its ``pedestrian`` head, 0.5 and above)."""
        return self.trusted and self.pedestrian is not None and self.pedestrian >= 0.5

    def load(self) -> None:
        """The camera model: the two-part early-exit host (a folder) or a one-piece ``.tflite`` model."""
        if not self.model:
            return
        try:
            from kit.ml import MODELS_DIR, shipped_model

            path = Path(self.model)
            if not path.exists() and (MODELS_DIR / self.model).is_dir():
                path = MODELS_DIR / self.model
            if path.is_dir() and (path / "stem_int8.tflite").exists():
                from kit.ml.fusion import FusedHost
                from kit.ml.stream_drift import StreamMonitor, StreamReference

                self.host = FusedHost.load(path, variant="int8", num_threads=1)
                self._fused = True
                self.health.model = (
                    f"{path.name} (camera + sensors, int8 early exit, threshold {self.host.threshold:.2f})"
                )
                try:  # normal frames of the same light and hour (bench/drift.py --stream --save-reference)
                    self.drift = StreamMonitor(StreamReference.load(path / "stream_reference.json"))
                    self._factory_drift = self.drift
                except Exception as exc:  # noqa: BLE001 - drift monitoring is advisory
                    log.warning("drift monitor off (%s)", exc)
                if self.models_folder:
                    self._start_field()
                return
            if path.is_dir():
                from kit.ml.early_exit import EarlyExitHost

                self.host = EarlyExitHost.load(path, num_threads=1)
                self._early_exit = True
                card_path = path / "card.json"
                card = json.loads(card_path.read_text()) if card_path.exists() else {}
                conditions = card.get("data", {}).get("conditions")
                self.health.model = f"{path.name} (early exit, threshold {self.host.threshold:.2f})"
            else:
                from kit.ml.host import ModelHost

                if path.suffix != ".tflite":
                    path = shipped_model(self.model)
                self.host = ModelHost(path, num_threads=1)
                card_path = path.with_suffix(".json")
                card = json.loads(card_path.read_text()) if card_path.exists() else {}
                conditions = card.get("data", {}).get("train", {}).get("conditions")
                self.health.model = path.name
        except Exception as exc:  # noqa: BLE001 - the intersection must run without its model
            if self.required:
                from kit.errors import KitRuntimeError

                raise KitRuntimeError(
                    f"model {self.model!r} could not be loaded ({exc}); give a working model, or --no-model to "
                    "control from the sensors only"
                ) from None
            log.warning("model not loaded (%s); controlling from the sensors only", exc)
            self.host = None
            self.health.model = None
            return
        if self.models_folder:
            self._start_field()
        try:
            import numpy as np

            from kit.ml.data import make_dataset
            from kit.ml.drift import DriftMonitor, Reference

            # Frames of the conditions the model was trained on (its card): the monitor says when the camera
            # leaves them.
            reference = make_dataset(256, seed=9_001, conditions=_as_ranges(conditions))
            probs = np.stack([self._predict(frame)[0] for frame in reference.x])
            # A window of 64 consecutive frames sees one light level, while the reference spans the whole trained
            # range of daylight: the intensity tests (PSI, KS) would flag every window of a normal day. On the
            # stream the app trusts the scene layout and the model's own confidence (night and leaves lower it).
            self.drift = DriftMonitor(
                Reference.from_frames(reference.x, probs), psi_threshold=float("inf"), ks_p_threshold=0.0
            )
            self._reference_frames, self._factory_drift = reference.x, self.drift
        except Exception as exc:  # noqa: BLE001 - drift monitoring is advisory
            log.warning("drift monitor off (%s)", exc)
            self.drift = None

    def watch(self, t: float) -> None:
        """One sensor sample (every ``sample_period_s``): the stuck-sensor watch reads the distance, the PIR and
        the walk light, with the queue class of any frame scored since. Only with a fused model on a board."""
        if not self._fused or self.board is None:
            return
        from kit.ml.sensors import _read
        from kit.ml.stuck import StuckSensors

        if self.stuck is None:
            self.stuck = StuckSensors()
        b = self.board  # the queue class scored is the fused model's; it follows the camera when they disagree
        was = (self.stuck.distance_ok, self.stuck.pir_ok)
        self.stuck.update(
            t,
            distance_m=_read(lambda: b.distance.distance),
            pir=_read(lambda: b.pir.motion_detected),
            walk=bool(b.ped_light.green.is_lit),
            queue_class=self._scored,
        )
        self._scored = None
        now = (self.stuck.distance_ok, self.stuck.pir_ok)
        if now != was:
            for name, w, n in zip(("distance", "pir"), was, now):
                if w and not n:
                    self.flag_log.append((name, float(t)))
                    self.health.sensor_flags += 1
            self.health.sensors = self.stuck.status()
            log.info("sensors: %s", self.health.sensors)

    def sensor_ok(self, name: str) -> bool:
        """False while the stuck-sensor watch flags ``name`` ("distance" or "pir"); the control loop then leaves
        it out (an attribute read: the watch runs on the sampling tick)."""
        return self.stuck is None or bool(getattr(self.stuck, f"{name}_ok"))

    def _vector(self) -> Any:
        """The sensor vector the fused model reads now: a sensor the stuck watch flags goes in as failed."""
        from kit.ml.sensors import vector_from_board

        if self.stuck is None:
            return vector_from_board(self.board)
        return vector_from_board(self.board, distance_ok=self.stuck.distance_ok, pir_ok=self.stuck.pir_ok)

    def _start_field(self) -> None:
        try:
            from kit.ml.ota.field import FieldModel

            # the model committed by an earlier delivery (if any) runs from now; checks, loading and the canary
            # happen on the updater's thread, the swap inside _predict, between two frames
            self.field = FieldModel(self.host, self.models_folder, thing_name=self.thing_name).start()
            self._took(self.field.host)
        except Exception as exc:  # noqa: BLE001 - over-the-air updates are optional
            log.warning("over-the-air models off (%s)", short(exc))
            self.field = None

    def _took(self, host: Any) -> None:
        """A delivered model (or the configured one again, after a rollback) scores frames from now on."""
        if host is not self.host:
            self.host = host
            version = self.field.status()["version"]
            self.health.model = f"{version} (over the air)" if version != "factory" else self.health.model

    def _predict(self, frame: Any) -> tuple[Any, float | None, bool]:
        """(queue probabilities, pedestrian probability or None, exited early) for one frame."""
        if self.field is not None:
            # the vector goes with every frame that has a board to read: a fused candidate's canary needs it too
            sensors = self._vector() if self.field.fused else self._sensors()
            probs, pedestrian, exited, _ = self.field.predict(frame, sensors)
            self._took(self.field.host)
            return probs, pedestrian, exited
        if self._fused:
            r = self.host.predict(frame, self._vector())
            return r.queue_probs, r.pedestrian_prob, r.exited
        if self._early_exit:
            result = self.host.predict(frame)
            return result.probs, None, result.exited
        out = self.host.predict(frame)
        return out["queue"][0], float(out["pedestrian"][0][0]), False

    def look(self, camera: Any, ts: float) -> list[tuple[str, float, float]]:
        """One frame from ``camera`` (a callable returning a frame) through the model; readings to log."""
        rows: list[tuple[str, float, float]] = []
        try:
            frame = camera()
        except Exception as exc:  # noqa: BLE001 - no camera (unplugged, picamera2 missing): keep the lights going
            log.warning("camera failed (%s); controlling from the sensors only", short(exc))
            self.host = None
            self.health.model = f"off: camera failed ({short(exc)})"
            return rows
        probs, pedestrian, exited = self._predict(frame)
        if self.collect and self.drift is not None:
            self._sensed.append(self._sensors())
        self.queue_class = int(probs.argmax())
        self.pedestrian = pedestrian
        self._scored = self.queue_class
        rows.append(("model_queue_class", float(self.queue_class), ts))
        if pedestrian is not None:
            rows.append(("model_pedestrian", round(pedestrian, 4), ts))
        self._follow_delivery()
        self.health.frames += 1
        self.health.early_exits += int(exited)
        self.health.model_in_use_frames += int(self.trusted)
        if self._fused and self.drift is not None:
            rows.extend(self._stream_drift(frame, ts))
        elif self.drift is not None:
            self._frames.append(frame)
            self._confidences.append(probs)
            if len(self._frames) >= 64:
                import numpy as np

                report = self.drift.check(np.stack(self._frames), np.stack(self._confidences))
                self.drifting = report.drift
                if self.field is not None:
                    self.field.note_drift(report.drift)
                self.health.drift_windows += 1
                self.health.drift_alarms += int(report.drift)
                self.health.drift = ("DRIFT: " + "; ".join(report.reasons)) if report.drift else "ok"
                if report.drift:
                    log.info("drift: %s; controlling from the sensors until the frames look familiar", report)
                    self._keep_for_upload()
                rows.append(("drift_alarm", 1.0 if report.drift else 0.0, ts))
                self._frames.clear()
                self._confidences.clear()
                self._sensed.clear()
        return rows

    def _sensors(self) -> Any:
        """The sensor vector now (kit.ml.sensors), or None without a board to read."""
        if self.board is None:
            return None
        try:
            return self._vector()
        except Exception:  # noqa: BLE001 - a sensor that cannot be read leaves this frame unlabelled
            return None

    def _keep_for_upload(self) -> None:
        """The alarming window's frames with their sensor labels, for the cloud worker (appends only)."""
        if not self.collect:
            return
        from kit.ml.sensors import DISTANCE_MAX_M, queue_class_from_distance

        lights = self._lights if self._fused else [None] * len(self._frames)
        hours = self._hours if self._fused else [None] * len(self._frames)
        for frame, sensed, light, hour in zip(self._frames, self._sensed, lights, hours):
            if sensed is None or min(sensed[4], sensed[5]) < 0.5:
                continue  # unreadable, or a sensor flagged stuck: its reading is no label
            queue = queue_class_from_distance(float(sensed[0]) * DISTANCE_MAX_M)
            self.uploads.append((frame, queue, int(sensed[1] > 0.5), sensed))
            self._uploaded.append((frame, light, hour))

    def _follow_delivery(self) -> None:
        """After a delivered model is confirmed, the drift monitor learns what that model was trained on.

        A model retrained on this device's uploads (its card names this device under ``data.uploaded``) knows the
        scenes that alarmed: frames like them are no longer drift, so the camera is trusted for control again.
        Any other delivered model keeps the configured model's reference, and a rollback brings it back. The new
        reference (a file read and a few hundred inferences) is built on a thread of its own; the control thread
        only reads the status here and later takes the new monitor (an attribute). The sample of uploaded frames
        is kept beside the model's file (``blobs/<sha256>.uploads.npz``), so a restart finds it again."""
        if self.field is None or self._factory_drift is None:
            return
        status = self.field.status()
        sha = status["sha256"]
        if sha is None:  # the configured model (again, after a rollback): its own reference
            if self._drift_for is not None:
                self.drift, self._drift_for = self._factory_drift, None
            return
        # in probation the new model is not confirmed yet; a committed one found at a start was
        if status["phase"] == "probation" or sha == self._drift_for:
            return
        self._drift_for = sha
        import threading

        sample = list(self._uploaded)
        threading.Thread(target=self._rebase_drift, args=(sha, sample), name="kit-drift-ref", daemon=True).start()

    def _rebase_drift(self, sha: str, uploaded: list[Any]) -> None:
        try:
            import numpy as np

            slots = self.field.updater.slots
            card = json.loads(slots.card(sha).read_text())
            trained_on = ((card.get("data") or {}).get("uploaded") or {}).get("device")
            if trained_on != self.thing_name:
                return  # not retrained on this device's frames: the configured model's reference still says normal
            sample = slots.blobs / f"{sha}.uploads.npz"
            if uploaded:
                frames = np.stack([u[0] for u in uploaded])
                light = np.array([np.nan if u[1] is None else u[1] for u in uploaded], np.float32)
                hour = np.array([np.nan if u[2] is None else u[2] for u in uploaded], np.float32)
                tmp = sample.with_name(f".{sample.name}.tmp")
                with open(tmp, "wb") as f:
                    np.savez_compressed(f, frames=frames, light=light, hour=hour)
                tmp.replace(sample)
            elif sample.exists():  # after a restart
                with np.load(sample) as f:
                    frames = f["frames"]
                    light = f["light"] if "light" in f.files else np.full(len(frames), np.nan, np.float32)
                    hour = f["hour"] if "hour" in f.files else np.full(len(frames), np.nan, np.float32)
            else:
                return
            uploads = self._uploads_monitor(sha, frames, light, hour)
            if uploads is None:
                return
            if self._drift_for == sha:
                self.drift = FamiliarToAny(self._factory_drift, uploads)
                log.info(
                    "drift reference now includes the %d uploaded frames %s was retrained on", len(frames), sha[:12]
                )
        except Exception as exc:  # noqa: BLE001 - drift monitoring is advisory
            log.warning("drift reference not rebuilt for the delivered model (%s)", short(exc))

    def _uploads_monitor(self, sha: str, frames: Any, light: Any, hour: Any) -> Any:
        """A drift monitor whose normal is the uploaded sample: the stream monitor's statistics per light and hour
        (a fused model), or the layout and confidence reference of the camera model's own answers."""
        import numpy as np

        if self._fused:
            from kit.ml.stream_drift import StreamMonitor, StreamReference

            known = np.isfinite(light) & np.isfinite(hour)
            reference = StreamReference.from_frames(frames[known], light[known], hour[known]) if known.any() else None
            if reference is None or not reference.bins:
                return None  # too few frames in every light level to say what normal looks like
            return StreamMonitor(reference)
        from kit.ml.drift import DriftMonitor, Reference
        from kit.ml.ota.verify import load_host, queue_of

        host = load_host(self.field.updater.slots.blob(sha))  # its own interpreter, not the loop's
        if not hasattr(host, "outputs"):
            return None  # a fused bundle on a camera-model app: no sensor vectors in the sample to score it with
        probs = np.stack([queue_of(host, frame) for frame in frames])
        return DriftMonitor(Reference.from_frames(frames, probs), psi_threshold=float("inf"), ks_p_threshold=0.0)

    def close(self) -> None:
        """Stop the over-the-air updater's thread (the committed model stays on disk)."""
        if self.field is not None:
            self.field.close()

    def _stream_drift(self, frame: Any, ts: float) -> list[tuple[str, float, float]]:
        """Windows of 16 frames against normal frames of the same light reading and hour (kit.ml.stream_drift)."""
        import numpy as np

        # simulated time is stored as UTC epochs of the world's local clock; on a Pi, ts is real time
        now = datetime.fromtimestamp(ts, UTC) if self.simulated else datetime.fromtimestamp(ts)
        self._frames.append(frame)
        self._lights.append(float(self.board.light_sensor.value))
        self._hours.append(now.hour + now.minute / 60)
        if len(self._frames) < 16:
            return []
        report = self.drift.check(np.stack(self._frames), light=np.array(self._lights), hour=np.array(self._hours))
        self.drifting = report.drift
        if self.field is not None:
            self.field.note_drift(report.drift)
        self.health.drift_windows += 1
        self.health.drift_alarms += int(report.drift)
        self.health.drift = ("DRIFT: " + "; ".join(report.reasons)) if report.drift else "ok"
        if report.drift:
            log.info("drift: %s; controlling from the sensors until the frames look normal again", report)
            self._keep_for_upload()
        self._frames.clear()
        self._lights.clear()
        self._hours.clear()
        self._sensed.clear()
        return [("drift_alarm", 1.0 if report.drift else 0.0, ts)]


class FamiliarToAny:
    """Drift only when a window is unlike every reference: the trained conditions, or the uploaded frames a
    delivered model was retrained on (the works as the new normal, and the old scenes still normal after them)."""

    def __init__(self, *monitors: Any) -> None:
        self.monitors = monitors

    def check(self, frames: Any, *args: Any, **kwargs: Any) -> Any:
        """Each monitor's ``check`` with the same arguments: the first normal report, else the first's."""
        reports = [m.check(frames, *args, **kwargs) for m in self.monitors]
        return next((r for r in reports if not r.drift), reports[0])


def _as_ranges(conditions: Any) -> Any:
    # Cards store ranges as JSON lists; make_dataset takes (low, high) tuples or single values.
    if not isinstance(conditions, dict):
        return None
    return {k: tuple(v) if isinstance(v, list) else v for k, v in conditions.items()}

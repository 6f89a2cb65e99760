"""The smart-intersection edge app: everything the course teaches, running as one program.

Each tick (one second of intersection time) data flows one way::

    Board sensors ──► kit.store readings (+ outbox) ──► cloud: S3 batches, shadow, MQTT
         │                                                      │ (desired parameters)
    camera ──► hosted model (queue, pedestrian) ──► drift monitor
         └──────────────► adaptive controller ◄── kit.store parameters ◄─┘

In simulation (anywhere but a Pi) time runs as fast as the machine allows, or in real time with
``realtime=True``; on a Pi the pins are real and time is real. The cloud is optional: without it the
readings wait in the outbox, which is the point of store-and-forward.

    >>> from kit.store import Store
    >>> from kit.apps.intersection import AppOptions, IntersectionApp
    >>> app = IntersectionApp(Store(":memory:"), AppOptions(seed=0, hours=0.1, model=None))
    >>> summary = app.run()
    >>> summary["vehicles_served"] > 0
    True
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kit.apps.status import write_status
from kit.control.adaptive import AdaptiveController, AdaptiveTimings

log = logging.getLogger("kit.intersection")

#: Sensors the app logs, each a function of the board (names are the readings' sensor names).
SENSORS = ("queue_distance_m", "light", "road_temperature_c", "cpu_temperature_c", "pot")


@dataclass
class AppOptions:
    """How the app runs. Parameters that an operator tunes (timings, sample period...) live in the store."""

    seed: int = 0
    start: str = "2026-10-15T00:00:00"  #: simulated start (ignored on a Pi and when resuming)
    hours: float | None = None  #: stop after this long (None: until stopped)
    realtime: bool = False  #: simulation at wall-clock speed instead of as fast as possible
    leaves: float = 0.0
    road_works: bool = False
    #: shipped model name ("fusion": camera + sensors, int8 early exit; "early_exit": camera two-part host;
    #: "intersection": one piece), a .tflite file or a model folder; None: sensors only
    model: str | None = "fusion"
    #: who ends the car green: "adaptive" (the kit's rule, kit.control.adaptive.actuated_policy) or "learned" (the
    #: shipped deep-RL policy, kit/models/signal_policy.tflite, run by ModelHost; lab 10)
    controller: str = "adaptive"
    #: where the traffic comes from in simulation: "kit" (kit.sim.world.World) or "sumo" (kit.sim.sumo.cosim.SumoWorld,
    #: needs the [sumo] extra): the same pins and controllers drive SUMO's signals
    traffic: str = "kit"
    camera_period_s: float = 10.0
    sync_period_s: float = 60.0
    cloud: bool = False  #: upload, shadow and telemetry (endpoint from the environment, kit.cloud)
    mqtt: bool = True  #: with the cloud: telemetry over MQTT too
    resume: bool = True  #: continue simulated time from the newest stored reading
    status_path: str | None = None  #: where `kit status` reads health (default: next to the store)
    flush_every_s: float = 60.0  #: readings are written in batches (one transaction each)
    final_sync_s: float = 30.0  #: at the end, keep sending the outbox for at most this long (wall clock)
    sample_period_s: float | None = None  #: overrides the stored sample_period_s for this run (None: the store's)
    lease_s: float = 10.0  #: outbox lease while a batch is in flight (a crashed run's batch returns after it)


@dataclass
class Health:
    """What `kit status` shows."""

    pid: int = field(default_factory=os.getpid)
    state: str = "starting"
    started: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    uptime_s: float = 0.0
    intersection_time: str = ""
    simulated: bool = True
    outbox_depth: int = 0
    readings: int = 0
    last_sync: str | None = None
    last_sync_error: str | None = None
    circuit: str = "closed"
    uploaded: int = 0
    telemetry_sent: int = 0
    telemetry_pending: int = 0
    shadow_applied: dict[str, Any] = field(default_factory=dict)
    shadow_rejected: dict[str, str] = field(default_factory=dict)
    model: str | None = None
    frames: int = 0
    early_exits: int = 0
    model_in_use_frames: int = 0  #: frames whose answer the controller could use (model loaded, no drift alarm)
    model_in_use: str = ""  #: the same as a share of the frames, for `kit status`
    drift: str = "no data"
    drift_windows: int = 0
    drift_alarms: int = 0
    vehicles_served: int = 0
    mean_vehicle_wait_s: float = 0.0


class IntersectionApp:
    """Runs the intersection: :class:`~kit.board.Board` → store → model → control → cloud → drift.

    :param store: the device's :class:`kit.store.Store` (parameters, readings, outbox).
    :param options: :class:`AppOptions`.
    :param board: a board to drive; by default one is made (simulated unless on a Pi).
    """

    def __init__(self, store: Any, options: AppOptions | None = None, *, board: Any = None) -> None:
        self.store = store
        self.options = options or AppOptions()
        self.stop_event = threading.Event()
        self.health = Health()
        self._own_board = board is None
        policy = self._policy()  # a wrong choice fails before any board or file is made
        self.board = board if board is not None else self._make_board()
        self.simulated = getattr(self.board, "world", None) is not None
        self.health.simulated = self.simulated
        params = store.params.all()
        self.controller = AdaptiveController(
            self.board,
            AdaptiveTimings.from_params(params),
            policy=policy,
            queue_threshold_m=params["queue_threshold_m"],
            queue_hysteresis_m=params["queue_hysteresis_m"],
            night_daylight=params["night_daylight"],
            queue_source=self._queue_now,
            wait=self._wait,
        )
        self.host: Any = None
        self.drift: Any = None
        self._frames: list[Any] = []
        self._confidences: list[float] = []
        self._model_queue: int | None = None  # last predicted queue class (0 empty, 1 short, 2 long)
        self._drifting = False
        self._early_exit = False
        self._fused = False
        self._lights: list[float] = []
        self._hours: list[float] = []
        self._ultrasonic_queue = False
        self._rows: list[tuple[str, float, float]] = []
        self._cloud: dict[str, Any] = {}
        self._wall_start = time.monotonic()

    # --- set-up ---------------------------------------------------------------------------------
    def _policy(self) -> Any:
        if self.options.controller == "learned":
            from kit.control.learned import adaptive_policy

            return adaptive_policy()
        from kit.control.plugin import is_plugin, load_policy

        if is_plugin(self.options.controller):
            return load_policy(self.options.controller)  # a controller of your own (lab 09)
        if self.options.controller != "adaptive":
            from kit.errors import UsageError

            raise UsageError(
                f"controller={self.options.controller!r}: choose 'adaptive' or 'learned', "
                "or module:Class for a controller of your own"
            )
        from kit.control.adaptive import actuated_policy

        return actuated_policy

    def _make_board(self) -> Any:
        from kit.board import Board
        from kit.pins import choose_factory

        choice = choose_factory()
        if not choice.simulated:
            return Board(pin_factory=choice.factory)
        from kit.sim.world import World

        start = self._resume_time() or self.options.start
        if self.options.traffic == "sumo":
            from kit.sim.sumo.cosim import SumoWorld

            hours = self.options.hours if self.options.hours is not None else 24.0
            world = SumoWorld(
                seed=self.options.seed,
                start=start,
                hours=hours,
                leaves=self.options.leaves,
                road_works=self.options.road_works,
            )
            return Board(world, pin_factory=choice.factory)
        if self.options.traffic != "kit":
            from kit.errors import UsageError

            raise UsageError(f"traffic={self.options.traffic!r}: choose 'kit' (the kit's world) or 'sumo'")
        world = World(
            seed=self.options.seed, start=start, leaves=self.options.leaves, road_works=self.options.road_works
        )
        return Board(world, pin_factory=choice.factory)

    def _resume_time(self) -> str | None:
        if not self.options.resume:
            return None
        last = self.store.readings.latest("queue_distance_m")
        if last is None:
            return None
        # Readings carry simulated UTC epochs; the world runs in naive local time of the same clock.
        return datetime.fromtimestamp(float(last["ts"]) + 1.0, UTC).replace(tzinfo=None).isoformat()

    def _load_model(self) -> None:
        """The camera model: the two-part early-exit host (a folder) or a one-piece ``.tflite`` model."""
        if not self.options.model:
            return
        try:
            import json

            from kit.ml import MODELS_DIR, shipped_model

            path = Path(self.options.model)
            if not path.exists() and (MODELS_DIR / self.options.model).is_dir():
                path = MODELS_DIR / self.options.model
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
                except Exception as exc:  # noqa: BLE001 - drift monitoring is advisory
                    log.warning("drift monitor off (%s)", exc)
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
                    path = shipped_model(self.options.model)
                self.host = ModelHost(path, num_threads=1)
                card_path = path.with_suffix(".json")
                card = json.loads(card_path.read_text()) if card_path.exists() else {}
                conditions = card.get("data", {}).get("train", {}).get("conditions")
                self.health.model = path.name
        except Exception as exc:  # noqa: BLE001 - the intersection must run without its model
            log.warning("model not loaded (%s); controlling from the sensors only", exc)
            self.host = None
            self.health.model = None
            return
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
        except Exception as exc:  # noqa: BLE001 - drift monitoring is advisory
            log.warning("drift monitor off (%s)", exc)
            self.drift = None

    def _predict(self, frame: Any) -> tuple[Any, float | None, bool]:
        """(queue probabilities, pedestrian probability or None, exited early) for one frame."""
        if self._fused:
            from kit.ml.sensors import vector_from_board

            r = self.host.predict(frame, vector_from_board(self.board))
            return r.queue_probs, r.pedestrian_prob, r.exited
        if self._early_exit:
            result = self.host.predict(frame)
            return result.probs, None, result.exited
        out = self.host.predict(frame)
        return out["queue"][0], float(out["pedestrian"][0][0]), False

    def _start_cloud(self) -> None:
        if not self.options.cloud:
            return
        from kit.cloud.shadow import ShadowAgent
        from kit.cloud.sync import CircuitBreaker, Sync

        device = self.store.params.get("device_id")
        self._cloud["sync"] = Sync(
            self.store,
            breaker=CircuitBreaker(failures_to_open=2, open_seconds=5.0),
            lease_seconds=self.options.lease_s,
            seed=self.options.seed,
        )
        shadow = ShadowAgent(self.store, thing_name=device, on_change=self._parameters_changed)
        self._cloud["shadow"] = shadow
        try:
            self._announce(shadow)
        except Exception as exc:  # noqa: BLE001 - the cloud may be down at start; retried at each sync
            log.warning("shadow not reachable yet (%s)", _short(exc))
            self._cloud["needs_announce"] = True
        self._cloud["shadow"] = shadow
        if self.options.mqtt:
            from kit.cloud.config import current
            from kit.cloud.mqtt import Telemetry

            cfg = current()
            self._cloud["telemetry"] = Telemetry.from_config(cfg.with_(device_id=device)).start()

    @staticmethod
    def _announce(shadow: Any) -> None:
        """Report the parameters. Provisioning the thing is an operator's step on AWS (docs/cloud.md);
        against the local endpoint the app does it itself the first time."""
        from kit.cloud.config import current

        try:
            shadow.report()
        except Exception as exc:  # noqa: BLE001
            missing = type(exc).__name__ == "ResourceNotFoundException" or "ResourceNotFound" in str(exc)
            if not (missing and current().local):
                raise
            shadow.provision()

    # --- time and inputs -----------------------------------------------------------------------
    def _wait(self, seconds: float) -> None:
        if self.simulated:
            if self.options.realtime:
                time.sleep(seconds)
            self.board.world.advance(seconds)
        else:
            self.stop_event.wait(seconds)

    def now(self) -> float:
        """Intersection time as a UTC epoch (simulated time in simulation)."""
        if self.simulated:
            return self.board.world.now.replace(tzinfo=UTC).timestamp()
        return time.time()

    def _queue_now(self) -> bool:
        # The ultrasonic sensor sees the stop line; the camera sees the whole approach. Either one is enough.
        distance = self.board.distance.distance
        p = self.store.params
        if self._ultrasonic_queue:
            self._ultrasonic_queue = distance < p.get("queue_threshold_m") + p.get("queue_hysteresis_m")
        else:
            self._ultrasonic_queue = distance < p.get("queue_threshold_m")
        return self._ultrasonic_queue or (
            self.model_trusted and self._model_queue is not None and self._model_queue >= 2
        )

    @property
    def model_trusted(self) -> bool:
        """The camera model is used for control only while the drift monitor sees familiar frames."""
        return self.host is not None and not self._drifting

    def _parameters_changed(self, applied: dict[str, Any]) -> None:
        known = {k: float(v) for k, v in applied.items() if k in AdaptiveTimings.__dataclass_fields__}
        if known:
            self.controller.retime(**known)
            log.info("new timings from the cloud: %s", known)
        self.health.shadow_applied.update(applied)

    # --- the jobs of one tick --------------------------------------------------------------------
    def _sample(self, ts: float) -> None:
        b = self.board
        values = {
            "queue_distance_m": b.distance.distance,
            "light": b.light_sensor.value,
            "road_temperature_c": b.road_temperature_c,
            "cpu_temperature_c": b.cpu.temperature,
            "pot": b.pot.value,
        }
        self._rows.extend((name, round(float(v), 4), ts) for name, v in values.items())

    def _look(self, ts: float) -> None:
        try:
            frame = self.board.camera.capture()
        except Exception as exc:  # noqa: BLE001 - no camera (unplugged, picamera2 missing): keep the lights going
            log.warning("camera failed (%s); controlling from the sensors only", _short(exc))
            self.host = None
            self.health.model = f"off: camera failed ({_short(exc)})"
            return
        probs, pedestrian, exited = self._predict(frame)
        self._model_queue = int(probs.argmax())
        self._rows.append(("model_queue_class", float(self._model_queue), ts))
        if pedestrian is not None:
            self._rows.append(("model_pedestrian", round(pedestrian, 4), ts))
        self.health.frames += 1
        self.health.early_exits += int(exited)
        self.health.model_in_use_frames += int(self.model_trusted)
        if self._fused and self.drift is not None:
            self._stream_drift(frame, ts)
        elif self.drift is not None:
            self._frames.append(frame)
            self._confidences.append(probs)
            if len(self._frames) >= 64:
                import numpy as np

                report = self.drift.check(np.stack(self._frames), np.stack(self._confidences))
                self._drifting = report.drift
                self.health.drift_windows += 1
                self.health.drift_alarms += int(report.drift)
                self.health.drift = ("DRIFT: " + "; ".join(report.reasons)) if report.drift else "ok"
                if report.drift:
                    log.info("drift: %s; controlling from the sensors until the frames look familiar", report)
                self._rows.append(("drift_alarm", 1.0 if report.drift else 0.0, ts))
                self._frames.clear()
                self._confidences.clear()

    def _stream_drift(self, frame: Any, ts: float) -> None:
        """Windows of 16 frames against normal frames of the same light reading and hour (kit.ml.stream_drift)."""
        import numpy as np

        # simulated time is stored as UTC epochs of the world's local clock; on a Pi, ts is real time
        now = datetime.fromtimestamp(ts, UTC) if self.simulated else datetime.fromtimestamp(ts)
        self._frames.append(frame)
        self._lights.append(float(self.board.light_sensor.value))
        self._hours.append(now.hour + now.minute / 60)
        if len(self._frames) < 16:
            return
        report = self.drift.check(np.stack(self._frames), light=np.array(self._lights), hour=np.array(self._hours))
        self._drifting = report.drift
        self.health.drift_windows += 1
        self.health.drift_alarms += int(report.drift)
        self.health.drift = ("DRIFT: " + "; ".join(report.reasons)) if report.drift else "ok"
        if report.drift:
            log.info("drift: %s; controlling from the sensors until the frames look normal again", report)
        self._rows.append(("drift_alarm", 1.0 if report.drift else 0.0, ts))
        self._frames.clear()
        self._lights.clear()
        self._hours.clear()

    def _flush(self) -> None:
        if self._rows:
            self.store.readings.append_many(self._rows)
            self._rows = []

    def _sync(self, ts: float) -> None:
        if not self._cloud:
            return
        sync, shadow = self._cloud["sync"], self._cloud["shadow"]
        try:
            if self._cloud.get("needs_announce"):
                self._announce(shadow)
                self._cloud["needs_announce"] = False
            report = sync.drain(timeout=10.0)
            self.health.uploaded += report.sent
            if sync.breaker.state == "closed" and report.failures == 0:
                result = shadow.poll()
                if result.rejected:
                    self.health.shadow_rejected = dict(result.rejected)
                self.health.last_sync = datetime.now(UTC).isoformat(timespec="seconds")
                self.health.last_sync_error = None
            else:
                self.health.last_sync_error = f"endpoint unreachable ({report.failures} failed attempts)"
            self.health.circuit = sync.breaker.state
        except Exception as exc:  # noqa: BLE001 - a cloud problem never stops the intersection
            self.health.last_sync_error = _short(exc)
            log.warning("cloud sync failed: %s", self.health.last_sync_error)
        telemetry = self._cloud.get("telemetry")
        if telemetry is not None:
            stats = self.board.world.stats.summary() if self.simulated else {}
            telemetry.publish(
                {
                    "ts": ts,
                    "queue_class": self._model_queue,
                    "outbox": self.health.outbox_depth,
                    **{k: stats[k] for k in ("vehicles_served", "mean_vehicle_wait_s") if k in stats},
                }
            )
            self.health.telemetry_sent = telemetry.sent
            self.health.telemetry_pending = telemetry.pending

    def _write_status(self) -> None:
        h = self.health
        h.uptime_s = round(time.monotonic() - self._wall_start, 1)
        h.intersection_time = datetime.fromtimestamp(self.now(), UTC).isoformat(timespec="seconds")
        h.outbox_depth = self.store.outbox.depth()
        h.readings = self.store.readings.count()
        if h.frames:
            h.model_in_use = f"{100 * h.model_in_use_frames / h.frames:.1f} % of {h.frames} frames"
        if self.simulated:
            stats = self.board.world.stats.summary()
            h.vehicles_served = stats["vehicles_served"]
            h.mean_vehicle_wait_s = stats["mean_vehicle_wait_s"]
        write_status(self.status_path, asdict(h))

    @property
    def status_path(self) -> Path:
        from kit.apps.status import default_status_path

        return Path(self.options.status_path) if self.options.status_path else default_status_path(self.store)

    # --- the loop -------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        """Run until :meth:`stop` (or SIGTERM via the CLI), or for ``options.hours``; returns a summary."""
        self._load_model()
        self._start_cloud()
        self.health.state = "running"
        params = self.store.params
        end = None if self.options.hours is None else self.controller.clock + 3600.0 * self.options.hours
        next_sample = next_look = next_flush = next_sync = next_status = 0.0
        self._write_status()
        try:
            while not self.stop_event.is_set() and (end is None or self.controller.clock < end - 1e-9):
                t = self.controller.clock
                ts = self.now()
                if t >= next_sample:
                    self._sample(ts)
                    next_sample = t + (self.options.sample_period_s or params.get("sample_period_s"))
                if self.host is not None and t >= next_look:
                    self._look(ts)
                    next_look = t + self.options.camera_period_s
                if t >= next_flush:
                    self._flush()
                    next_flush = t + self.options.flush_every_s
                if t >= next_sync:
                    self._sync(ts)
                    next_sync = t + self.options.sync_period_s
                if t >= next_status:
                    self._write_status()
                    next_status = t + self.options.sync_period_s
                self.controller.step()
        finally:
            self._flush()
            self.health.state = "stopped"
            self._final_sync()
            self._write_status()
        return self.summary()

    def _final_sync(self) -> None:
        if not self._cloud:
            return
        sync = self._cloud["sync"]
        deadline = time.monotonic() + self.options.final_sync_s
        try:
            # Items a killed predecessor had leased come back when their lease ends: keep trying a little.
            while True:
                report = sync.drain(timeout=max(0.1, deadline - time.monotonic()), wait_open=True)
                self.health.uploaded += report.sent
                if report.depth == 0 or time.monotonic() >= deadline:
                    break
                time.sleep(0.5)
        except Exception as exc:  # noqa: BLE001
            log.warning("final sync failed: %s; the outbox keeps the rest", _short(exc))
        if self.store.outbox.depth():
            log.warning("%d outbox items wait for the next run", self.store.outbox.depth())
        telemetry = self._cloud.get("telemetry")
        if telemetry is not None:
            telemetry.flush(timeout=5.0)
            self.health.telemetry_sent = telemetry.sent
            self.health.telemetry_pending = telemetry.pending
            telemetry.close()

    def stop(self) -> None:
        """Ask the loop to finish its tick, write what it holds and return."""
        self.stop_event.set()

    def close(self) -> None:
        if self._own_board:
            self.board.close()
            world = getattr(self.board, "world", None)
            if hasattr(world, "junction"):
                world.close()  # the SUMO run ends with the app

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"controller": self.options.controller}
        if self.simulated:
            out.update(self.board.world.stats.summary())
        out.update(
            {
                "readings_stored": self.store.readings.count(),
                "outbox_depth": self.store.outbox.depth(),
                "uploaded": self.health.uploaded,
                "frames": self.health.frames,
                "early_exits": self.health.early_exits,
                "model_in_use": round(self.health.model_in_use_frames / self.health.frames, 3)
                if self.health.frames
                else 0.0,
                "model": self.health.model,
                "drift": self.health.drift,
                "drift_windows": self.health.drift_windows,
                "drift_alarms": self.health.drift_alarms,
                "telemetry_sent": self.health.telemetry_sent,
                "car_greens": sum(1 for name, _ in self.controller.phase_log if name == "car_green"),
                "crossings": sum(1 for name, _ in self.controller.phase_log if name == "ped_green"),
            }
        )
        return out


def _as_ranges(conditions: Any) -> Any:
    # Cards store ranges as JSON lists; make_dataset takes (low, high) tuples or single values.
    if not isinstance(conditions, dict):
        return None
    return {k: tuple(v) if isinstance(v, list) else v for k, v in conditions.items()}


def _short(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) < 200 else text[:197] + "..."


def summary_text(summary: dict[str, Any]) -> str:
    """The summary as the lines `kit run intersection` prints."""
    return json.dumps(summary, indent=2, default=str)

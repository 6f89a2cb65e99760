"""The smart-intersection edge app: everything the course teaches, running as one program.

The app composes three parts that never import it back::

    control loop (this thread): clock ─► controller ─► conflict monitor ─► lamps; sensors ─► logbook (memory)
    model loop (between ticks):  camera ─► hosted model ─► drift monitor ─► "long queue" for the controller
    logbook worker (disk only):  logbook ─► kit.store (readings, outbox, retention); status file + heartbeat
                                 live parameters ◄─ store ◄─ `kit params set`
    cloud worker (network only): outbox ─► cloud link ─► S3, telemetry; shadow deltas ─► store

The control loop reads parameters from memory and hands readings over in memory: a hung endpoint, a stalled
broker or a full disk slows a worker only, never the lights; and since the cloud has its own worker, a hung
endpoint does not hold the status either (`kit status` keeps saying "running", truthfully).

In simulation (anywhere but a Pi) time runs as fast as the machine allows, in real time with
``realtime=True``, or ``speed=N`` times faster than real time (``kit run intersection --speed 600``: a day in
2.4 minutes with the workers, the cloud's timeouts and `kit status` on the wall clock as on a device); on a Pi
the pins are real and time is real. The cloud is optional: without it the
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
import threading
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kit.apps.control_loop import SENSORS, ControlLoop
from kit.apps.health import Health, short
from kit.apps.logbook import Logbook
from kit.apps.model_loop import ModelLoop
from kit.apps.status import write_status

__all__ = ["AppOptions", "Health", "IntersectionApp", "SENSORS", "summary_text"]

log = logging.getLogger("kit.intersection")


@dataclass
class AppOptions:
    """How the app runs. Parameters that an operator tunes (timings, sample period...) live in the store."""

    seed: int = 0
    start: str = "2026-10-15T00:00:00"  #: simulated start (ignored on a Pi and when resuming)
    hours: float | None = None  #: stop after this long (None: until stopped)
    realtime: bool = False  #: simulation at wall-clock speed instead of as fast as possible
    #: simulation paced at this many simulated seconds per wall second (600: a day in 2.4 min); None: realtime
    #: decides (wall-clock speed, or as fast as possible)
    speed: float | None = None
    leaves: float = 0.0
    road_works: bool = False
    #: the works close the lane and the queue waits in the other one (kit.sim.world.World's ``diverted``)
    diverted: bool = False
    #: simulation only: sensors stuck from the start, e.g. (("pir", 0.0),) (kit.sim.world.World.stick); the app's
    #: stuck-sensor watch (kit.ml.stuck) should flag them
    stuck: tuple[tuple[str, float], ...] = ()
    #: shipped model name ("fusion": camera + sensors, int8 early exit; "early_exit": camera two-part host;
    #: "intersection": one piece), a .tflite file or a model folder; None: sensors only
    model: str | None = "fusion"
    #: the user named the model: failing to load it stops the run with one line, rather than falling back to the
    #: sensors as the app does for its default model (a missing runtime on a Pi must not stop the lights)
    model_required: bool = False
    #: who ends the car green: "adaptive" (the kit's rule, kit.control.adaptive.actuated_policy) or "learned" (the
    #: shipped deep-RL policy, kit/models/signal_policy.tflite, run by ModelHost; lab 10)
    controller: str = "adaptive"
    #: where the traffic comes from in simulation: "kit" (kit.sim.world.World) or "sumo" (kit.sim.sumo.cosim.SumoWorld,
    #: needs the [sumo] extra): the same pins and controllers drive SUMO's signals
    traffic: str = "kit"
    camera_period_s: float = 10.0
    sync_period_s: float = 60.0  #: intersection seconds between telemetry messages
    cloud: bool = False  #: upload, shadow and telemetry (endpoint from the environment, kit.cloud)
    mqtt: bool = True  #: with the cloud: telemetry and shadow deltas over MQTT too
    resume: bool = True  #: continue simulated time from the newest stored reading
    status_path: str | None = None  #: where `kit status` reads health (default: next to the store)
    flush_every_s: float = 0.5  #: wall seconds between the workers' rounds (readings and status; the cloud)
    final_sync_s: float = 30.0  #: at the end, keep sending the outbox for at most this long (wall clock)
    sample_period_s: float | None = None  #: overrides the stored sample_period_s for this run (None: the store's)
    lease_s: float = 10.0  #: outbox lease while a batch is in flight (a crashed run's batch returns after it)
    stall_s: float = 5.0  #: wall seconds without a control tick before the conflict monitor shows all red
    poll_s: float = 5.0  #: wall seconds between shadow polls (the fallback when no delta arrives by MQTT)
    retention_every_s: float = 3600.0  #: intersection seconds between retention runs
    #: folder for models delivered over the air (kit model deploy; kit.ml.ota); None: the configured model only
    models_folder: str | None = None


class IntersectionApp:
    """Runs the intersection: a :class:`~kit.apps.control_loop.ControlLoop`, a
    :class:`~kit.apps.model_loop.ModelLoop`, a :class:`~kit.apps.logbook.Logbook` and (with the cloud) a
    :class:`~kit.apps.cloud_link.CloudLink`. Two workers keep I/O off the control loop: the logbook's (readings,
    retention, parameters, the status file with its heartbeat: local disk only) and the cloud's (network only), so
    an endpoint that hangs delays neither the lights nor the status that says they are running.

    :param store: the device's :class:`kit.store.Store` (parameters, readings, outbox).
    :param options: :class:`AppOptions`.
    :param board: a board to drive; by default one is made (simulated unless on a Pi).
    """

    def __init__(self, store: Any, options: AppOptions | None = None, *, board: Any = None) -> None:
        from kit.clock import clock_for

        self.store = store
        self.options = options or AppOptions()
        self.stop_event = threading.Event()
        self.health = Health()
        self._own_board = board is None
        policy = self._policy()  # a wrong choice fails before any board or file is made
        self.board = board if board is not None else self._make_board()
        self.simulated = getattr(self.board, "world", None) is not None
        self.health.simulated = self.simulated
        self.clock = clock_for(
            self.board, realtime=self.options.realtime, speed=self.options.speed, stop=self.stop_event
        )
        self.params = store.params.live()
        self.model_loop = ModelLoop(
            self.options.model,
            self.health,
            board=self.board,
            simulated=self.simulated,
            models_folder=self.options.models_folder,
            thing_name=store.params.get("device_id") if self.options.cloud else None,
            required=self.options.model_required,
        )
        self.control = ControlLoop(
            self.board,
            self.params,
            self.clock,
            self.health,
            camera_queue=lambda: self.model_loop.queue_long,
            camera_trusted=lambda: self.model_loop.trusted,
            camera_pedestrian=lambda: self.model_loop.pedestrian_seen,
            sensor_ok=self.model_loop.sensor_ok,
            stall_s=self.options.stall_s,
            policy=policy,
        )
        self.controller = self.control.controller
        self.logbook = Logbook(store, self.params, self.health)
        self.cloud: Any = None
        self._workers: list[threading.Thread] = []
        self._worker_stop = threading.Event()
        self._wall_start = time.monotonic()
        self._next_retention: float | None = None
        self._next_refresh = 0.0

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
            if self.options.stuck:
                from kit.errors import UsageError

                raise UsageError("stuck sensors are a fault of the simulated world: leave out --stuck on a Pi")
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
            self._stick(world)
            return Board(world, pin_factory=choice.factory)
        if self.options.traffic != "kit":
            from kit.errors import UsageError

            raise UsageError(f"traffic={self.options.traffic!r}: choose 'kit' (the kit's world) or 'sumo'")
        world = World(
            seed=self.options.seed,
            start=start,
            leaves=self.options.leaves,
            road_works=self.options.road_works,
            diverted=self.options.diverted,
        )
        self._stick(world)
        return Board(world, pin_factory=choice.factory)

    def _stick(self, world: Any) -> None:
        for sensor, value in self.options.stuck:
            world.stick(sensor, value)

    def _resume_time(self) -> str | None:
        if not self.options.resume:
            return None
        last = self.store.readings.latest("queue_distance_m")
        if last is None:
            return None
        # Readings carry simulated UTC epochs; the world runs in naive local time of the same clock.
        return datetime.fromtimestamp(float(last["ts"]) + 1.0, UTC).replace(tzinfo=None).isoformat()

    def _start_cloud(self) -> None:
        if not self.options.cloud:
            return
        from kit.apps.cloud_link import CloudLink

        self.cloud = CloudLink(
            self.store,
            self.health,
            now=self.clock.now,
            effective=self.control.effective,
            mqtt=self.options.mqtt,
            poll_s=self.options.poll_s,
            lease_s=self.options.lease_s,
            seed=self.options.seed,
            telemetry_every_s=self.options.sync_period_s,
            frames=self.model_loop.uploads,
        )
        self.model_loop.collect = True  # frames of alarming drift windows go to S3 for a retrain
        self.health.cloud = "starting"

    def now(self) -> float:
        """Intersection time as a UTC epoch (simulated time in simulation)."""
        return self.clock.now()

    # --- the workers: storage and status; the cloud --------------------------------------------------------
    def _work(self) -> None:
        self.logbook.flush()
        now = self.clock.now()
        if self._next_retention is None:
            self._next_retention = now + self.options.retention_every_s
        elif now >= self._next_retention:
            self._next_retention = now + self.options.retention_every_s
            self.logbook.retention(now)
        if time.monotonic() >= self._next_refresh:
            self._next_refresh = time.monotonic() + 2.0
            try:
                self.params.refresh()  # changes other processes wrote (`kit params set` while running)
            except Exception as exc:  # noqa: BLE001 - the store may be unreadable for a moment
                log.warning("parameters not refreshed: %s", short(exc))
        self._write_status()

    def _worker_loop(self, work: Any, name: str) -> None:
        while not self._worker_stop.wait(self.options.flush_every_s):
            try:
                work()
            except Exception as exc:  # noqa: BLE001 - a worker must outlive any one problem
                log.warning("%s: %s", name, short(exc))

    def _start_workers(self) -> None:
        jobs = [("kit-logbook", self._work)]
        if self.cloud is not None:
            jobs.append(("kit-cloud", self.cloud.step))
        for name, work in jobs:
            thread = threading.Thread(target=self._worker_loop, args=(work, name), name=name, daemon=True)
            thread.start()
            self._workers.append(thread)

    def _write_status(self) -> None:
        h = self.health
        h.uptime_s = round(time.monotonic() - self._wall_start, 1)
        h.intersection_time = datetime.fromtimestamp(self.clock.now(), UTC).isoformat(timespec="seconds")
        h.effective = self.control.effective()
        h.phase_late_p99_ms = self.control.lateness_p(99)
        if h.frames:
            h.model_in_use = f"{100 * h.model_in_use_frames / h.frames:.1f} % of {h.frames} frames"
        try:
            h.outbox_depth = self.store.outbox.depth()
            h.dead_letters = len(self.store.outbox.dead())
            h.readings = self.store.readings.count()
        except Exception as exc:  # noqa: BLE001 - status must still be written when the store is unreadable
            h.logging = f"PAUSED: store unreadable ({short(exc)})"
        if self.simulated:
            stats = self.board.world.stats.summary()
            h.vehicles_served = stats["vehicles_served"]
            h.mean_vehicle_wait_s = stats["mean_vehicle_wait_s"]
        try:
            write_status(self.status_path, asdict(h))
        except OSError as exc:  # a full disk must not stop the app; the next round tries again
            log.warning("status not written: %s", short(exc))

    @property
    def status_path(self) -> Path:
        from kit.apps.status import default_status_path

        return Path(self.options.status_path) if self.options.status_path else default_status_path(self.store)

    # --- the loop -------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        """Run until :meth:`stop` (or SIGTERM via the CLI), or for ``options.hours``; returns a summary."""
        self.model_loop.load()
        self._start_cloud()
        if self.cloud is not None:
            self.cloud.prepare()  # boto3 imports and clients now (no network): not in the worker's first round
            if self.simulated and not self.clock.realtime:
                # Simulated time outruns the worker's wall-clock rounds: take what the cloud asks for before the
                # day starts, so a run is the same whatever the machine's speed (no lamp waits: none is lit yet).
                self.cloud.step()
        self.health.state = "running"
        self.health.heartbeat = time.time()
        end = None if self.options.hours is None else self.control.elapsed + 3600.0 * self.options.hours
        self._next = {"sample": 0.0, "look": 0.0}
        self._write_status()
        self.control.start()
        self._start_workers()
        self.controller.anchor()  # the schedule starts now, not when the app object was made
        try:
            while not self.stop_event.is_set() and (end is None or self.control.elapsed < end - 1e-9):
                self.control.tick(self._tick_work)
            self.control.wind_down()  # amber and all red before the final sync; the lamps stay all red
        finally:
            self.control.close()  # the loop has ended by design: its watchdog must not call the final sync a stall
            self._worker_stop.set()
            for thread in self._workers:
                thread.join(timeout=max(30.0, self.options.final_sync_s))
            self.health.state = "stopped"
            self._work()
            if self.cloud is not None:
                self.cloud.finish(self.options.final_sync_s)
            self.model_loop.close()
            self._write_status()
        return self.summary()

    def _tick_work(self) -> None:
        """Sampling and the camera: after the tick's phase change, before its wait. No I/O but the sensors."""
        t = self.control.elapsed
        ts = self.clock.now()
        if t >= self._next["sample"]:
            self.logbook.add(self.control.sample(ts))
            self.model_loop.watch(t)  # stuck sensors, told from their history (kit.ml.stuck)
            self._next["sample"] = t + (self.options.sample_period_s or self.params["sample_period_s"])
        if self.model_loop.active and t >= self._next["look"]:
            self.logbook.add(self.model_loop.look(lambda: self.board.camera.capture(), ts))
            self._next["look"] = t + self.options.camera_period_s

    def stop(self) -> None:
        """Ask the loop to finish its tick, write what it holds and return."""
        self.stop_event.set()

    def close(self) -> None:
        self.control.close()
        self.params.close()
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
                "upload_requests": self.health.upload_requests,
                "frames": self.health.frames,
                "early_exits": self.health.early_exits,
                "model_in_use": round(self.health.model_in_use_frames / self.health.frames, 3)
                if self.health.frames
                else 0.0,
                "model": self.health.model,
                "drift": self.health.drift,
                "drift_windows": self.health.drift_windows,
                "drift_alarms": self.health.drift_alarms,
                "frames_uploaded": self.health.frames_uploaded,
                "frame_upload_requests": self.health.frame_requests,
                "sensors": self.health.sensors,
                "sensor_flags": self.health.sensor_flags,
                "telemetry_sent": self.health.telemetry_sent,
                "car_greens": sum(1 for name, _ in self.controller.phase_log if name == "car_green"),
                "crossings": sum(1 for name, _ in self.controller.phase_log if name == "ped_green"),
                "signals": self.control.monitor.status(),
                "logging": self.health.logging,
            }
        )
        return out


def summary_text(summary: dict[str, Any]) -> str:
    """The summary as the lines `kit run intersection` prints."""
    return json.dumps(summary, indent=2, default=str)

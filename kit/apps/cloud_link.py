"""The app's cloud link: uploads, the device shadow and MQTT, on a worker thread that never blocks control.

The control loop hands nothing to the cloud directly: readings reach the store (through the logbook) and
the outbox; this link's worker sends them when a batch is full or its oldest reading reaches
``upload_max_age_s``, takes shadow deltas (by MQTT on AWS IoT's delta topic where a broker is configured,
by polling as the fallback), reports the parameter values *in effect* and publishes telemetry. Frames the
model loop kept from alarming drift windows (with their sensor labels) go to ``s3://BUCKET/frames/<device>/``
in chunks (:class:`kit.ml.ota.retrain.FrameUploader`), where ``kit model retrain --from-s3 DEVICE`` finds them.

Every boto3 call has short timeouts and one attempt (:func:`kit.cloud.config.boto_config`); the link does
the retrying, with a circuit breaker. An endpoint that is down, refuses, or accepts and never answers only
slows this worker: the lights never wait for it. The link starts with the endpoint down and sets up what
it needs (bucket locally, thing and first report) when the endpoint appears.

    >>> from kit import Store
    >>> from kit.apps.cloud_link import CloudLink
    >>> from kit.apps.health import Health
    >>> link = CloudLink(Store(":memory:"), Health(), now=lambda: 0.0)   # no network until step()
    >>> link.ready
    False
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from kit.apps.health import Health, short

log = logging.getLogger("kit.intersection")


class CloudLink:
    """One step of cloud work at a time (:meth:`step`), called by the app's worker thread.

    :param store: the device's store.
    :param health: where status goes.
    :param now: intersection time (epoch s), for the age of the oldest waiting reading.
    :param effective: parameter values in effect (the control loop's); reported to the shadow.
    :param on_change: called with the parameters a shadow delta changed.
    :param mqtt: use MQTT (telemetry, shadow deltas) as configured in :mod:`kit.cloud.config`.
    :param poll_s: seconds (wall clock) between shadow polls, the fallback when no delta arrives by MQTT.
    :param telemetry_every_s: intersection seconds between telemetry messages.
    """

    def __init__(
        self,
        store: Any,
        health: Health,
        *,
        now: Callable[[], float],
        effective: Callable[[], dict[str, Any]] | None = None,
        on_change: Callable[[dict[str, Any]], None] | None = None,
        mqtt: bool = False,
        poll_s: float = 5.0,
        lease_s: float = 30.0,
        seed: int = 0,
        telemetry_every_s: float = 60.0,
        frames: Any = None,
        frames_chunk: int = 64,
    ) -> None:
        self.store = store
        self.health = health
        self.now = now
        self.effective = effective
        self.on_change = on_change
        self.mqtt = mqtt
        self.poll_s = poll_s
        self.lease_s = lease_s
        self.seed = seed
        self.telemetry_every_s = telemetry_every_s
        #: a deque of (frame, queue class, pedestrian, sensor vector) the model loop fills during drift
        self.frames = frames
        self.frames_chunk = frames_chunk
        self.uploader: Any = None
        self.sync: Any = None
        self.shadow: Any = None
        self.telemetry: Any = None
        self.deltas: Any = None
        self.ready = False  # the shadow has been reached once (thing provisioned, first report made)
        self._next_poll = 0.0
        self._next_telemetry = 0.0
        self._reported: dict[str, Any] | None = None
        self._logged: str | None = None
        self.health.cloud = "starting"

    # -- set-up (no network) -------------------------------------------------------------------------
    def _build(self) -> None:
        if self.sync is not None and self.store.params.get("device_id") != self.shadow.thing_name:
            # A new name for this kit: a new thing, new S3 prefix, new topics (set up afresh below).
            log.info(
                "device_id changed to %s: the cloud link starts again under the new name",
                self.store.params.get("device_id"),
            )
            self.close()
            self.sync = self.shadow = None
            self.ready = False
            self._reported = None
        if self.sync is not None:
            return
        from kit.cloud.shadow import ShadowAgent
        from kit.cloud.sync import CircuitBreaker, Sync

        device = self.store.params.get("device_id")
        self.sync = Sync(
            self.store,
            breaker=CircuitBreaker(failures_to_open=2, open_seconds=5.0),
            lease_seconds=self.lease_s,
            seed=self.seed,
            lazy=True,
        )
        self.shadow = ShadowAgent(self.store, thing_name=device, on_change=self._changed, effective=self.effective)
        if self.mqtt:
            from kit.cloud.config import current
            from kit.cloud.mqtt import DeltaListener, Telemetry

            cfg = current().with_(device_id=device)
            self.telemetry = Telemetry.from_config(cfg).start()
            self.deltas = DeltaListener.from_config(device, cfg).start()

    def prepare(self) -> None:
        """Import boto3 and make the clients (no network), so the worker's first round is not an import."""
        try:
            self._build()
        except Exception as exc:  # noqa: BLE001 - e.g. a bad configuration: said in status, retried each round
            self.health.cloud = f"not configured: {short(exc)}"

    def _changed(self, applied: dict[str, Any]) -> None:
        self.health.shadow_applied.update(applied)
        if self.on_change:
            self.on_change(applied)

    # -- the work ---------------------------------------------------------------------------------------
    def step(self, *, final: bool = False) -> None:
        """Do whatever cloud work is due now; never raises (problems go to ``health``)."""
        try:
            self._build()
            self._shadow_step()
            self._upload_step(final)
            self._frames_step(final)
            self._telemetry_step()
        except Exception as exc:  # noqa: BLE001 - a cloud problem never stops the intersection
            if short(exc) != self._logged:
                # once per new problem: an endpoint down for hours must not fill the log (or a pipe reading it)
                self._logged = short(exc)
                log.warning("cloud: %s", self._logged)
            self.health.last_sync_error = short(exc)
        if self.sync is not None:
            self.health.circuit = self.sync.breaker.state

    def _shadow_step(self) -> None:
        if not self.sync.breaker.allow():
            return
        if not self.ready:
            self._announce()
        while self.deltas is not None:
            message = self.deltas.get()
            if message is None:
                break
            self._handle(self.shadow.handle(message))
        if time.monotonic() >= self._next_poll:
            self._next_poll = time.monotonic() + self.poll_s
            self._handle(self.shadow.poll())
        effective = self.effective() if self.effective else None
        if effective is not None and effective != self._reported:
            self.shadow.report()  # the values now in effect (a timing changes at the next phase)
            self._reported = effective

    def _handle(self, result: Any) -> None:
        if result.rejected:
            self.health.shadow_rejected = dict(result.rejected)

    def _announce(self) -> None:
        """Report the parameters; against the local endpoint, create the thing the first time."""
        from kit.cloud.config import current

        try:
            self.shadow.report()
        except Exception as exc:  # noqa: BLE001
            missing = type(exc).__name__ == "ResourceNotFoundException" or "ResourceNotFound" in str(exc)
            if not (missing and current().local):
                self._failed(exc)
                raise
            self.shadow.provision()
        self.ready = True
        self.health.cloud = "connected"

    def _failed(self, exc: BaseException) -> None:
        from kit.cloud.sync import transient

        if transient(exc):
            self.sync.breaker.failure()
            self.health.cloud = f"waiting for the endpoint ({short(exc)})"

    def _upload_step(self, final: bool) -> None:
        """Send whole batches while one is full, and a part batch only once its oldest reading is old enough:
        few requests (at the defaults 10 per 10 000 readings), data never older than ``upload_max_age_s``."""
        from kit.cloud.sync import SyncReport

        report = SyncReport()
        deadline = time.monotonic() + 2.0
        while (final or self.sync.due(self.now())) and time.monotonic() < deadline and self.sync.breaker.allow():
            failures = report.failures
            if not self.sync.step(report) and report.failures == failures and not report.refused:
                break  # nothing left to lease
            if report.failures > failures:
                break  # unreachable: the breaker and the next round decide when to try again
        self.health.uploaded += report.sent
        self.health.upload_requests += report.requests
        if report.failures == 0 and report.sent:
            self.health.last_sync = datetime.now(UTC).isoformat(timespec="seconds")
            self.health.last_sync_error = None
            self.health.cloud = "connected"
        elif report.failures:
            self.health.last_sync_error = f"endpoint unreachable ({report.failures} failed attempts)"

    def _frames_step(self, final: bool = False) -> None:
        """Drift-window frames to S3, a chunk at a time (all that is left at the end of a run)."""
        if self.frames is None or not self.sync.breaker.allow():
            return
        device = self.store.params.get("device_id")
        if self.uploader is None or self.uploader.device != device:
            from kit.ml.ota.retrain import FrameUploader

            self.uploader = FrameUploader(device, chunk=self.frames_chunk)
        while self.frames:
            frame, queue, pedestrian, sensors = self.frames.popleft()
            self.uploader.add(frame, queue, pedestrian, sensors=sensors)
        while len(self.uploader.buffer) >= self.frames_chunk or (final and self.uploader.buffer):
            try:
                self.uploader.flush()  # kept in its buffer when the endpoint fails: tried again next round
            except Exception as exc:
                self._failed(exc)
                raise
            finally:
                self.health.frame_requests = self.uploader.requests
            self.health.frames_uploaded = self.uploader.sent

    def _telemetry_step(self) -> None:
        # On intersection time: a simulated day sends a day's worth of telemetry, whatever its wall time.
        if self.telemetry is None or self.now() < self._next_telemetry:
            return
        self._next_telemetry = self.now() + self.telemetry_every_s
        try:
            self.telemetry.publish(
                {
                    "ts": self.now(),
                    "outbox": self.health.outbox_depth,
                    "signals": self.health.signals,
                    "phase": self.health.phase,
                    "vehicles_served": self.health.vehicles_served,
                }
            )
        except OverflowError as exc:
            log.warning("%s", exc)
        self.health.telemetry_sent = self.telemetry.sent
        self.health.telemetry_pending = self.telemetry.pending

    def finish(self, timeout_s: float) -> None:
        """At the end of a run: send what the outbox holds for up to ``timeout_s`` (wall clock), then close."""
        if self.sync is None:
            return
        deadline = time.monotonic() + timeout_s
        try:
            try:
                self._frames_step(final=True)
            except Exception as exc:  # noqa: BLE001
                log.warning("drift frames not uploaded: %s", short(exc))
            while True:
                report = self.sync.drain(timeout=max(0.1, deadline - time.monotonic()), wait_open=True)
                self.health.uploaded += report.sent
                self.health.upload_requests += report.requests
                if report.depth == 0 or time.monotonic() >= deadline:
                    break
                time.sleep(0.5)  # items a killed predecessor had leased come back when their lease ends
            if self.ready or self.shadow is not None:
                # a run shorter than one worker round still takes what the operator asked for (kept for the next start)
                self._handle(self.shadow.poll())
                self.shadow.report()
        except Exception as exc:  # noqa: BLE001
            log.warning("final sync failed: %s; the outbox keeps the rest", short(exc))
        self.close()

    def close(self) -> None:
        if self.telemetry is not None:
            self.telemetry.flush(timeout=2.0)
            self.health.telemetry_sent = self.telemetry.sent
            self.health.telemetry_pending = self.telemetry.pending
            self.telemetry.close(timeout=1.0)
            self.telemetry = None
        if self.deltas is not None:
            self.deltas.close()
            self.deltas = None

"""What an app's model loop holds to get over-the-air models: one call per frame, swaps between frames.

    >>> field = FieldModel(factory_host, "/var/lib/kit/models").start()          # doctest: +SKIP
    >>> probs, pedestrian, exited, ms = field.predict(frame, sensor_class=2)     # doctest: +SKIP
    >>> field.note_drift(report.drift)                                            # doctest: +SKIP
    >>> field.status()["version"]                                                 # doctest: +SKIP

``predict`` first takes a swap the updater committed since the last frame (an attribute read, no
I/O), runs the model in use on the frame, and hands the result to the updater for its canary or
probation (an append to a bounded queue). Downloads, checks, loading and the candidate's own
inferences all run on the updater's thread: the caller (the control thread, in the app) never waits
for them. The factory host may be a ``ModelHost``, the early-exit host or the fused host; a delivered
model is a one-piece ``ModelHost`` or a fused model's bundle (``kit.ml.ota.bundle``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from kit.ml.ota.canary import CanaryPolicy
from kit.ml.ota.updater import Updater, shadow_poller


class FieldModel:
    """A hosted camera model that can be replaced over the air while it serves (see the module docstring)."""

    def __init__(
        self,
        factory: Any,
        folder: str | Path,
        *,
        policy: CanaryPolicy | None = None,
        thing_name: str | None = None,
        poll_s: float = 5.0,
        source: Any = None,
        isolate: bool | None = None,
    ) -> None:
        self.updater = Updater(folder, factory=factory, policy=policy, source=source, isolate=isolate)
        self.thing_name = thing_name
        self.poll_s = poll_s
        self.host: Any = factory
        self.frames = 0
        self.swaps_taken = 0

    def start(self, *, thread: bool = True) -> FieldModel:
        """Recover the models folder (the committed model runs), then start the updater's thread."""
        self.host = self.updater.start() or self.updater.factory
        if thread:
            poll = None
            if self.thing_name:
                # boto3's imports and clients now, before control starts: building a client parses large
                # service models while holding the interpreter lock, which would delay the control thread
                from kit.cloud.config import client
                from kit.ml.ota.updater import S3Source

                if self.updater.source is None:
                    self.updater.source = S3Source()
                poll = shadow_poller(self.updater, self.thing_name, client("iot-data"))
            self.updater.start_thread(poll=poll, poll_s=self.poll_s)
        return self

    @property
    def early_exit(self) -> bool:
        return not hasattr(self.host, "outputs")

    @property
    def fused(self) -> bool:
        """The host takes the sensor vector beside the frame (``kit.ml.fusion.FusedHost``, the app's default)."""
        from kit.ml.fusion import FusedHost

        return isinstance(self.host, FusedHost)

    def predict(
        self, frame: Any, sensors: Any = None, *, sensor_class: int | None = None
    ) -> tuple[np.ndarray, float | None, bool, float]:
        """(queue probabilities (3,), pedestrian probability or None, exited early, ms) for one frame.

        ``sensors`` is the sensor vector (``kit.ml.sensors.vector_from_board``) a fused host takes; give it with
        every frame whatever runs now, so that a fused candidate can be canaried beside a camera model.
        """
        swapped = self.updater.swap()
        if swapped is not None:  # between two frames: this frame is the first of the new model
            self.host = swapped
            self.swaps_taken += 1
        t0 = time.perf_counter()
        if self.fused:
            r = self.host.predict(frame, sensors)
            probs, pedestrian, exited = np.asarray(r.queue_probs).reshape(-1), float(r.pedestrian_prob), bool(r.exited)
        elif self.early_exit:
            result = self.host.predict(frame)
            probs, pedestrian, exited = np.asarray(result.probs), None, bool(result.exited)
        else:
            out = self.host.predict(frame)
            # a delivered queue-only model (e.g. the federated one) leaves the pedestrian to the PIR sensor
            pedestrian = float(out["pedestrian"][0][0]) if "pedestrian" in out else None
            probs, exited = out["queue"][0], False
        ms = (time.perf_counter() - t0) * 1e3
        self.frames += 1
        self.updater.observe(frame, probs, ms, sensor_class, sensors)
        return probs, pedestrian, exited, ms

    def note_drift(self, alarm: bool) -> None:
        self.updater.note_drift(alarm)

    def offer_file(self, path: str | Path, *, version: str, card: str | Path | None = None) -> str:
        """A candidate made on the device (e.g. an adapted head): canaried and swapped like a delivery."""
        return self.updater.offer_file(path, version=version, card=card)

    def status(self) -> dict[str, Any]:
        return self.updater.status()

    def close(self) -> None:
        self.updater.close()

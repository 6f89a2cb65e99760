"""What the running app tells `kit status`: one plain dataclass every part of the app writes into.

It sits below the app's parts (control loop, model loop, logbook, cloud link) so that each can report
without importing the app.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


@dataclass
class Health:
    """What `kit status` shows. ``heartbeat`` is the wall-clock time (epoch s) of the control loop's last tick."""

    pid: int = field(default_factory=os.getpid)
    state: str = "starting"
    started: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    heartbeat: float = 0.0
    uptime_s: float = 0.0
    intersection_time: str = ""
    simulated: bool = True
    signals: str = "ok"  #: the conflict monitor's word: ok, FAULT..., STALLED...
    phase: str = ""
    phase_late_p99_ms: float | None = None
    effective: dict[str, Any] = field(default_factory=dict)
    logging: str = "ok"  #: ok, or why readings are not being written (disk full, read-only store)
    retention: str = ""
    dropped: dict[str, int] = field(default_factory=dict)
    outbox_depth: int = 0
    dead_letters: int = 0
    readings: int = 0
    cloud: str = "off"
    last_sync: str | None = None
    last_sync_error: str | None = None
    circuit: str = "closed"
    uploaded: int = 0
    upload_requests: int = 0
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
    frames_uploaded: int = 0  #: frames of alarming drift windows sent to S3 for a retrain
    frame_requests: int = 0  #: S3 requests those frames took (failed ones too)
    sensors: str = "ok"  #: ok, or which sensor is flagged stuck (kit.ml.stuck) and fed to the model as failed
    sensor_flags: int = 0  #: times a sensor was flagged stuck
    vehicles_served: int = 0
    mean_vehicle_wait_s: float = 0.0


def short(exc: BaseException) -> str:
    """An exception as one short line for logs and status."""
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) < 200 else text[:197] + "..."

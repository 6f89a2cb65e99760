"""The app's control loop: the controller, the conflict monitor and the sensors it samples; nothing else.

It never waits for I/O: parameters come from memory (:class:`kit.store.params.LiveParams`), readings
go to an in-memory hand-off (the :class:`~kit.apps.logbook.Logbook` writes them from another thread),
and the cloud lives on its own worker (:class:`~kit.apps.cloud_link.CloudLink`). Each tick it beats the
heartbeat that `kit status` checks and the conflict monitor's watchdog guards.

    >>> from kit import Board, Store
    >>> from kit.apps.control_loop import ControlLoop
    >>> from kit.apps.health import Health
    >>> from kit.clock import clock_for
    >>> store = Store(":memory:")
    >>> with Board(seed=0) as board:
    ...     loop = ControlLoop(board, store.params.live(), clock_for(board), Health())
    ...     for _ in range(600):
    ...         loop.tick()
    ...     loop.controller.clock
    600.0
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from kit.apps.health import Health
from kit.control.adaptive import AdaptiveController, _read

#: Sensors the app logs, each a function of the board (names are the readings' sensor names).
SENSORS = ("queue_distance_m", "light", "road_temperature_c", "cpu_temperature_c", "pot")


class ControlLoop:
    """Ticks the controller once per ``tick_s`` on ``clock``; samples the sensors when asked.

    :param board: the :class:`kit.board.Board`.
    :param params: live parameters (``store.params.live()``).
    :param clock: a :class:`kit.clock.Clock`.
    :param health: where status goes.
    :param camera_queue: optional callable, True while the camera model sees a long queue (trusted).
    :param camera_trusted: optional callable, True while the camera model is trusted (no drift alarm).
    :param camera_pedestrian: optional callable, True while a trusted camera model sees someone waiting.
    :param sensor_ok: optional callable, ``sensor_ok("distance")`` / ``sensor_ok("pir")`` False while the app's
        stuck-sensor watch (``kit.ml.stuck``) flags that sensor. A flagged distance sensor gives way to the
        camera, or, without a trusted camera, places a constant queue call (a failed detector's fail-safe:
        the crossing waits its maximum, the cars are never cut short); a flagged PIR gives way to the camera
        model's pedestrian head (the button still calls the crossing), so a PIR stuck at "someone" no longer
        stops the cars every cycle.
    :param stall_s: wall-clock seconds without a tick before the monitor shows all red.
    :param policy: who ends the car green (default :func:`kit.control.adaptive.actuated_policy`).
    """

    def __init__(
        self,
        board: Any,
        params: Any,
        clock: Any,
        health: Health,
        *,
        camera_queue: Callable[[], bool] | None = None,
        camera_trusted: Callable[[], bool] | None = None,
        camera_pedestrian: Callable[[], bool] | None = None,
        sensor_ok: Callable[[str], bool] | None = None,
        stall_s: float = 5.0,
        policy: Any = None,
    ) -> None:
        self.board = board
        self.params = params
        self.clock = clock
        self.health = health
        self.camera_queue = camera_queue
        self.camera_trusted = camera_trusted
        self.camera_pedestrian = camera_pedestrian
        self.sensor_ok = sensor_ok
        self._ultrasonic_queue = False
        extra = {"policy": policy} if policy is not None else {}
        self.controller = AdaptiveController.from_params(
            board,
            params,
            queue_source=self._queue_now,
            pedestrian_source=self._pedestrian_now if sensor_ok is not None else None,
            clock=clock,
            **extra,
        )
        self.monitor = self.controller.monitor
        self.monitor.stall_s = stall_s

    def start(self) -> None:
        """Start the monitor's watchdog where time is real (a stall in fast simulation means nothing)."""
        if not self.clock.simulated or getattr(self.clock, "realtime", False):
            self.monitor.watch()

    @property
    def elapsed(self) -> float:
        """Seconds the controller has run."""
        return self.controller.clock

    def _queue_now(self) -> bool:
        if self.sensor_ok is not None and not self.sensor_ok("distance"):
            if self.camera_queue is not None and self.camera_trusted is not None and self.camera_trusted():
                return bool(self.camera_queue())
            return True  # nothing trustworthy sees the queue: a constant call, as for any failed detector
        # The ultrasonic sensor sees the stop line; the camera sees the whole approach. Either one is enough.
        distance = _read(lambda: self.board.distance.distance)
        threshold = self.controller._param("queue_threshold_m")
        if self._ultrasonic_queue:
            self._ultrasonic_queue = distance < threshold + self.controller._param("queue_hysteresis_m")
        else:
            self._ultrasonic_queue = distance < threshold
        return self._ultrasonic_queue or bool(self.camera_queue and self.camera_queue())

    def _pedestrian_now(self) -> bool:
        # a PIR flagged stuck is no witness (stuck at "someone" it would call the crossing every cycle): the
        # camera model's pedestrian head stands in while it is trusted, beside the button
        if not self.sensor_ok("pir"):
            return bool(self.camera_pedestrian and self.camera_pedestrian())
        return bool(_read(lambda: self.board.pir.motion_detected))

    def tick(self, work: Callable[[], Any] | None = None) -> None:
        """One controller tick: perhaps a phase change (first, so it is on time), then ``work`` (sampling, the
        camera), then the heartbeat and the wait until the next tick is due."""
        self.controller.decide()
        if work is not None:
            work()
        self.health.heartbeat = time.time()
        self.health.signals = self.monitor.status()
        self.health.phase = self.controller.phase.name
        self.controller.advance()

    def wind_down(self, limit_s: float = 120.0) -> None:
        """Tick on until the controller has brought the lamps to the all-red clearance (an app that stops
        must not leave a green lit with nobody behind it); ``limit_s`` bounds it whatever the parameters."""
        self.controller.finish()
        end = self.elapsed + limit_s
        while not self.controller.finished and self.elapsed < end - 1e-9:
            self.tick()

    def sample(self, ts: float) -> list[tuple[str, float, float]]:
        """One reading of every logged sensor at intersection time ``ts``."""
        b = self.board
        values = {
            "queue_distance_m": _read(lambda: b.distance.distance),
            "light": _read(lambda: b.light_sensor.value),
            "road_temperature_c": b.road_temperature_c,
            "cpu_temperature_c": b.cpu.temperature,
            "pot": b.pot.value,
        }
        return [(name, round(float(v), 4), ts) for name, v in values.items()]

    def effective(self) -> dict[str, Any]:
        """Parameter values in effect in the controller now."""
        return self.controller.effective()

    def lateness_p(self, q: float) -> float | None:
        """The q-th percentile (0..100) of phase-change lateness in ms (real time only), or None."""
        late = sorted(self.controller.lateness_s)
        if not late:
            return None
        return round(1000 * late[min(len(late) - 1, int(q / 100 * len(late)))], 2)

    def close(self) -> None:
        self.monitor.close()

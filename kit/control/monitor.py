"""The conflict monitor: the only thing that drives the signal lamps, and it refuses anything unsafe.

A real intersection's conflict monitor unit (CMU) sits between the controller and the lamps and puts the
signals into a safe state when it sees something wrong, whatever the controller's software did. The
kit's does the same for every controller (fixed, adaptive, a student's policy): controllers *ask* for
``(car, pedestrian)`` states and the monitor shows them only when

* no conflicting greens: pedestrians walk only while the car light is red;
* amber is long enough: green never goes straight to red, and amber lasts at least ``min_amber_s``;
  a flashing amber ends in a steady amber too (as a controller's switch from flash to the stop-and-go
  plan does), so a driver never meets red straight out of a flash;
* all-red clearance: cars get red+amber/green and pedestrians get green only after car red and
  pedestrian red (or dark) have both shown for at least ``min_all_red_s``.

A request that breaks a rule is refused: the lamps go to all red at once and stay there (latched, as a
CMU latches into flash) until :meth:`ConflictMonitor.reset`; ``fault`` says why. A stalled control
loop is the other danger: :meth:`watch` starts a watchdog thread that, when the controller has not
called :meth:`tick` for ``stall_s`` seconds of wall time, shows all red and says ``stalled``; the next
tick ends the stall (from all red, so the controller restarts its cycle safely).

The minimums are the smallest values the parameter table allows (``kit/store/defaults.py``), not the
live parameters: the monitor does not trust what it guards.

    >>> from kit import Board
    >>> from kit.clock import clock_for
    >>> from kit.control.monitor import ConflictMonitor
    >>> with Board(seed=0) as board:
    ...     monitor = ConflictMonitor(board, clock_for(board))
    ...     board.world.advance(2)                   # the all-red clearance has shown
    ...     monitor.request("green", "red")
    ...     monitor.request("red", "green")          # refused: amber skipped
    ...     monitor.fault, board.world.car_light_state(), board.world.ped_light_state()
    True
    False
    ('refused car green->red (amber skipped)', 'red', 'red')
"""

from __future__ import annotations

import threading
import time
from typing import Any

from kit.store.defaults import PARAMETERS

CAR_STATES = ("red", "red_amber", "green", "amber", "flashing_amber")
PED_STATES = ("red", "green", "off")
#: (red, amber, green) lamps of the car light for each steady state.
CAR_LAMPS = {"green": (0, 0, 1), "amber": (0, 1, 0), "red": (1, 0, 0), "red_amber": (1, 1, 0)}
PED_LAMPS = {"red": (1, 0), "green": (0, 1), "off": (0, 0)}
SAFE = ("red", "red")
#: Car states in which vehicles may be moving into the crossing.
MOVING = ("green", "amber", "red_amber", "flashing_amber")
#: What may follow each car state (a state may always stay as it is).
NEXT_CAR = {
    "red": ("red", "red_amber", "green", "flashing_amber"),
    "red_amber": ("red_amber", "green", "red"),
    "green": ("green", "amber", "flashing_amber"),
    "amber": ("amber", "red", "flashing_amber"),
    "flashing_amber": ("flashing_amber", "amber"),
}


#: The floors the monitor enforces: the smallest amber and all-red the parameter table allows.
MIN_AMBER_S = float(PARAMETERS["car_amber_s"].minimum)
MIN_ALL_RED_S = float(PARAMETERS["all_red_s"].minimum)


class ConflictMonitor:
    """Shows signal states on a board's lamps, refusing any unsafe change (see the module docstring).

    :param board: a :class:`kit.board.Board` (its ``car_light`` and ``ped_light``).
    :param clock: a :class:`kit.clock.Clock`; durations are measured on it (simulated time in simulation).
    :param stall_s: wall-clock seconds without :meth:`tick` after which the watchdog shows all red.
    """

    def __init__(
        self,
        board: Any,
        clock: Any,
        *,
        min_amber_s: float | None = None,
        min_all_red_s: float | None = None,
        stall_s: float = 5.0,
    ) -> None:
        self.board = board
        self.clock = clock
        self.min_amber_s = MIN_AMBER_S if min_amber_s is None else float(min_amber_s)
        self.min_all_red_s = MIN_ALL_RED_S if min_all_red_s is None else float(min_all_red_s)
        self.stall_s = float(stall_s)
        self.fault: str | None = None
        self.stalled = False
        self.refused = 0
        self.stalls = 0
        self.restart = False  #: set when a stall ends: the controller restarts its cycle from all red
        self._lock = threading.RLock()
        self._shown: tuple[str, str] | None = None
        self._car_since = self._all_red_since = clock.elapsed()
        self._last_tick = time.monotonic()
        self._watchdog: threading.Thread | None = None
        self._stop = threading.Event()
        self._write(SAFE)  # start from all red: every plan begins with its clearance

    # -- what controllers call ----------------------------------------------------------------------
    @property
    def shown(self) -> tuple[str, str]:
        """The (car, pedestrian) states on the lamps now."""
        return self._shown or SAFE

    @property
    def safe_state(self) -> bool:
        """True while a fault or a stall holds the lamps at all red."""
        return self.fault is not None or self.stalled

    def request(self, car: str, ped: str) -> bool:
        """Show ``(car, ped)`` if that is safe now; otherwise show all red, latch :attr:`fault`, return False."""
        with self._lock:
            self._last_tick = time.monotonic()
            if self.safe_state:
                return False
            problem = self.problem(car, ped)
            if problem is not None:
                self.refused += 1
                self.fault = f"refused {problem}"
                self._write(SAFE)
                return False
            self._write((car, ped))
            return True

    def tick(self) -> None:
        """The controller's heartbeat (once per tick); also blinks a flashing amber. Ends a stall."""
        with self._lock:
            self._last_tick = time.monotonic()
            if self.stalled:
                self.stalled = False  # all red has shown since: the controller restarts from its clearance
                self.restart = True
            if self.shown[0] == "flashing_amber" and not self.safe_state:
                self._lamps(("flashing_amber", self.shown[1]))

    def problem(self, car: str, ped: str) -> str | None:
        """Why ``(car, ped)`` may not be shown now (a phrase), or None when it may."""
        if car not in CAR_STATES:
            return f"unknown car state {car!r} (one of {', '.join(CAR_STATES)})"
        if ped not in PED_STATES:
            return f"unknown pedestrian state {ped!r} (one of {', '.join(PED_STATES)})"
        if ped == "green" and car != "red":
            return f"conflicting greens: pedestrians green while cars {car}"
        car0, ped0 = self.shown
        now = self.clock.elapsed()
        if car not in NEXT_CAR[car0]:
            why = " (amber skipped)" if car0 in ("green", "flashing_amber") else ""
            return f"car {car0}->{car}{why}"
        if car0 == "amber" and car != "amber" and now - self._car_since < self.min_amber_s - 1e-9:
            return f"amber of {now - self._car_since:.1f} s (at least {self.min_amber_s:g} s)"
        clear = self._all_red_since is not None and now - self._all_red_since >= self.min_all_red_s - 1e-9
        if car in ("green", "red_amber") and car0 == "red" and not clear:
            return f"car {car} without {self.min_all_red_s:g} s all-red clearance"
        if car == "flashing_amber" and car0 == "red" and not clear:
            return f"flashing amber without {self.min_all_red_s:g} s all-red clearance"
        if ped == "green" and ped0 != "green" and not clear:
            return f"pedestrian green without {self.min_all_red_s:g} s all-red clearance"
        return None

    def reset(self) -> None:
        """Clear a latched fault (an operator's step, as on a real CMU); the lamps stay all red."""
        with self._lock:
            self.fault = None

    # -- the watchdog ---------------------------------------------------------------------------------
    def watch(self) -> ConflictMonitor:
        """Start the watchdog thread (wall clock): no tick for ``stall_s`` seconds -> all red, ``stalled``."""
        if self._watchdog is None:
            self._last_tick = time.monotonic()
            self._watchdog = threading.Thread(target=self._watch, name="kit-conflict-monitor", daemon=True)
            self._watchdog.start()
        return self

    def _watch(self) -> None:
        while not self._stop.wait(min(0.1, self.stall_s / 4)):
            with self._lock:
                if not self.stalled and time.monotonic() - self._last_tick > self.stall_s:
                    self.stalled = True
                    self.stalls += 1
                    self._write(SAFE)

    def close(self) -> None:
        """Stop the watchdog (the lamps keep their state)."""
        self._stop.set()
        if self._watchdog is not None:
            self._watchdog.join(timeout=2)
            self._watchdog = None

    def status(self) -> str:
        """One line for ``kit status``."""
        if self.fault:
            return f"FAULT: {self.fault}; all red until reset"
        if self.stalled:
            return f"STALLED: no control tick for {self.stall_s:g} s; all red until the loop ticks again"
        return "ok"

    # -- the lamps ----------------------------------------------------------------------------------------
    def _write(self, state: tuple[str, str]) -> None:
        now = self.clock.elapsed()
        car0 = self.shown[0] if self._shown is not None else None
        if state[0] != car0:
            self._car_since = now
        all_red = state[0] == "red" and state[1] != "green"
        if not all_red:
            self._all_red_since = None
        elif self._all_red_since is None or self._shown is None:
            self._all_red_since = now
        self._shown = state
        self._lamps(state)

    def _lamps(self, state: tuple[str, str]) -> None:
        car, ped = state
        if car == "flashing_amber":
            # one second on, one off, on the monitor's clock (simulated time in simulation)
            car_lamps = (0, 1, 0) if int(self.clock.elapsed()) % 2 == 0 else (0, 0, 0)
        else:
            car_lamps = CAR_LAMPS[car]
        leds = list(zip(self.board.car_light, car_lamps)) + list(zip(self.board.ped_light, PED_LAMPS[ped]))
        # Lamps going dark first, then the ones lighting up: no moment shows both old and new greens.
        for led, on in leds:
            if not on and led.is_lit:
                led.off()
        for led, on in leds:
            if on and not led.is_lit:
                led.on()

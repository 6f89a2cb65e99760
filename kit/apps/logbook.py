"""The app's logbook: readings handed over by the control loop, written to the store off the control loop.

Storage must never stop the lights. The control loop only appends to an in-memory list; :meth:`Logbook.flush`
(run by the app's worker) writes it in one transaction. When the disk is full or the store read-only, the
lights keep running, logging pauses (``health.logging`` says why), the readings wait in memory up to
``max_buffered`` (the oldest are dropped beyond it, and counted), and writing resumes when space returns.
Retention also runs here: readings older than ``retention_days`` are merged per minute, and the store is held
under ``store_max_mb`` (the oldest sent readings go first, then unsent ones are merged per minute).

    >>> from kit import Store
    >>> from kit.apps.health import Health
    >>> from kit.apps.logbook import Logbook
    >>> store = Store(":memory:")
    >>> book = Logbook(store, store.params.live(), Health())
    >>> book.add([("pot", 0.5, 1792044000.0)])
    >>> book.flush(), store.readings.count()
    (1, 1)
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from typing import Any

from kit.apps.health import Health, short

log = logging.getLogger("kit.intersection")


class Logbook:
    """Buffers readings in memory and writes them to a :class:`kit.store.Store` in batches."""

    def __init__(self, store: Any, params: Any, health: Health, *, max_buffered: int = 500_000) -> None:
        self.store = store
        self.params = params
        self.health = health
        self.max_buffered = max_buffered
        self._rows: list[tuple[str, float, float]] = []
        self._lock = threading.Lock()
        self.paused: str | None = None
        self.dropped = {"buffer_overflow": 0, "refused": 0}

    def add(self, rows: list[tuple[str, float, float]]) -> None:
        """Hand readings over (the control loop's only storage call: no I/O)."""
        with self._lock:
            self._rows.extend(rows)
            over = len(self._rows) - self.max_buffered
            if over > 0:
                del self._rows[:over]  # the oldest go first; counted, never silently
                self.dropped["buffer_overflow"] += over
                self.health.dropped = dict(self.dropped)

    @property
    def buffered(self) -> int:
        return len(self._rows)

    def flush(self) -> int:
        """Write what is buffered (one transaction); returns how many. Never raises for a storage fault."""
        with self._lock:
            rows, self._rows = self._rows, []
        if not rows:
            return 0
        try:
            written = self.store.readings.append_many(rows)
        except (ValueError, TypeError) as exc:
            # One implausible reading must not hold the others back: write the good ones, count the bad.
            good = []
            for row in rows:
                try:
                    self.store.readings.check(row)
                    good.append(row)
                except (ValueError, TypeError) as bad:
                    self.dropped["refused"] += 1
                    log.warning("reading refused: %s", bad)
            self.health.dropped = dict(self.dropped)
            if not good:
                return 0
            try:
                written = self.store.readings.append_many(good)
            except Exception as again:  # noqa: BLE001
                return self._pause(good, again)
            del exc
        except Exception as exc:  # noqa: BLE001 - disk full, read-only, I/O error: keep the rows, keep the lights
            return self._pause(rows, exc)
        if self.paused:
            log.warning("logging resumed (%s was the problem)", self.paused)
            self.paused = None
            self.health.logging = "ok"
        return written

    def _pause(self, rows: list[tuple[str, float, float]], exc: BaseException) -> int:
        with self._lock:
            self._rows[:0] = rows
        reason = _storage_problem(exc)
        if self.paused != reason:
            log.warning("logging paused: %s; the lights keep running, %d readings wait in memory", reason, len(rows))
        self.paused = reason
        self.health.logging = f"PAUSED: {reason}; {self.buffered} readings wait in memory, resumes when it can write"
        return 0

    def retention(self, now: float) -> dict[str, int]:
        """Apply ``retention_days`` and ``store_max_mb``; returns what was done (also in ``health.retention``)."""
        try:
            done = self.store.readings.enforce(
                retention_days=self.params["retention_days"], max_mb=self.params["store_max_mb"], now=now
            )
        except Exception as exc:  # noqa: BLE001 - retention is housekeeping: never fatal
            self.health.retention = f"failed: {short(exc)}"
            return {}
        for key in ("dropped_sent", "merged_unsent", "merged_old"):
            if done.get(key):
                self.dropped[key] = self.dropped.get(key, 0) + done[key]
        self.health.dropped = dict(self.dropped)
        self.health.retention = done.get("summary", "ok")
        return done


def _storage_problem(exc: BaseException) -> str:
    text = str(exc).lower()
    if "full" in text or getattr(exc, "sqlite_errorcode", None) == getattr(sqlite3, "SQLITE_FULL", 13):
        return "disk full"
    if "readonly" in text or "read-only" in text or "read only" in text:
        return "store is read-only"
    if "disk i/o error" in text:
        return "disk I/O error"  # a write the card refused (a failing card, or a file-size limit): not "full"
    return short(exc)

"""Sensor readings as a time series: append (batched), query, aggregate per minute, prune, report size.

Table ``readings(id, sensor, ts, value, n)``: ``sensor`` is a name you choose (stored as a value, never
as SQL), ``ts`` epoch seconds UTC, ``value`` a float, ``n`` how many raw readings the row stands for
(1, or more after downsampling). Each appended reading also goes into the outbox, in the same
transaction, so nothing is stored without being queued for the cloud or queued without being stored.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterable, Mapping
from typing import Any

import sqlite_utils

from kit.store.db import Transaction
from kit.store.timestamps import TimeLike, to_epoch

_INSERT = "INSERT INTO readings (sensor, ts, value) VALUES (?, ?, ?)"
# One statement, run inside SQLite, queues every reading inserted since `before` (ids grow inside our
# write transaction, so the range is exact). It stores only the reading's id: the payload is built
# when the item is leased, which keeps append_many close to raw executemany speed.
_ENQUEUE = (
    "INSERT INTO outbox (kind, reading_id, created_ts) SELECT 'reading', id, ? FROM readings WHERE id > ? ORDER BY id"
)
# Readings still referenced by the outbox (not yet delivered, or dead-lettered) are never pruned.
_NOT_QUEUED = "id NOT IN (SELECT reading_id FROM outbox WHERE reading_id IS NOT NULL)"
_MINUTE = "CAST(ts / 60 AS INTEGER) * 60.0"
#: Plausible reading times: from 1970 (a Pi without a clock before NTP) to 2100. Epoch milliseconds
#: (13 digits) land far beyond, as do microseconds: refused at append, so one cannot stall the uploads.
TS_MIN, TS_MAX = 0.0, 4_102_444_800.0


class Readings:
    """Time series of sensor readings in the ``readings`` table. Reach it as ``store.readings``.

    >>> from kit.store import Store
    >>> store = Store(":memory:")
    >>> store.readings.append_many([("queue_m", 3.2, 1792044000.0), ("queue_m", 2.9, 1792044001.0)])
    2
    >>> store.readings.latest("queue_m")["value"]
    2.9
    >>> store.readings.per_minute("queue_m")[0]["count"]
    2
    """

    def __init__(self, db: sqlite_utils.Database, transaction: Transaction, path: str | None = None):
        self._db = db
        self._transaction = transaction
        self._path = path

    # -- writing ------------------------------------------------------------------------------------------
    def append(self, sensor: str, value: float, *, ts: TimeLike = None, upload: bool = True) -> int:
        """Store one reading (``ts`` defaults to now); returns its id. Queued in the outbox unless ``upload=False``."""
        rows = _normalize([(sensor, value, ts)], time.time())
        with self._transaction() as conn:
            before = conn.execute("SELECT coalesce(max(id), 0) FROM readings").fetchone()[0]
            cursor = conn.execute(_INSERT, rows[0])
            if upload:
                conn.execute(_ENQUEUE, [time.time(), before])
            return cursor.lastrowid

    def append_many(self, rows: Iterable[Any], *, upload: bool = True) -> int:
        """Store many readings in ONE transaction (all or none); returns how many.

        ``rows``: tuples ``(sensor, value, ts)`` (``ts`` may be omitted or ``None`` = now) or dicts with
        keys ``sensor``, ``value``, ``ts``. Every row is checked before anything is written; a bad row
        raises ``ValueError``/``TypeError`` naming its position. One commit per call is what makes this
        fast: call it with a batch (say 100–10 000 readings), not once per reading.
        """
        now = time.time()
        data = _normalize(rows, now)
        if not data:
            return 0
        with self._transaction() as conn:
            before = conn.execute("SELECT coalesce(max(id), 0) FROM readings").fetchone()[0]
            conn.executemany(_INSERT, data)
            if upload:
                conn.execute(_ENQUEUE, [now, before])
        return len(data)

    def check(self, row: Any) -> tuple[str, float, float]:
        """``(sensor, ts, value)`` for one row as :meth:`append_many` would store it, or the error it would raise.

        >>> from kit.store import Store
        >>> Store(":memory:").readings.check(("pot", 0.5, 1792044000000))
        Traceback (most recent call last):
        ...
        ValueError: row 0: ts 1792044000000 of 'pot' is not a plausible time (epoch seconds between 1970 and 2100; milliseconds? divide by 1000); nothing was written
        """
        return _normalize([row], time.time())[0]

    def enforce(self, *, retention_days: float, max_mb: float, now: TimeLike = None) -> dict[str, Any]:
        """Retention for a device that runs unattended: what the app runs every so often.

        1. readings older than ``retention_days`` are merged into one row per sensor per minute (sent ones;
           unsent ones wait for the cloud);
        2. while the store is larger than ``max_mb``: the oldest already-sent readings are deleted, then,
           if that is not enough, unsent readings are merged per minute (the outbox then carries the
           merged rows; their raw rows are counted as ``merged_unsent``).

        Returns counts (``merged_old``, ``dropped_sent``, ``merged_unsent``, ``size_mb``) and a ``summary``.
        """
        done: dict[str, Any] = {"merged_old": 0, "dropped_sent": 0, "merged_unsent": 0}
        old = self.prune(retention_days, downsample=True, now=now)
        done["merged_old"] = old["deleted"]
        budget = float(max_mb) * 1024 * 1024
        size = self._live_bytes()
        if size > budget:
            # Oldest sent data first, in slices (one transaction each), until under the budget.
            while size > budget:
                with self._transaction() as conn:
                    n = conn.execute(
                        f"DELETE FROM readings WHERE id IN (SELECT id FROM readings WHERE {_NOT_QUEUED} "
                        "ORDER BY ts LIMIT 5000)"
                    ).rowcount
                done["dropped_sent"] += n
                size = self._live_bytes()
                if n == 0:
                    break
            if size > budget:
                done["merged_unsent"] = self._merge_unsent()
                size = self._live_bytes()
        done["size_mb"] = round(size / 1024 / 1024, 2)
        parts = [f"{k.replace('_', ' ')} {v}" for k, v in done.items() if k != "size_mb" and v]
        done["summary"] = (", ".join(parts) + "; " if parts else "") + f"{done['size_mb']} MB of {max_mb:g} MB"
        return done

    def _live_bytes(self) -> int:
        # Pages in use (free pages are reused by new rows before the file grows).
        with self._transaction.lock:
            page = self._db.execute("PRAGMA page_size").fetchone()[0]
            count = self._db.execute("PRAGMA page_count").fetchone()[0]
            free = self._db.execute("PRAGMA freelist_count").fetchone()[0]
        return page * (count - free)

    def _merge_unsent(self) -> int:
        """Merge unsent raw readings per sensor per minute; the outbox then queues the merged rows."""
        with self._transaction() as conn:
            conn.execute(
                "CREATE TEMP TABLE IF NOT EXISTS kit_merge "
                "(sensor TEXT, minute REAL, value REAL, n INTEGER, PRIMARY KEY (sensor, minute))"
            )
            conn.execute("DELETE FROM kit_merge")
            unsent = "id IN (SELECT reading_id FROM outbox WHERE reading_id IS NOT NULL AND dead_ts IS NULL)"
            conn.execute(
                f"INSERT INTO kit_merge SELECT sensor, {_MINUTE}, sum(value * n) / sum(n), sum(n) "
                f"FROM readings WHERE {unsent} GROUP BY sensor, 2 HAVING count(*) > 1"
            )
            victims = (
                f"{unsent} AND EXISTS (SELECT 1 FROM kit_merge m WHERE m.sensor = readings.sensor "
                f"AND m.minute = {_MINUTE})"
            )
            conn.execute(f"DELETE FROM outbox WHERE reading_id IN (SELECT id FROM readings WHERE {victims})")
            merged = conn.execute(f"DELETE FROM readings WHERE {victims}").rowcount
            before = conn.execute("SELECT coalesce(max(id), 0) FROM readings").fetchone()[0]
            conn.execute("INSERT INTO readings (sensor, ts, value, n) SELECT sensor, minute, value, n FROM kit_merge")
            conn.execute(_ENQUEUE, [time.time(), before])
            conn.execute("DELETE FROM kit_merge")
        return merged

    def prune(
        self, older_than_days: float, downsample: bool = False, *, now: TimeLike = None, include_unsent: bool = False
    ) -> dict[str, int]:
        """Drop readings older than ``older_than_days`` (counted back from ``now``, default the clock).

        With ``downsample=True`` old readings are not lost but merged into one row per sensor per minute
        (the mean, with ``n`` = how many readings it stands for). One transaction. Readings still in the
        outbox (not yet delivered, or dead-lettered) are kept as they are, so pruning never loses data
        the cloud hasn't got; ``include_unsent=True`` drops them too, with their outbox items.
        Returns counts: ``{"deleted": rows removed, "added": minute rows added, "kept_unsent": old rows
        kept because they are still in the outbox}``.
        """
        days = float(older_than_days)
        if not math.isfinite(days) or days < 0:
            raise ValueError(f"older_than_days must be a number >= 0, got {older_than_days!r}")
        cutoff = to_epoch(now, what="now") - days * 86400
        with self._transaction() as conn:
            if include_unsent:
                conn.execute("DELETE FROM outbox WHERE reading_id IN (SELECT id FROM readings WHERE ts < ?)", [cutoff])
            kept = conn.execute(
                f"SELECT count(*) FROM readings WHERE ts < ? AND NOT {_NOT_QUEUED}", [cutoff]
            ).fetchone()[0]
            if not downsample:
                deleted = conn.execute(f"DELETE FROM readings WHERE ts < ? AND {_NOT_QUEUED}", [cutoff]).rowcount
                return {"deleted": deleted, "added": 0, "kept_unsent": kept}
            conn.execute(
                "CREATE TEMP TABLE IF NOT EXISTS kit_downsample "
                "(sensor TEXT, minute REAL, value REAL, n INTEGER, PRIMARY KEY (sensor, minute))"
            )
            conn.execute("DELETE FROM kit_downsample")
            # only minutes holding more than one row change; already-downsampled minutes are left alone
            conn.execute(
                f"INSERT INTO kit_downsample SELECT sensor, {_MINUTE}, sum(value * n) / sum(n), sum(n) "
                f"FROM readings WHERE ts < ? AND {_NOT_QUEUED} GROUP BY sensor, 2 HAVING count(*) > 1",
                [cutoff],
            )
            deleted = conn.execute(
                f"DELETE FROM readings WHERE ts < ? AND {_NOT_QUEUED} AND EXISTS (SELECT 1 FROM kit_downsample d "
                f"WHERE d.sensor = readings.sensor AND d.minute = {_MINUTE})",
                [cutoff],
            ).rowcount
            added = conn.execute(
                "INSERT INTO readings (sensor, ts, value, n) SELECT sensor, minute, value, n FROM kit_downsample"
            ).rowcount
            conn.execute("DELETE FROM kit_downsample")
            return {"deleted": deleted, "added": added, "kept_unsent": kept}

    # -- reading ------------------------------------------------------------------------------------------
    def latest(self, sensor: str) -> dict[str, Any] | None:
        """The newest reading of ``sensor`` as a dict (id, sensor, ts, value, n), or ``None``."""
        rows = self._query(
            "SELECT id, sensor, ts, value, n FROM readings WHERE sensor = ? ORDER BY ts DESC, id DESC LIMIT 1",
            [_sensor(sensor)],
        )
        return rows[0] if rows else None

    def range(
        self, sensor: str, start: TimeLike = 0.0, end: TimeLike = math.inf, *, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Readings of ``sensor`` with ``start <= ts < end``, oldest first (dicts: id, sensor, ts, value, n)."""
        lo, hi = _bounds(start, end)
        sql = "SELECT id, sensor, ts, value, n FROM readings WHERE sensor = ? AND ts >= ? AND ts < ? ORDER BY ts, id"
        args: list[Any] = [_sensor(sensor), lo, hi]
        if limit is not None:
            sql += " LIMIT ?"
            args.append(int(limit))
        return self._query(sql, args)

    def per_minute(self, sensor: str, start: TimeLike = 0.0, end: TimeLike = math.inf) -> list[dict[str, Any]]:
        """One row per minute that has readings: ``minute`` (epoch s of its start), count, mean, min, max."""
        lo, hi = _bounds(start, end)
        return self._query(
            f"SELECT {_MINUTE} AS minute, sum(n) AS count, sum(value * n) / sum(n) AS mean, "
            "min(value) AS min, max(value) AS max FROM readings "
            "WHERE sensor = ? AND ts >= ? AND ts < ? GROUP BY minute ORDER BY minute",
            [_sensor(sensor), lo, hi],
        )

    def tail(self, n: int = 10, sensor: str | None = None) -> list[dict[str, Any]]:
        """The last ``n`` readings (of one sensor, or of all), oldest first."""
        where, args = ("WHERE sensor = ?", [_sensor(sensor)]) if sensor is not None else ("", [])
        rows = self._query(
            f"SELECT id, sensor, ts, value, n FROM readings {where} ORDER BY ts DESC, id DESC LIMIT ?", [*args, int(n)]
        )
        return rows[::-1]

    def sensors(self) -> list[dict[str, Any]]:
        """Per sensor: name, count (raw readings), rows, first_ts, last_ts, min, max, mean."""
        return self._query(
            "SELECT sensor, sum(n) AS count, count(*) AS rows, min(ts) AS first_ts, max(ts) AS last_ts, "
            "min(value) AS min, max(value) AS max, sum(value * n) / sum(n) AS mean "
            "FROM readings GROUP BY sensor ORDER BY sensor"
        )

    def count(self, sensor: str | None = None) -> int:
        """Number of rows (of one sensor, or in total)."""
        if sensor is None:
            return self._query("SELECT count(*) AS c FROM readings")[0]["c"]
        return self._query("SELECT count(*) AS c FROM readings WHERE sensor = ?", [_sensor(sensor)])[0]["c"]

    def size(self) -> dict[str, Any]:
        """How big the store is: file bytes (database + WAL), rows per table, oldest/newest reading."""
        with self._transaction.lock:
            conn = self._db.conn
            page_size = conn.execute("PRAGMA page_size").fetchone()[0]
            pages = conn.execute("PRAGMA page_count").fetchone()[0]
            free = conn.execute("PRAGMA freelist_count").fetchone()[0]
            counts = {
                t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # fixed names, not user input
                for t in ("readings", "outbox", "parameter_history")
            }
            oldest, newest = conn.execute("SELECT min(ts), max(ts) FROM readings").fetchone()
        wal = 0
        if self._path and os.path.exists(self._path + "-wal"):
            wal = os.path.getsize(self._path + "-wal")
        return {
            "file_bytes": page_size * pages,
            "wal_bytes": wal,
            "free_bytes": page_size * free,
            "readings": counts["readings"],
            "outbox": counts["outbox"],
            "parameter_history": counts["parameter_history"],
            "oldest_ts": oldest,
            "newest_ts": newest,
        }

    def _query(self, sql: str, args: list[Any] | None = None) -> list[dict[str, Any]]:
        with self._transaction.lock:
            return list(self._db.query(sql, args or []))


def _sensor(sensor: Any) -> str:
    if not isinstance(sensor, str) or not sensor:
        raise TypeError(f"sensor must be a non-empty name (str), got {sensor!r}")
    return sensor


def _bounds(start: TimeLike, end: TimeLike) -> tuple[float, float]:
    return _edge(start, -math.inf, "start"), _edge(end, math.inf, "end")


def _edge(x: TimeLike, unbounded: float, what: str) -> float:
    if x is None:
        return unbounded
    if isinstance(x, float) and math.isinf(x):
        return x
    return to_epoch(x, what=what)


def _normalize(rows: Iterable[Any], now: float) -> list[tuple[str, float, float]]:
    """Check and convert rows to (sensor, ts, value) before anything is written; errors name the row."""
    if isinstance(rows, (str, bytes, Mapping)):
        raise TypeError(
            f"rows must be a list of (sensor, value, ts) tuples or of dicts, not a single {type(rows).__name__}"
        )
    out = []
    append = out.append
    isfinite = math.isfinite
    for i, row in enumerate(rows):
        try:
            if type(row) is tuple and len(row) == 3:
                sensor, value, ts = row
            elif isinstance(row, Mapping):
                sensor, value, ts = row["sensor"], row["value"], row.get("ts")
            elif isinstance(row, (tuple, list)) and len(row) in (2, 3):
                sensor, value, ts = (*row, None) if len(row) == 2 else row
            else:
                raise TypeError(f"expected (sensor, value, ts) or a dict, got {row!r}")
            if type(sensor) is not str or not sensor:
                raise TypeError(f"sensor must be a non-empty name (str), got {sensor!r}")
            if type(value) is not float:
                if isinstance(value, bool) or value is None or isinstance(value, (str, bytes)):
                    raise TypeError(f"value of {sensor!r} must be a number, got {value!r}")
                value = float(value)
            if not isfinite(value):
                raise ValueError(f"value of {sensor!r} must be finite, got {value!r} (skip failed readings instead)")
            if type(ts) is not float:
                ts = now if ts is None else to_epoch(ts, what="ts")
            if not TS_MIN <= ts < TS_MAX:
                raise ValueError(
                    f"ts {ts:.0f} of {sensor!r} is not a plausible time (epoch seconds between 1970 "
                    "and 2100; milliseconds? divide by 1000)"
                )
            append((sensor, ts, value))
        except KeyError as exc:
            raise ValueError(
                f"row {i}: missing key {exc.args[0]!r} (dict rows need sensor, value, ts); nothing was written"
            ) from None
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"row {i}: {exc}; nothing was written") from None
    return out

"""Store-and-forward queue for the cloud: lease a batch, send it, ack it (or fail it); dead-letter the hopeless.

Table ``outbox(id, kind, reading_id, payload, created_ts, attempts, lease_until, last_error, dead_ts)``. Ids only
grow and are never reused, so a receiver that remembers the ids it has seen can drop a resend: an
item sent, then lost before its ack, is delivered again with the same id.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlite_utils

from kit.store.db import Transaction
from kit.store.timestamps import TimeLike, to_epoch

# A 'reading' item's payload is built from its readings row when it is read out of the queue.
_ITEM_COLUMNS = (
    "o.id, o.kind, o.payload, o.attempts, o.created_ts, o.last_error, o.dead_ts, o.reading_id, r.sensor, r.ts, r.value"
)
_ITEMS = f"SELECT {_ITEM_COLUMNS} FROM outbox o LEFT JOIN readings r ON r.id = o.reading_id"


@dataclass(frozen=True)
class OutboxItem:
    """One queued message. ``id`` is its idempotency key; ``attempts`` counts failed deliveries so far."""

    id: int
    kind: str
    payload: dict[str, Any]
    attempts: int
    created_ts: float = 0.0
    last_error: str | None = field(default=None, compare=False)
    dead_ts: float | None = field(default=None, compare=False)


class Outbox:
    """The queue of things to send to the cloud, oldest first. Reach it as ``store.outbox``.

    >>> from kit.store import Store
    >>> store = Store(":memory:")
    >>> store.readings.append("queue_m", 3.2, ts=1792044000.0)
    1
    >>> items = store.outbox.lease(limit=100, lease_seconds=30)
    >>> items[0].kind, items[0].payload["value"]
    ('reading', 3.2)
    >>> store.outbox.ack(items)          # sent: gone from the queue
    1
    >>> store.outbox.depth()
    0
    """

    def __init__(self, db: sqlite_utils.Database, transaction: Transaction, max_attempts: Callable[[], int] | int = 5):
        self._db = db
        self._transaction = transaction
        self._max_attempts = max_attempts

    def enqueue(self, kind: str, payload: dict[str, Any], *, now: TimeLike = None) -> int:
        """Queue one message of ``kind`` (e.g. ``"event"``); returns its id. Joins an open transaction."""
        if not isinstance(kind, str) or not kind:
            raise TypeError(f"kind must be a non-empty str, got {kind!r}")
        try:
            text = json.dumps(payload, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"payload must be JSON-serialisable (no NaN): {exc}") from None
        with self._transaction() as conn:
            return conn.execute(
                "INSERT INTO outbox (kind, payload, created_ts) VALUES (?, ?, ?)", [kind, text, to_epoch(now)]
            ).lastrowid

    def lease(self, limit: int = 500, lease_seconds: float = 30, *, now: TimeLike = None) -> list[OutboxItem]:
        """Take up to ``limit`` waiting items, oldest first, for ``lease_seconds``.

        While leased, an item is not handed out again. :meth:`ack` removes it, :meth:`fail` puts it back
        (or dead-letters it). A lease that runs out with neither counts as a failed attempt ("lease
        expired"), so a sender that keeps crashing on one item cannot block the queue forever.
        """
        limit = int(limit)
        if limit < 1 or not lease_seconds > 0:
            raise ValueError(
                f"limit must be >= 1 and lease_seconds > 0, got limit={limit}, lease_seconds={lease_seconds!r}"
            )
        at = to_epoch(now, what="now")
        with self._transaction() as conn:
            expired = [
                r[0]
                for r in conn.execute(
                    "SELECT id FROM outbox WHERE dead_ts IS NULL AND lease_until IS NOT NULL AND lease_until <= ?", [at]
                )
            ]
            if expired:
                self._failed(conn, expired, f"lease expired (no ack or fail within {lease_seconds:g} s)", at, None)
            rows = conn.execute(
                f"{_ITEMS} WHERE o.dead_ts IS NULL AND o.lease_until IS NULL ORDER BY o.id LIMIT ?",
                [limit],
            ).fetchall()
            if rows:
                conn.execute(
                    "UPDATE outbox SET lease_until = ? WHERE id IN (SELECT value FROM json_each(?))",
                    [at + float(lease_seconds), json.dumps([r[0] for r in rows])],
                )
        return [_item(r) for r in rows]

    def ack(self, ids: Iterable[int | OutboxItem] | int | OutboxItem) -> int:
        """Items delivered: remove them. Unknown or already-acked ids are ignored (acks are idempotent)."""
        with self._transaction() as conn:
            return conn.execute(
                "DELETE FROM outbox WHERE id IN (SELECT value FROM json_each(?))", [json.dumps(_ids(ids))]
            ).rowcount

    def fail(
        self,
        ids: Iterable[int | OutboxItem] | int | OutboxItem,
        error: str,
        *,
        max_attempts: int | None = None,
        now: TimeLike = None,
    ) -> list[int]:
        """Delivery failed: count an attempt, keep ``error``, release the lease so the item is retried.

        An item that has now failed ``max_attempts`` times (default: the ``outbox_max_attempts``
        parameter) is dead-lettered: kept, but no longer leased; see :meth:`dead`. Returns the ids
        dead-lettered by this call.
        """
        with self._transaction() as conn:
            return self._failed(conn, _ids(ids), str(error), to_epoch(now, what="now"), max_attempts)

    def dead_letter(
        self, ids: Iterable[int | OutboxItem] | int | OutboxItem, reason: str, *, now: TimeLike = None
    ) -> list[int]:
        """Dead-letter these items at once with ``reason`` (an item that can never be delivered as it is,
        e.g. a reading whose time cannot be a date). Their neighbours are untouched. Returns the ids."""
        with self._transaction() as conn:
            ids = _ids(ids)
            conn.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?, lease_until = NULL, dead_ts = ? "
                "WHERE dead_ts IS NULL AND id IN (SELECT value FROM json_each(?))",
                [str(reason), to_epoch(now, what="now"), json.dumps(ids)],
            )
            return ids

    def oldest_ts(self) -> float | None:
        """Time (epoch s) of the oldest item waiting: its reading's time, else when it was queued; None if empty."""
        with self._transaction.lock:
            row = self._db.execute(
                "SELECT min(coalesce(r.ts, o.created_ts)) FROM outbox o LEFT JOIN readings r ON r.id = o.reading_id "
                "WHERE o.dead_ts IS NULL"
            ).fetchone()
        return row[0]

    def depth(self) -> int:
        """How many items wait to be delivered (leased ones included, dead letters not)."""
        with self._transaction.lock:
            return self._db.execute("SELECT count(*) FROM outbox WHERE dead_ts IS NULL").fetchone()[0]

    def dead(self, limit: int | None = None) -> list[OutboxItem]:
        """Dead-lettered items, oldest first, with their ``last_error``."""
        sql = f"{_ITEMS} WHERE o.dead_ts IS NOT NULL ORDER BY o.id"
        args = []
        if limit is not None:
            sql += " LIMIT ?"
            args.append(int(limit))
        with self._transaction.lock:
            return [_item(r) for r in self._db.execute(sql, args).fetchall()]

    def retry_dead(self, ids: Iterable[int | OutboxItem] | None = None) -> int:
        """Give dead letters (all, or these ids) another chance: attempts back to 0. Returns how many."""
        with self._transaction() as conn:
            sql = "UPDATE outbox SET dead_ts = NULL, attempts = 0, lease_until = NULL WHERE dead_ts IS NOT NULL"
            if ids is None:
                return conn.execute(sql).rowcount
            return conn.execute(sql + " AND id IN (SELECT value FROM json_each(?))", [json.dumps(_ids(ids))]).rowcount

    def _failed(self, conn: Any, ids: list[int], error: str, at: float, max_attempts: int | None) -> list[int]:
        limit = self._limit(max_attempts)
        id_list = json.dumps(ids)
        conn.execute(
            "UPDATE outbox SET attempts = attempts + 1, last_error = ?, lease_until = NULL "
            "WHERE dead_ts IS NULL AND id IN (SELECT value FROM json_each(?))",
            [error, id_list],
        )
        dead = [
            r[0]
            for r in conn.execute(
                "SELECT id FROM outbox WHERE dead_ts IS NULL AND attempts >= ? AND id IN (SELECT value FROM json_each(?)) "
                "ORDER BY id",
                [limit, id_list],
            )
        ]
        if dead:
            conn.execute(
                "UPDATE outbox SET dead_ts = ? WHERE id IN (SELECT value FROM json_each(?))", [at, json.dumps(dead)]
            )
        return dead

    def _limit(self, max_attempts: int | None) -> int:
        value = (
            max_attempts
            if max_attempts is not None
            else (self._max_attempts() if callable(self._max_attempts) else self._max_attempts)
        )
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"max_attempts must be an integer >= 1, got {value!r}")
        return value


def _item(row: tuple) -> OutboxItem:
    id_, kind, payload, attempts, created, error, dead, reading_id, sensor, ts, value = row
    if reading_id is not None:
        data = {"reading_id": reading_id, "sensor": sensor, "ts": ts, "value": value}
    else:
        data = json.loads(payload)
    return OutboxItem(id_, kind, data, attempts, created, error, dead)


def _ids(ids: Any) -> list[int]:
    if isinstance(ids, (int, OutboxItem)) and not isinstance(ids, bool):
        ids = [ids]
    out = []
    for x in ids:
        x = x.id if isinstance(x, OutboxItem) else x
        if isinstance(x, bool) or not isinstance(x, int):
            raise TypeError(f"outbox ids must be ints or OutboxItems, got {x!r}")
        out.append(x)
    return out

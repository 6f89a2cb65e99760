"""``Store``: the kit's one SQLite file, with its parameters, readings and outbox."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import sqlite_utils

from kit.store.db import Transaction, connect, default_path
from kit.store.outbox import Outbox
from kit.store.params import Params
from kit.store.readings import Readings


class Store:
    """Everything the kit keeps on the device, in one SQLite file (WAL mode) any SQLite tool can read.

    ``path`` defaults to ``$KIT_HOME/kit.db`` (or ``~/.kit/kit.db``); ``":memory:"`` keeps nothing.
    Three parts, each a handful of verbs: ``params`` (validated settings with history), ``readings``
    (time series) and ``outbox`` (what still has to go to the cloud). ``db`` is the plain
    sqlite-utils ``Database`` for your own queries.

        >>> from kit.store import Store
        >>> store = Store(":memory:")
        >>> store.params.set("car_green_s", 25)
        25.0
        >>> store.readings.append("road_temp_c", 11.5, ts="2026-10-15T06:00:00Z")
        1
        >>> store.outbox.depth()
        1
        >>> list(store.db.query("select sensor, value from readings"))
        [{'sensor': 'road_temp_c', 'value': 11.5}]
        >>> store.close()

    A file that is not a kit store (not SQLite, damaged, another program's database) raises
    ``StoreOpenError`` and is left untouched. Two processes may use the same file at once; a writer
    waits up to ``busy_timeout_s`` for the other to finish its transaction.

    ``readonly=True`` is for looking only: a missing store is an error (nothing is created), any write
    is refused, and a store on a read-only mount opens. See docs/storage.md for reading the file with
    other tools while the kit runs.
    """

    def __init__(
        self, path: str | os.PathLike[str] | None = None, *, busy_timeout_s: float = 5.0, readonly: bool = False
    ):
        self.path = ":memory:" if str(path) == ":memory:" else str(Path(path or default_path()).expanduser())
        self.readonly = readonly
        self.db: sqlite_utils.Database = connect(self.path, busy_timeout_s=busy_timeout_s, readonly=readonly)
        self._transaction = Transaction(self.db)
        try:
            self.params = Params(self.db, self._transaction, sync_defaults=not readonly)
            self.readings = Readings(self.db, self._transaction, None if self.path == ":memory:" else self.path)
            self.outbox = Outbox(self.db, self._transaction, lambda: self.params.get("outbox_max_attempts"))
        except BaseException:
            self.db.close()
            raise

    def transaction(self) -> Any:
        """``with store.transaction():`` groups several writes into one all-or-nothing transaction."""
        return self._transaction()

    def check(self) -> list[str]:
        """SQLite's integrity check: an empty list when the file is sound, else the problems found."""
        with self._transaction.lock:
            rows = [r[0] for r in self.db.execute("PRAGMA integrity_check").fetchall()]
        return [] if rows == ["ok"] else rows

    def vacuum(self) -> int:
        """Give the space freed by pruning back to the file system; returns the bytes saved.

        Rewrites the whole file (it needs as much free space again, and a moment): run it after a big
        prune, not after every one.
        """
        with self._transaction.lock:
            before = self._bytes()
            self.db.execute("VACUUM")
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            return before - self._bytes()

    def _bytes(self) -> int:
        page_size = self.db.execute("PRAGMA page_size").fetchone()[0]
        return page_size * self.db.execute("PRAGMA page_count").fetchone()[0]

    def close(self) -> None:
        """Close the file (the WAL is checkpointed into it). Safe to call twice.

        The last connection to close takes an exclusive lock for a moment to fold the WAL into the file; a
        reader that opens in that moment waits for it if it has a busy timeout (Python's sqlite3: 5 s by
        default; the ``sqlite3`` shell: ``.timeout 2000``), and fails with "database is locked" otherwise.
        """
        with self._transaction.lock:
            self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self.path!r})"

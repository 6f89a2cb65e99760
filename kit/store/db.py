"""Opening the kit's SQLite file safely: refuse what isn't ours, WAL, busy timeout, the schema.

A file that is not a SQLite database, a damaged one, or another program's database is never
overwritten or "fixed": opening it raises :class:`StoreOpenError` and the file is left byte-for-byte
as it was.
"""
from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from pathlib import Path
from typing import Iterator

import sqlite_utils
from kit.errors import KitRuntimeError

SQLITE_HEADER = b"SQLite format 3\x00"
# PRAGMA application_id marks a file as a kit store (b"EdgP"), so another program's database is not mistaken for one.
APPLICATION_ID = int.from_bytes(b"EdgP", "big")
SCHEMA_VERSION = 1

# Tables are named for what they hold; every time is epoch seconds (UTC, REAL). See docs/storage.md.
SCHEMA = """
CREATE TABLE IF NOT EXISTS parameters (
    name TEXT PRIMARY KEY,
    value,                      -- no declared type: kept exactly as set (REAL, INTEGER, TEXT; bool as 0/1)
    source TEXT NOT NULL,       -- 'default', 'local', 'cloud' or 'lab'
    updated_ts REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS parameter_history (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    old_value,
    new_value,
    source TEXT NOT NULL,
    ts REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS parameter_history_name ON parameter_history(name, id);
CREATE TABLE IF NOT EXISTS readings (
    id INTEGER PRIMARY KEY,
    sensor TEXT NOT NULL,
    ts REAL NOT NULL,
    value REAL NOT NULL,
    n INTEGER NOT NULL DEFAULT 1  -- raw readings this row stands for (>1 after downsampling)
);
CREATE INDEX IF NOT EXISTS readings_sensor_ts ON readings(sensor, ts);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- AUTOINCREMENT: an id is never reused, so it is a safe idempotency key
    kind TEXT NOT NULL,         -- 'reading', or whatever kind enqueue() was given
    reading_id INTEGER,         -- kind 'reading': the readings row to send (kept until delivered)
    payload TEXT,               -- JSON for other kinds; NULL for 'reading' (built from the readings row)
    created_ts REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,  -- failed deliveries so far
    lease_until REAL,           -- leased to a sender until this time
    last_error TEXT,
    dead_ts REAL                -- set when dead-lettered
);
-- partial: only leased rows are in it, so queuing a reading costs nothing extra
CREATE INDEX IF NOT EXISTS outbox_leased ON outbox(lease_until) WHERE lease_until IS NOT NULL;
CREATE VIEW IF NOT EXISTS readings_utc AS
    SELECT id, sensor, strftime('%Y-%m-%dT%H:%M:%fZ', ts, 'unixepoch') AS time_utc, value, n FROM readings;
"""
KIT_TABLES = ("parameters", "parameter_history", "readings", "outbox")


class StoreOpenError(KitRuntimeError):
    """The file can't be used as a kit store (not SQLite, damaged, or another program's database).

    The file has not been modified. The message names the path and what to do.
    """


def default_path() -> Path:
    """``$KIT_HOME/kit.db``, or ``~/.kit/kit.db`` when ``KIT_HOME`` is not set."""
    home = os.environ.get("KIT_HOME")
    return Path(home) / "kit.db" if home else Path.home() / ".kit" / "kit.db"


def check_header(path: Path) -> None:
    """Raise :class:`StoreOpenError` unless ``path`` is missing, empty or starts like a SQLite file."""
    if path.is_dir():
        raise StoreOpenError(f"{path} is a folder, not a database file; pass a file path such as {path / 'kit.db'}")
    if not path.exists():
        return
    with open(path, "rb") as f:
        head = f.read(len(SQLITE_HEADER))
    if head and head != SQLITE_HEADER[: len(head)] or 0 < len(head) < len(SQLITE_HEADER):
        raise StoreOpenError(
            f"{path} is not a SQLite database (it starts with {head[:16]!r}); the kit left it untouched. "
            "Move it away or pass another path (--db PATH)."
        )


def connect(path: str | Path, *, busy_timeout_s: float = 5.0) -> sqlite_utils.Database:
    """Open (or create) the store file and return a sqlite-utils ``Database`` with the kit's schema."""
    memory = str(path) == ":memory:"
    if not memory:
        path = Path(path).expanduser()
        check_header(path)
        path.parent.mkdir(parents=True, exist_ok=True)
    # isolation_level=None: the kit issues BEGIN IMMEDIATE / COMMIT itself (see Transaction), so a write
    # never has to upgrade a read lock (the classic cause of "database is locked" with two writers).
    conn = sqlite3.connect(
        ":memory:" if memory else str(path), timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
    )
    try:
        _check_is_kit_store(conn, path)
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
        if not memory and conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            conn.execute("PRAGMA journal_mode = WAL")
        # NORMAL in WAL mode: a killed process never loses a committed transaction; a power cut can lose the
        # last few but never corrupts the file. One fsync per checkpoint instead of one per commit.
        conn.execute("PRAGMA synchronous = NORMAL")
        if conn.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
            _create_schema(conn)
    except BaseException:
        conn.close()
        raise
    return sqlite_utils.Database(conn, execute_plugins=False)


def _check_is_kit_store(conn: sqlite3.Connection, path: str | Path) -> None:
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise StoreOpenError(
            f"{path} is damaged or not a SQLite database ({exc}); the kit left it untouched. "
            "Restore a backup, move it away, or pass another path (--db PATH)."
        ) from None
    user_tables = [t for t in tables if not t.startswith("sqlite_")]
    if user_tables and app_id != APPLICATION_ID:
        raise StoreOpenError(
            f"{path} is a SQLite database but not a kit store (its tables: {', '.join(sorted(user_tables)[:8])}); "
            "the kit left it untouched. Pass another path (--db PATH)."
        )


def _create_schema(conn: sqlite3.Connection) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]  # another process may have just done it
        if version > SCHEMA_VERSION:
            raise StoreOpenError(
                f"this store was written by a newer kit (schema {version}, this kit knows {SCHEMA_VERSION}); "
                "upgrade the kit (pip install -U edge-python)"
            )
        if version < SCHEMA_VERSION:
            for statement in split_statements(SCHEMA):
                conn.execute(statement)
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def split_statements(script: str) -> list[str]:
    """Split a script into statements (executescript would COMMIT our open transaction)."""
    out, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            out.append(current.strip())
            current = ""
    return out


class Transaction:
    """``with transaction:`` runs the block as one write transaction (nested blocks join the outer one).

    Shared by the store's parts so that e.g. readings and their outbox items commit together. A lock
    makes one ``Store`` safe to use from several threads (gpiozero callbacks run in their own thread).
    """

    def __init__(self, db: sqlite_utils.Database):
        self.db = db
        self.lock = threading.RLock()
        self._depth = 0

    @contextlib.contextmanager
    def __call__(self) -> Iterator[sqlite3.Connection]:
        with self.lock:
            conn = self.db.conn
            if self._depth:
                self._depth += 1
                try:
                    yield conn
                finally:
                    self._depth -= 1
                return
            conn.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield conn
            except BaseException:
                self._depth = 0
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            self._depth = 0
            try:
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

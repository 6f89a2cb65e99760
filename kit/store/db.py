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
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import sqlite_utils

from kit.errors import KitError, KitRuntimeError

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


class StoreDamagedError(StoreOpenError):
    """The file is a damaged SQLite database (a bad page, cut short): restore a backup or recover it."""


class StoreReadOnlyError(StoreOpenError):
    """The command writes, but the file or its folder is read-only (permissions or a read-only mount)."""


class StoreMissingError(StoreOpenError):
    """A reading command was pointed at a store that does not exist (nothing was created)."""


class StoreBusyError(StoreOpenError):
    """Another program held the store locked for longer than the busy timeout."""


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


def _writable(path: Path) -> bool:
    """Whether the kit may write ``path`` and create its -wal/-shm beside it (file mode or a read-only mount)."""
    folder = path.parent
    return os.access(folder, os.W_OK | os.X_OK) and (not path.exists() or os.access(path, os.W_OK))


def connect(path: str | Path, *, busy_timeout_s: float = 5.0, readonly: bool = False) -> sqlite_utils.Database:
    """Open (or create) the store file and return a sqlite-utils ``Database`` with the kit's schema.

    Everything that decides whether the file is ours is read before anything is written (the switch to
    WAL included): another program's database, a store from a newer kit, or a damaged file is refused and
    left byte-for-byte as it was. ``readonly=True`` (the reading verbs) never creates or changes a file:
    a missing store raises :class:`StoreMissingError`, and a file on a read-only mount can still be read.
    """
    memory = str(path) == ":memory:"
    if not memory:
        path = Path(path).expanduser()
        check_header(path)
        if readonly and (not path.exists() or path.stat().st_size == 0):
            raise StoreMissingError(
                f"no kit store at {path} (nothing has been stored there yet); check --db or $KIT_HOME, "
                "or create it with a command that writes (kit params set, kit run intersection)"
            )
        if not readonly:
            if not path.parent.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
            if not _writable(path):
                raise StoreReadOnlyError(
                    f"{path} is read-only (file permissions or a read-only mount) and this command writes to it; "
                    "make it writable, or pass a writable --db. Reading verbs (params get, readings tail) work as is."
                )
    conn = _open(path, memory=memory, readonly=readonly, busy_timeout_s=busy_timeout_s)
    try:
        fresh = _check_is_kit_store(conn, path, readonly=readonly)
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
        if readonly:
            conn.execute("PRAGMA query_only = 1")
            return sqlite_utils.Database(conn, execute_plugins=False)
        if not memory and conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            conn.execute("PRAGMA journal_mode = WAL")
        # NORMAL in WAL mode: a killed process never loses a committed transaction; a power cut can lose the
        # last few but never corrupts the file. One fsync per checkpoint instead of one per commit.
        conn.execute("PRAGMA synchronous = NORMAL")
        if fresh or conn.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
            _create_schema(conn)
    except sqlite3.OperationalError as exc:
        conn.close()
        raise _explain(exc, path) from None
    except BaseException:
        conn.close()
        raise
    return sqlite_utils.Database(conn, execute_plugins=False)


def _open(path: str | Path, *, memory: bool, readonly: bool, busy_timeout_s: float) -> sqlite3.Connection:
    # isolation_level=None: the kit issues BEGIN IMMEDIATE / COMMIT itself (see Transaction), so a write
    # never has to upgrade a read lock (the classic cause of "database is locked" with two writers).
    target, uri = (":memory:", False) if memory else (str(path), False)
    if readonly:
        # mode=ro: never creates the file, and opens one on a read-only mount (SQLite reads a WAL store there
        # as long as it was closed cleanly, i.e. has no -wal file left to replay).
        path = Path(path).resolve()
        target, uri = f"file:{urllib.parse.quote(str(path))}?mode=ro", True
        wal = path.with_name(path.name + "-wal")
        if not os.access(path.parent, os.W_OK | os.X_OK) and not wal.exists():
            # A read-only folder (or mount) and no -wal: SQLite can't create the -shm a WAL reader needs, and
            # nobody is writing (a writer would have made the -wal), so the file is read as it is.
            target += "&immutable=1"
    try:
        return sqlite3.connect(target, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False, uri=uri)
    except sqlite3.OperationalError as exc:
        raise _explain(exc, path) from None


def _explain(exc: sqlite3.OperationalError, path: str | Path) -> KitError:
    text = str(exc)
    if "locked" in text or "busy" in text:
        return StoreBusyError(
            f"{path} is locked by another program (waited for it: {text}); stop the other writer, or try again"
        )
    if "readonly" in text or "read-only" in text or "unable to open" in text:
        return StoreReadOnlyError(
            f"{path} can't be opened for this command ({text}): it or its folder is read-only, or the -wal/-shm "
            "files beside it belong to another user; make them writable, or pass another --db"
        )
    return StoreOpenError(f"{path} could not be opened ({text}); the kit left it untouched. Pass another --db")


def _check_is_kit_store(conn: sqlite3.Connection, path: str | Path, *, readonly: bool = False) -> bool:
    """Refuse anything that is not a healthy store of this kit; True when the file is new (nothing in it yet)."""
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.OperationalError as exc:
        raise _explain(exc, path) from None
    except sqlite3.DatabaseError as exc:
        raise StoreDamagedError(
            f"{path} is damaged or not a SQLite database ({exc}); the kit left it untouched. "
            "Restore a backup, move it away, or pass another path (--db PATH)."
        ) from None
    user_tables = [t for t in tables if not t.startswith("sqlite_")]
    if app_id not in (0, APPLICATION_ID):
        raise StoreOpenError(
            f"{path} belongs to another program (SQLite application_id {app_id:#010x}, a kit store has "
            f"{APPLICATION_ID:#010x}); the kit left it untouched. Pass another path (--db PATH)."
        )
    if user_tables and app_id != APPLICATION_ID:
        raise StoreOpenError(
            f"{path} is a SQLite database but not a kit store (its tables: {', '.join(sorted(user_tables)[:8])}); "
            "the kit left it untouched. Pass another path (--db PATH)."
        )
    if version > SCHEMA_VERSION:
        raise StoreOpenError(
            f"{path} was written by a newer kit (schema {version}, this kit knows {SCHEMA_VERSION}); "
            "upgrade the kit (pip install -U edge-python); the file was left untouched"
        )
    if not user_tables and version == 0:
        if readonly:
            raise StoreMissingError(f"{path} is an empty database, not a kit store yet; check --db")
        return True
    if app_id == APPLICATION_ID and not str(path) == ":memory:":
        _quick_check(conn, path)
    return False


def _quick_check(conn: sqlite3.Connection, path: str | Path) -> None:
    # quick_check reads every page once (O(file), ~no CPU beyond I/O): a damaged page is found at open, before
    # the first write meets it as "database disk image is malformed" in the middle of a run.
    try:
        problems = [r[0] for r in conn.execute("PRAGMA quick_check(3)")]
    except sqlite3.OperationalError as exc:
        raise _explain(exc, path) from None
    except sqlite3.DatabaseError as exc:
        problems = [str(exc)]
    if problems != ["ok"]:
        raise StoreDamagedError(
            f"{path} is damaged ({'; '.join(problems)[:200]}); the kit left it untouched. Restore a backup, or "
            f"salvage it with `sqlite3 {path} .recover | sqlite3 recovered.db`, or pass another path (--db PATH)."
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

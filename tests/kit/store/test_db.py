from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest

from kit.store import Store, StoreOpenError, default_path
from kit.store.db import StoreDamagedError, StoreMissingError

ROOT = Path(__file__).resolve().parents[3]


def _untouched(path, data):
    assert path.read_bytes() == data, "the kit modified a file it refused"
    assert not path.with_name(path.name + "-wal").exists() and not path.with_name(path.name + "-journal").exists()


@pytest.mark.parametrize("data", [b"temperature,22.5\n" * 100, b"SQLite format", b"\x00" * 4096])
def test_a_file_that_is_not_sqlite_is_refused_and_left_alone(tmp_path, data):
    path = tmp_path / "kit.db"
    path.write_bytes(data)
    with pytest.raises(StoreOpenError, match="not a SQLite database.*left it untouched.*--db"):
        Store(path)
    _untouched(path, data)


def test_a_damaged_database_is_refused_and_left_alone(tmp_path):
    path = tmp_path / "kit.db"
    with Store(path) as store:
        store.readings.append_many([("q", float(i), float(i)) for i in range(1000)])
    data = bytearray(path.read_bytes())
    data[100:4096] = b"\xa5" * (4096 - 100)  # the schema page: garbage
    path.write_bytes(bytes(data))
    with pytest.raises(StoreOpenError, match="damaged or not a SQLite database"):
        Store(path)
    _untouched(path, bytes(data))


def test_another_programs_database_is_refused(tmp_path):
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE readings (x)")
    conn.commit()
    conn.close()
    data = path.read_bytes()
    with pytest.raises(StoreOpenError, match="not a kit store.*readings"):
        Store(path)
    _untouched(path, data)


def test_a_folder_is_refused(tmp_path):
    with pytest.raises(StoreOpenError, match="is a folder"):
        Store(tmp_path)


def test_a_store_from_a_newer_kit_is_refused(tmp_path):
    path = tmp_path / "kit.db"
    Store(path).close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(StoreOpenError, match="newer kit"):
        Store(path)


def test_empty_file_and_missing_folders_become_a_store(tmp_path):
    (tmp_path / "empty.db").write_bytes(b"")
    with Store(tmp_path / "empty.db") as store:
        assert store.params.get("car_green_s") == 20.0
    with Store(tmp_path / "a" / "b" / "kit.db") as store:
        assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_default_path_follows_kit_home(tmp_path, monkeypatch):
    monkeypatch.setenv("KIT_HOME", str(tmp_path / "home"))
    assert default_path() == tmp_path / "home" / "kit.db"
    with Store() as store:
        assert store.path == str(tmp_path / "home" / "kit.db")
    monkeypatch.delenv("KIT_HOME")
    assert default_path().parts[-2:] == (".kit", "kit.db")


def test_the_file_reads_with_the_sqlite3_command_line_tool(tmp_path):
    sqlite3_cli = shutil.which("sqlite3")
    if sqlite3_cli is None:
        pytest.skip("the sqlite3 command line tool is not installed (apt-get install sqlite3)")
    path = tmp_path / "kit.db"
    with Store(path) as store:
        store.params.set("car_green_s", 25, source="lab")
        store.readings.append("queue_m", 0.75, ts="2026-10-15T06:00:00Z")
    sql = (
        "SELECT value FROM parameters WHERE name = 'car_green_s'; SELECT time_utc, sensor, value FROM readings_utc; "
        "SELECT kind, reading_id FROM outbox; SELECT name, old_value, new_value, source FROM parameter_history;"
    )
    out = subprocess.run([sqlite3_cli, str(path), sql], capture_output=True, text=True, check=True, timeout=30).stdout
    assert out.split() == ["25.0", "2026-10-15T06:00:00.000Z|queue_m|0.75", "reading|1", "car_green_s|20.0|25.0|lab"]


def test_a_truncated_database_is_refused_and_left_alone(tmp_path):
    path = tmp_path / "kit.db"
    with Store(path) as store:
        store.readings.append_many([("q", float(i), float(i)) for i in range(20_000)])
    data = path.read_bytes()[: path.stat().st_size // 2]  # half the file lost (a full SD card, a bad copy)
    path.write_bytes(data)
    with pytest.raises(StoreOpenError, match="damaged"):
        Store(path)
    _untouched(path, data)


def test_a_future_store_in_rollback_journal_mode_is_refused_before_anything_is_written(tmp_path):
    path = tmp_path / "kit.db"
    Store(path).close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = DELETE")
    conn.execute("PRAGMA user_version = 2")
    conn.close()
    data = path.read_bytes()
    with pytest.raises(StoreOpenError, match="newer kit"):
        Store(path)
    _untouched(path, data)  # header bytes 18-19 (the journal mode) unchanged too


def test_another_programs_empty_database_with_its_own_application_id_is_not_taken_over(tmp_path):
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA application_id = 1234")
    conn.close()
    data = path.read_bytes()
    with pytest.raises(StoreOpenError, match="belongs to another program.*0x000004d2"):
        Store(path)
    _untouched(path, data)


def test_a_damaged_page_is_found_at_open_not_at_the_next_write(tmp_path):
    path = tmp_path / "kit.db"
    with Store(path) as store:
        store.readings.append_many([("q", float(i), float(i)) for i in range(5000)])
    data = bytearray(path.read_bytes())
    page = 4096
    middle = (len(data) // page // 2) * page
    data[middle : middle + page] = b"\xa5" * page  # one page of readings overwritten (a bad SD card sector)
    path.write_bytes(bytes(data))
    with pytest.raises(StoreDamagedError, match=r"damaged.*left it untouched.*\.recover"):
        Store(path)
    _untouched(path, bytes(data))
    with pytest.raises(StoreDamagedError):
        Store(path, readonly=True)  # the reading verbs too (a reader of a WAL file leaves an empty -wal)
    assert path.read_bytes() == data


def test_reading_a_missing_store_creates_nothing(tmp_path):
    path = tmp_path / "typo" / "kit.db"
    with pytest.raises(StoreMissingError, match="no kit store at"):
        Store(path, readonly=True)
    assert not (tmp_path / "typo").exists()


def test_a_readonly_store_refuses_writes_and_changes_nothing(tmp_path):
    path = tmp_path / "kit.db"
    with Store(path) as store:
        store.readings.append("q", 1.0, ts=1.0)
    data = path.read_bytes()
    with Store(path, readonly=True) as store:
        assert store.readings.tail(1)[0]["value"] == 1.0
        with pytest.raises(sqlite3.OperationalError, match="readonly|read-only"):
            store.readings.append("q", 2.0)
    wal = path.with_name(path.name + "-wal")
    assert path.read_bytes() == data and (not wal.exists() or wal.stat().st_size == 0)


def _as_nobody(code: str, folder) -> subprocess.CompletedProcess:
    """Run Python code as an unprivileged user (root ignores file modes), or as ourselves when not root."""
    prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] if os.geteuid() == 0 else []
    if prefix and shutil.which("setpriv") is None:
        pytest.skip("needs setpriv (util-linux) to drop root")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HOME": str(folder)}
    return subprocess.run(
        [*prefix, sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=folder, timeout=60
    )


def test_a_store_that_is_read_only_for_us_is_read_and_named_read_only_not_damaged():
    folder = Path(tempfile.mkdtemp(prefix="kit-ro-"))
    try:
        folder.chmod(0o755)
        path = folder / "kit.db"
        with Store(path) as store:
            store.params.set("car_green_s", 25)
        path.chmod(0o644)
        data = path.read_bytes()
        folder.chmod(0o555)  # nobody may write the file nor create -wal/-shm beside it: a read-only mount
        kit = [sys.executable, "-m", "kit"]
        read = _as_nobody(
            f"import sys; from kit.cli import main; sys.exit(main(['params', 'get', 'car_green_s', "
            f"'--db', {str(path)!r}]))",
            folder,
        )
        assert read.returncode == 0 and read.stdout == "25\n", read.stderr
        write = _as_nobody(
            f"import sys; from kit.cli import main; sys.exit(main(['params', 'set', 'car_green_s', '30', "
            f"'--db', {str(path)!r}]))",
            folder,
        )
        assert write.returncode == 1 and "read-only" in write.stderr and "damaged" not in write.stderr, write.stderr
        assert "Traceback" not in read.stderr + write.stderr and kit
        assert path.read_bytes() == data
    finally:
        folder.chmod(0o755)
        shutil.rmtree(folder)


def test_closing_the_store_never_locks_out_a_sqlite3_shell_with_a_busy_timeout(tmp_path):
    """docs/storage.md: a reader sets a busy timeout (`.timeout 2000` in the sqlite3 shell).

    The last connection to close folds the WAL into the file under an exclusive lock; a reader arriving in
    that moment must wait, not fail. 60 open/write/close cycles of the kit against a shell reading throughout.
    """
    sqlite3_cli = shutil.which("sqlite3")
    if sqlite3_cli is None:
        pytest.skip("the sqlite3 command line tool is not installed (apt-get install sqlite3)")
    path = tmp_path / "kit.db"
    Store(path).close()
    done = threading.Event()

    def writer():
        try:
            for i in range(60):
                with Store(path) as store:
                    store.readings.append_many([("q", float(j), float(i * 100 + j)) for j in range(100)])
        finally:
            done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    failures, reads = [], 0
    while not done.is_set() or reads == 0:
        out = subprocess.run(
            [sqlite3_cli, "-cmd", ".timeout 2000", str(path), "SELECT count(*) FROM readings;"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        reads += 1
        if out.returncode != 0 or out.stderr:
            failures.append(out.stderr.strip())
    thread.join()
    assert failures == [], f"{len(failures)} of {reads} reads failed: {failures[:3]}"
    # the loop's last read may have started before the last write: count once more, after the writer
    out = subprocess.run([sqlite3_cli, str(path), "SELECT count(*) FROM readings;"], capture_output=True, text=True)
    assert int(out.stdout) == 6000

from __future__ import annotations

import shutil
import sqlite3
import subprocess

import pytest

from kit.store import Store, StoreOpenError, default_path


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
    sql = ("SELECT value FROM parameters WHERE name = 'car_green_s'; SELECT time_utc, sensor, value FROM readings_utc; "
           "SELECT kind, reading_id FROM outbox; SELECT name, old_value, new_value, source FROM parameter_history;")
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

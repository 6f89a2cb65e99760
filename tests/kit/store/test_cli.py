from __future__ import annotations

import json

import pytest

from kit.cli import main
from kit.store import Store


@pytest.fixture
def db(tmp_path):
    return str(tmp_path / "kit.db")


def kit(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_params_set_get_list_history(capsys, db):
    assert kit(capsys, "params", "set", "car_green_s", "25", "buzzer_enabled", "off", "--db", db)[0] == 0
    assert kit(capsys, "params", "get", "car_green_s", "--db", db)[1] == "25\n"
    assert kit(capsys, "params", "get", "buzzer_enabled", "--db", db)[1] == "false\n"
    code, out, _ = kit(capsys, "params", "list", "--db", db)
    line = next(l for l in out.splitlines() if l.startswith("car_green_s"))
    assert line.split()[:5] == ["car_green_s", "25", "s", "20", "local"]
    code, out, _ = kit(capsys, "params", "list", "--json", "--db", db)
    assert json.loads(out)["car_green_s"] == {"value": 25.0, "source": "local"}
    code, out, _ = kit(capsys, "params", "history", "car_green_s", "--db", db)
    assert "car_green_s  20   25   local" in out


@pytest.mark.parametrize(
    "argv, words",
    [
        (["car_green_s", "fast"], ["car_green_s", "between 5 and 120 s", "'fast'"]),
        (["car_amber_s", "60"], ["car_amber_s", "between 3 and 6 s"]),
        (["car_gren_s", "30"], ["unknown parameter", "car_green_s"]),
        (["car_green_s"], ["NAME VALUE pairs"]),
        (["night_mode", "disco"], ["'normal', 'flashing_amber'"]),
    ],
)
def test_params_set_refuses_bad_input_with_exit_2_and_changes_nothing(capsys, db, argv, words):
    code, out, err = kit(capsys, "params", "set", *argv, "--db", db)
    assert code == 2 and out == ""
    for word in words:
        assert word in err
    with Store(db) as store:
        assert store.params.history() == []


def test_params_reset_export_import(capsys, db, tmp_path):
    kit(capsys, "params", "set", "ped_green_s", "9", "--db", db)
    code, out, _ = kit(capsys, "params", "export", "--db", db)
    assert json.loads(out)["ped_green_s"] == 9.0
    assert "ped_green_s = 7 (default)" in kit(capsys, "params", "reset", "ped_green_s", "--db", db)[1]
    (tmp_path / "p.json").write_text(out)
    assert kit(capsys, "params", "import", str(tmp_path / "p.json"), "--source", "cloud", "--db", db)[0] == 0
    assert kit(capsys, "params", "get", "ped_green_s", "--db", db)[1] == "9\n"
    (tmp_path / "bad.json").write_text('{"ped_green_s": 9,,}')
    code, _, err = kit(capsys, "params", "import", str(tmp_path / "bad.json"), "--db", db)
    assert code == 2 and "not valid JSON" in err


def test_readings_tail_stats_prune(capsys, db):
    with Store(db) as store:
        store.readings.append_many([("queue_m", float(i), 1792044000.0 + i) for i in range(100)])
        store.outbox.ack(store.outbox.lease(limit=1000))
    code, out, _ = kit(capsys, "readings", "tail", "-n", "2", "--db", db)
    assert out.splitlines()[-1].split() == ["2026-10-15T06:01:39Z", "queue_m", "99"]
    code, out, _ = kit(capsys, "readings", "stats", "--db", db)
    assert "queue_m  100" in out and "outbox: 0 waiting" in out
    stats = json.loads(kit(capsys, "readings", "stats", "--json", "--db", db)[1])
    assert stats["sensors"][0]["count"] == 100
    code, out, _ = kit(capsys, "readings", "prune", "--older-than-days", "0", "--downsample", "--db", db)
    assert code == 0 and "100 rows downsampled into 2 per-minute rows" in out
    with Store(db) as store:
        store.readings.append("queue_m", 1.0)  # now: young, stays
    code, out, _ = kit(capsys, "readings", "prune", "--vacuum", "--db", db)  # default: retention_days (30)
    assert "older than 30 days: 2 rows deleted" in out  # the two October minutes
    assert "kept because they are still waiting" not in out and "file shrunk by" in out


def test_a_file_that_is_not_a_store_gives_one_clear_line(capsys, tmp_path):
    bad = tmp_path / "notes.txt"
    bad.write_text("shopping list\n")
    code, out, err = kit(capsys, "readings", "stats", "--db", str(bad))
    assert code == 1 and "not a SQLite database" in err and "Traceback" not in err
    assert bad.read_text() == "shopping list\n"


def test_default_db_is_under_kit_home(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("KIT_HOME", str(tmp_path / "home"))
    assert kit(capsys, "params", "set", "car_green_s", "30")[0] == 0
    assert (tmp_path / "home" / "kit.db").exists()


def test_registering_the_commands_loads_no_database_code():
    import subprocess
    import sys

    code = (
        "import argparse, sys, kit.store.cli as c; p = argparse.ArgumentParser(); "
        "c.register(p.add_subparsers()); print(sorted(m for m in sys.modules if m.startswith(('sqlite', 'kit.store'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['kit.store', 'kit.store.cli']", out

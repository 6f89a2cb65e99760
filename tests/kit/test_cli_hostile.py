"""Every ``kit`` verb against bad input: one line on stderr, the right exit code, nothing written, no traceback.

A table: each row is a command line (``{db}``, ``{tmp}`` and ``{free}`` are filled in), the exit code it must give
and words its one line must hold. Most rows run in-process (fast); a few run ``python -m kit`` end to end. After
every row the store file is byte-for-byte what it was, and reading verbs never create one.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from kit.cli import main
from kit.cloud.broker import free_port
from kit.store import Store

ROOT = Path(__file__).resolve().parents[2]
HUGE = "9" * 40
UNICODE = "car_grëën_s😀"

# (argv, exit code, words in the one line). Usage errors are 2, a world that refuses is 1.
BAD_INPUT = [
    # wrong types, out of range, nan/inf, huge integers, unicode, empty
    (["readings", "tail", "-n", HUGE, "--db", "{db}"], 2, "whole number from 1 to"),
    (["readings", "tail", "-n", "-5", "--db", "{db}"], 2, "whole number from 1 to"),
    (["readings", "tail", "-n", "ten", "--db", "{db}"], 2, "whole number"),
    (["params", "history", "-n", "1e400", "--db", "{db}"], 2, "whole number"),
    (["readings", "prune", "--older-than-days", "nan", "--db", "{db}"], 2, "got 'nan'"),
    (["readings", "prune", "--older-than-days=-inf", "--db", "{db}"], 2, "got '-inf'"),
    (["params", "set", "car_green_s", "nan", "--db", "{db}"], 2, "finite number"),
    (["params", "set", "car_green_s", "inf", "--db", "{db}"], 2, "finite number"),
    (["params", "set", "car_green_s", "1" + "0" * 400, "--db", "{db}"], 2, "finite number"),
    (["params", "set", "car_green_s", "1" + "0" * 40, "--db", "{db}"], 2, "between 5 and 120"),
    (["params", "set", "car_green_s", "", "--db", "{db}"], 2, "car_green_s"),
    (["params", "set", UNICODE, "25", "--db", "{db}"], 2, "unknown parameter"),
    (["params", "set", "device_id", "ünï cödé", "--db", "{db}"], 2, "device_id"),
    (["params", "set", "car_green_s", "--db", "{db}"], 2, "give a value for each name"),
    (["params", "get", UNICODE, "--db", "{db}"], 2, "unknown parameter"),
    (["params", "get", "nosuch", "--db", "{db}"], 2, "nosuch: unknown parameter; known parameters: car_green_s"),
    (["readings", "tail", "--sensor", "nosuch", "--db", "{db}"], 2, "the store has readings of queue_m"),
    (["params", "import", "{tmp}/huge.json", "--db", "{db}"], 2, "finite number"),
    (["params", "import", "{tmp}/digits.json", "--db", "{db}"], 2, "not a usable parameter file"),
    (["params", "import", "{tmp}/binary.json", "--db", "{db}"], 2, "not valid JSON"),
    (["params", "import", "{tmp}/list.json", "--db", "{db}"], 2, "expected an object"),
    (["params", "import", "{tmp}/missing.json", "--db", "{db}"], 1, "No such file"),
    (["params", "import", "{tmp}", "--db", "{db}"], 1, "Is a directory"),
    (["demo", "--minutes", "nan"], 2, "got 'nan'"),
    (["demo", "--minutes", "0"], 2, "more than 0"),
    (["demo", "--start", "x"], 2, "ISO date and time"),
    (["demo", "--leaves", "5"], 2, "from 0 to 1"),
    (["demo", "--seed", HUGE], 2, "whole number"),
    (["run", "intersection", "--hours", "nan", "--db", "{db}"], 2, "got 'nan'"),
    (["run", "intersection", "--hours", "-1", "--db", "{db}"], 2, "more than 0"),
    (["run", "intersection", "--sample-period", "nan", "--db", "{db}"], 2, "got 'nan'"),
    (["run", "intersection", "--leaves", "5", "--db", "{db}"], 2, "from 0 to 1"),
    (["run", "intersection", "--stuck", "pir=2", "--db", "{db}"], 2, "pir=0, pir=1 or distance=METRES"),
    (["run", "intersection", "--stuck", "light=0.5", "--db", "{db}"], 2, "got 'light=0.5'"),
    (["run", "intersection", "--stuck", "distance=nan", "--db", "{db}"], 2, "(0 to 4)"),
    (["run", "intersection", "--start", "x", "--db", "{db}"], 2, "ISO date and time"),
    (["run", "intersection", "--start", "9999-12-31", "--db", "{db}"], 2, "from 1970 to 2100"),
    (["run", "intersection", "--status", "{tmp}", "--db", "{db}"], 2, "file path to write"),
    (["run", "intersection", "--plot", "{tmp}", "--db", "{db}"], 2, "file path to write"),
    (["run", "intersection", "--plot", "{tmp}/day.txt", "--db", "{db}"], 2, "not a picture format"),
    (["run", "intersection", "--local-cloud", "--db", "{db}"], 2, "add --cloud"),
    (["run", "intersection", "--model", "nope", "--db", "{db}"], 2, "neither a shipped model"),
    (["run", "intersection", "--model", "{tmp}/notes.txt", "--db", "{db}"], 1, "could not be loaded"),
    (["run", "intersection", "--model", "{tmp}", "--db", "{db}"], 1, "could not be loaded"),
    (["run", "intersection", "--models", "{tmp}/notes.txt", "--db", "{db}"], 2, "is a file"),
    (["run", "intersection", "--models", "{tmp}", "--db", "{db}"], 2, "already holds other files"),
    (["model", "retrain", "--from-s3", "a/b"], 2, "letters, digits"),
    (["model", "deploy", "intersection", "--device", "bad id/x"], 2, "letters, digits"),
    (["model", "retrain", "--from-s3", "kit-1", "--holdout", "1"], 2, "--holdout"),
    (["run", "intersection", "--seed", "-1", "--db", "{db}"], 2, "whole number"),
    (["model", "train", "--epochs", "-1"], 2, "whole number from 1"),
    (["model", "train", "--width", "nan"], 2, "got 'nan'"),
    (["model", "train", "--conditions", "{{bad"], 2, "--conditions"),
    (["model", "train", "--conditions", "nightz"], 2, "unknown conditions preset"),
    (["model", "train", "--name", "../escape"], 2, "file stem"),
    (["model", "train", "--out", "{db}"], 2, "is a file"),
    (["model", "info", "nope"], 1, "shipped models: fusion"),
    (["model", "info", "{tmp}/missing.tflite"], 1, "missing.json"),
    (["model", "info", "{tmp}/badcard.tflite"], 1, "badcard.json is not a model card (bad JSON"),
    (["model", "info", "{tmp}/listcard.tflite"], 1, "listcard.json is not a model card"),
    (["model", "bench", "--n", "0"], 2, "whole number from 1"),
    (["model", "bench", "--threads", HUGE], 2, "whole number from 1"),
    (["model", "bench", "nope"], 1, "shipped models: fusion"),
    (["model", "compress", "--epochs", "0"], 2, "epochs"),
    (["model", "infer-serve", "--partition", "{tmp}/nowhere"], 2, "partition.json"),
    (["model", "infer-serve", "--partition", "{tmp}", "--rtt-ms", "inf"], 2, "got 'inf'"),
    (["model", "infer-serve", "--partition", "{tmp}", "--port", "99999"], 2, "0 to 65535"),
    (["cloud", "serve", "--port", "-1"], 2, "0 to 65535"),
    (["cloud", "serve", "--port", "99999"], 2, "0 to 65535"),
    (["cloud", "sync", "--timeout", "nan", "--db", "{db}"], 2, "got 'nan'"),
    (["cloud", "sync", "--interval", "-1", "--db", "{db}"], 2, "--interval"),
    (["no-such-verb"], 2, "invalid choice"),
    (["params"], 2, "required"),
    # missing, unwritable, directory paths
    (["params", "set", "car_green_s", "25", "--db", "{tmp}"], 1, "is a folder"),
    (["params", "set", "car_green_s", "25", "--db", "{tmp}/notes.txt"], 1, "not a SQLite database"),
    (["params", "set", "car_green_s", "25", "--db", "{tmp}/other.db"], 1, "not a kit store"),
    (["params", "set", "car_green_s", "25", "--db", "{tmp}/notes.txt/kit.db"], 1, "notes.txt"),
    (["readings", "stats", "--db", "{tmp}/damaged.db"], 1, "damaged"),
    (["params", "set", "car_green_s", "25", "--db", "{tmp}/damaged.db"], 1, "damaged"),
    (["status", "--status", "{tmp}/notes.txt"], 1, "not a status file"),
    (["status", "--status", "{tmp}"], 1, "Is a directory"),
]

# Reading verbs pointed at a store that does not exist: an error, and no file or folder appears.
READING_VERBS = [
    ["params", "get", "car_green_s"],
    ["params", "list"],
    ["params", "history"],
    ["params", "export"],
    ["readings", "tail"],
    ["readings", "stats"],
    ["status"],
    ["cloud", "status"],
]


@pytest.fixture(scope="module")
def _template(tmp_path_factory):
    """Made once: a kit store with a little in it, and the bad files the table points at."""
    tmp_path = tmp_path_factory.mktemp("world")
    db = tmp_path / "kit.db"
    with Store(db) as store:
        store.params.set("car_green_s", 25)
        store.readings.append_many([("queue_m", float(i), 1792044000.0 + i) for i in range(50)])
    (tmp_path / "notes.txt").write_text("shopping list\n")
    (tmp_path / "huge.json").write_text('{"car_green_s": 1e999}')
    (tmp_path / "digits.json").write_text('{"car_green_s": ' + "9" * 5000 + "}")
    (tmp_path / "binary.json").write_bytes(b"\xff\xfe\x00garbage")
    (tmp_path / "list.json").write_text("[1, 2]")
    for name, card in (("badcard", ""), ("listcard", "[1, 2]")):  # a model whose card beside it is damaged
        (tmp_path / f"{name}.tflite").write_bytes(b"\0" * 64)
        (tmp_path / f"{name}.json").write_text(card)
    other = sqlite3.connect(tmp_path / "other.db")
    other.execute("CREATE TABLE readings (x)")
    other.commit()
    other.close()
    damaged = tmp_path / "damaged.db"
    with Store(damaged) as store:
        store.readings.append_many([("q", float(i), float(i)) for i in range(5000)])
    data = bytearray(damaged.read_bytes())
    middle = (len(data) // 4096 // 2) * 4096
    data[middle : middle + 4096] = b"\xa5" * 4096
    damaged.write_bytes(bytes(data))
    return tmp_path


@pytest.fixture
def world(_template, tmp_path, monkeypatch):
    """A fresh copy of the template for each test; KIT_HOME inside it (the default store must not appear)."""
    import shutil

    folder = tmp_path / "world"
    shutil.copytree(_template, folder)
    monkeypatch.setenv("KIT_HOME", str(folder / "home"))
    monkeypatch.delenv("KIT_DEBUG", raising=False)
    return folder


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.name.endswith(("-wal", "-shm"))
    }


def _run(capsys, argv):
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse: usage errors
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def _one_clear_line(err: str) -> None:
    assert "Traceback" not in err and "internal error" not in err, err
    assert err.count("\n") == 1 and err.endswith("\n"), f"not one line: {err!r}"


@pytest.mark.parametrize(("argv", "code", "words"), BAD_INPUT, ids=[" ".join(a)[:60] for a, _, _ in BAD_INPUT])
def test_bad_input_is_one_line_the_right_code_and_nothing_written(world, capsys, argv, code, words):
    argv = [a.format(db=world / "kit.db", tmp=world, free=free_port()) for a in argv]
    before = _snapshot(world)
    got, out, err = _run(capsys, argv)
    assert got == code, (got, err)
    _one_clear_line(err)
    assert words in err, err
    assert _snapshot(world) == before, "a refused command changed a file"
    assert not (world / "home").exists(), "a refused command created the default store"


@pytest.mark.parametrize("argv", READING_VERBS, ids=[" ".join(a) for a in READING_VERBS])
def test_reading_verbs_never_create_a_store(world, capsys, argv):
    target = world / "typo" / "kit.db"
    code, _, err = _run(capsys, [*argv, "--db", str(target)])
    assert code == 1 and ("no kit store at" in err or "no status at" in err), err
    _one_clear_line(err)
    assert not (world / "typo").exists()


def test_reading_verbs_without_db_do_not_create_the_default_store(world, capsys):
    for argv in READING_VERBS:
        code, _, err = _run(capsys, argv)
        assert code == 1, (argv, err)
    assert not (world / "home").exists()


def test_a_locked_store_is_one_line_after_the_busy_timeout(world, capsys):
    holder = sqlite3.connect(world / "kit.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another program writing and never finishing
    try:
        before = _snapshot(world)
        code, _, err = _run(capsys, ["params", "set", "car_green_s", "30", "--db", str(world / "kit.db")])
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert code == 1 and "locked" in err and "another program" in err, err
    _one_clear_line(err)
    assert _snapshot(world) == before


@pytest.mark.parametrize("argv", [["cloud", "sync"], ["cloud", "provision"], ["cloud", "shadow"]])
def test_cloud_verbs_with_the_endpoint_down(world, capsys, monkeypatch, argv):
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    with Store(world / "kit.db") as store:
        depth = store.outbox.depth()
    code, _, err = _run(
        capsys, [*argv, "--db", str(world / "kit.db"), *(["--timeout", "5"] if argv[1] == "sync" else [])]
    )
    assert code == 1 and "unreachable" in err and "kit cloud serve" in err, err
    _one_clear_line(err)
    with Store(world / "kit.db") as store:
        assert store.outbox.depth() == depth, "nothing stored is lost when the cloud is down"


def test_cloud_on_aws_without_credentials(world, capsys, monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KIT_CLOUD", "aws")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(world / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(world / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance-role lookup: nothing leaves the machine
    code, _, err = _run(capsys, ["cloud", "provision", "--db", str(world / "kit.db")])
    assert code == 1 and "no AWS credentials" in err, err
    _one_clear_line(err)


def _kit(*argv, env=None, **kwargs):
    return subprocess.run(
        [sys.executable, "-m", "kit", *argv],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        **kwargs,
    )


def test_end_to_end_a_full_disk_is_one_line_and_loses_nothing(world):
    """The file system refuses to grow the store (RLIMIT_FSIZE stands in for a full SD card)."""
    import resource
    import signal

    db = world / "kit.db"
    with Store(db):  # leaves the store closed cleanly: no -wal to replay
        pass
    before = db.read_bytes()

    def small_files():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))  # no file may grow past 1000 bytes

    out = _kit("params", "set", "car_green_s", "30", "--db", str(db), preexec_fn=small_files)
    assert out.returncode == 1 and ("full" in out.stderr or "large" in out.stderr), out.stderr
    _one_clear_line(out.stderr)
    assert db.read_bytes() == before
    with Store(db, readonly=True) as store:
        assert store.readings.size()["readings"] == 50 and store.params.get("car_green_s") == 25


def test_end_to_end_debug_shows_the_traceback(world):
    out = _kit("params", "set", "car_green_s", "25", "--db", str(world / "notes.txt"), env={"KIT_DEBUG": "1"})
    assert out.returncode == 1 and "Traceback" in out.stderr and "StoreOpenError" in out.stderr
    out = _kit("params", "set", "car_green_s", "25", "--db", str(world / "notes.txt"))
    assert out.returncode == 1 and "Traceback" not in out.stderr

"""The ``kit`` entry point: one line on stderr and an exit code for a failure; a traceback only with --debug."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import kit
from kit import cli
from kit.errors import KitRuntimeError, UsageError

ROOT = Path(__file__).resolve().parents[2]


def _fail_with(exc):
    def func(args):
        raise exc

    return func


@pytest.fixture
def failing_command(monkeypatch):
    """`kit doctor` replaced by a command that raises what the test sets in ``box[0]``."""
    box: list[BaseException] = []
    real = cli.build_parser

    def build():
        parser = real()
        doctor = parser._subparsers._group_actions[0].choices["doctor"]
        doctor.set_defaults(func=lambda args: (_ for _ in ()).throw(box[0]))
        return parser

    monkeypatch.setattr(cli, "build_parser", build)
    monkeypatch.delenv("KIT_DEBUG", raising=False)
    return box


@pytest.mark.parametrize(
    ("exc", "code", "words"),
    [
        (UsageError("--hours must be positive, got nan"), 2, "--hours must be positive"),
        (KitRuntimeError("store is busy"), 1, "store is busy"),
        (FileNotFoundError(2, "No such file or directory", "/nowhere/x.db"), 1, "/nowhere/x.db"),
        (PermissionError(13, "Permission denied", "/root/x"), 1, "Permission denied"),
        (__import__("sqlite3").OperationalError("database is locked"), 1, "another program holds the store"),
        (OSError(28, "No space left on device"), 1, "free some disk space"),
        (ZeroDivisionError("oops"), 1, "internal error"),
    ],
)
def test_failures_become_one_line_and_an_exit_code(failing_command, capsys, exc, code, words):
    failing_command.append(exc)
    assert cli.main(["doctor"]) == code
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err and err.count("\n") == 1


def test_debug_shows_the_traceback(failing_command, monkeypatch):
    failing_command.append(UsageError("bad"))
    with pytest.raises(UsageError):
        cli.main(["--debug", "doctor"])
    monkeypatch.setenv("KIT_DEBUG", "1")
    with pytest.raises(UsageError):
        cli.main(["doctor"])


def test_version_and_usage_errors_end_to_end():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-m", "kit", "--version"], capture_output=True, text=True, env=env)
    assert out.returncode == 0 and out.stdout.strip() == f"kit {kit.__version__}"
    bad = subprocess.run([sys.executable, "-m", "kit", "no-such-verb"], capture_output=True, text=True, env=env)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "invalid choice" in bad.stderr


def test_a_reader_that_goes_away_ends_the_command_quietly(tmp_path):
    # `kit params list | head -1`: the pipe's reader is gone before the listing is written
    from kit.store import Store

    with Store(tmp_path / "kit.db"):
        pass
    read, write = os.pipe()
    os.close(read)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    try:
        run = subprocess.run(
            [sys.executable, "-m", "kit", "params", "list", "--db", str(tmp_path / "kit.db")],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            timeout=60,
        )
    finally:
        os.close(write)
    assert (run.returncode, run.stderr) == (0, "")

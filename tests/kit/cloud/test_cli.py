from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from kit.cli import main
from kit.cloud.broker import free_port
from kit.cloud.emulator import reachable


def _as_at_a_terminal() -> None:
    """Ctrl-C reaches the server as it does in a terminal, even when this suite was started in the background
    (a shell's background jobs inherit SIGINT ignored, and so would the server)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_status_shows_where_the_cloud_is_and_no_secret(cloud, store, capsys, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "verysecretvalue")
    store.readings.append("pot", 0.5)
    assert main(["cloud", "status", "--db", store.path, "--json"]) == 0
    out = capsys.readouterr().out
    info = json.loads(out)
    assert info["reachable"] is True and info["endpoint"] == cloud.endpoint_url and info["outbox_depth"] == 1
    assert "verysecret" not in out


def test_provision_sync_and_shadow_from_the_command_line(cloud, tmp_path, capsys):
    from kit.cloud.shadow import ShadowAgent
    from kit.cloud.uploader import Uploader
    from kit.store import Store

    db = str(tmp_path / "cli.db")
    with Store(db) as store:
        store.readings.append_many([("pot", i / 10, 1792044000.0 + i) for i in range(30)])
    assert main(["cloud", "provision", "--db", db]) == 0
    assert main(["cloud", "sync", "--db", db]) == 0
    assert "sent 30 readings" in capsys.readouterr().out
    assert len(Uploader().read_all()) == 30
    with Store(db) as store:
        ShadowAgent(store).request({"ped_green_s": 12})
    assert main(["cloud", "shadow", "--db", db]) == 0
    assert 'applied: {"ped_green_s": 12.0}' in capsys.readouterr().out


def test_status_fails_and_advises_when_nothing_answers(capsys, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    assert main(["cloud", "status"]) == 1
    assert "kit cloud serve" in capsys.readouterr().out


def test_serve_runs_a_local_endpoint_until_interrupted(tmp_path):
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "kit.cli", "cloud", "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        preexec_fn=_as_at_a_terminal,
    )
    try:
        first = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}" in first
        env = {**os.environ, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"}
        status = subprocess.run(
            [sys.executable, "-m", "kit.cli", "cloud", "status", "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert json.loads(status.stdout)["reachable"] is True
    finally:
        proc.send_signal(2)
        assert proc.wait(timeout=10) == 0


def test_status_on_aws_names_the_chain_and_makes_no_request(capsys, monkeypatch):
    monkeypatch.setenv("KIT_CLOUD", "aws")
    monkeypatch.setenv("AWS_REGION", "eu-central-1")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    assert main(["cloud", "status", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["mode"] == "aws" and info["region"] == "eu-central-1"
    assert info["credentials"] == "boto3 standard chain" and "reachable" not in info


def test_serve_fails_fast_when_it_cannot_listen():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = subprocess.run(
            [sys.executable, "-m", "kit", "cloud", "serve", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert out.returncode == 1 and f"can't listen on 127.0.0.1:{port}" in out.stderr
    assert "Traceback" not in out.stderr and out.stderr.count("\n") == 1


@pytest.mark.parametrize("port", ["-1", "99999", "http", "1e3"])
def test_serve_refuses_a_port_that_is_not_one(capsys, port):
    with pytest.raises(SystemExit) as exit_:
        main(["cloud", "serve", "--port", port])
    assert exit_.value.code == 2 and "0 to 65535" in capsys.readouterr().err


def test_serve_reports_the_port_it_bound():
    proc = subprocess.Popen(
        [sys.executable, "-m", "kit", "cloud", "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        preexec_fn=_as_at_a_terminal,
    )
    try:
        first = proc.stdout.readline()
        port = int(first.split("listening on port ")[1].split(";")[0])
        assert port > 0 and f"http://127.0.0.1:{port}" in first
        assert reachable(f"http://127.0.0.1:{port}", timeout=5)
    finally:
        proc.send_signal(2)
        assert proc.wait(timeout=10) == 0


# --- sync when the endpoint is down at start, and when the setup is wrong ----------------------------------------

ROOT = Path(__file__).resolve().parents[3]


class _Stderr:
    """Collects a process's stderr as it comes (the progress line has no newline, so readline() would block)."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.text = ""
        self._thread = threading.Thread(target=self._read, args=(proc.stderr,), daemon=True)
        self._thread.start()

    def _read(self, stream) -> None:
        for char in iter(lambda: stream.read(1), ""):
            self.text += char

    def wait_for(self, words: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while words not in self.text:
            assert time.monotonic() < deadline, f"no {words!r} on stderr within {timeout} s: {self.text!r}"
            time.sleep(0.05)

    def done(self) -> str:
        self._thread.join(timeout=10)
        return self.text


def _sync_in_background(db: Path, endpoint: str, *flags: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "kit", "cloud", "sync", "--db", str(db), *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={
            **os.environ,
            "KIT_CLOUD": "local",
            "AWS_ENDPOINT_URL": endpoint,
            "PYTHONPATH": str(ROOT),
            "PYTHONUNBUFFERED": "1",
        },
        preexec_fn=_as_at_a_terminal,
    )


def _readings(db: Path, n: int) -> tuple[set[int], str]:
    from kit.store import Store

    with Store(db) as store:
        store.readings.append_many([("pot", i / 10, 1792044000.0 + i) for i in range(n)])
        return {r["id"] for r in store.readings.range("pot")}, store.params.get("device_id")


def _in_s3_exactly_once(device: str, stored: set[int]) -> None:
    from kit.cloud.uploader import Uploader

    ids = [row["reading_id"] for row in Uploader(device_id=device).read_all()]
    assert len(ids) == len(set(ids)), f"{len(ids) - len(set(ids))} readings uploaded twice"
    assert set(ids) == stored


def _s3_holds(device: str, n: int) -> bool:
    from botocore.exceptions import ClientError

    from kit.cloud.uploader import Uploader

    try:
        return len(Uploader(device_id=device).read_all()) >= n
    except ClientError:  # no bucket yet: the sync makes it
        return False


@pytest.mark.slow
def test_sync_wait_outlasts_an_endpoint_that_comes_up_after_it(cloud, tmp_path):
    db = tmp_path / "kit.db"
    stored, device = _readings(db, 40)
    cloud.stop()  # down before the sync starts; reset, so the bucket must be made too
    proc = _sync_in_background(db, cloud.endpoint_url, "--wait", "--timeout", "120")
    err = _Stderr(proc)
    try:
        err.wait_for("unreachable")  # it tried while the endpoint was down...
        assert proc.poll() is None, f"gave up: {err.text}"
        cloud.start()  # ...and the endpoint comes up
        assert proc.wait(timeout=90) == 0, err.done()
        out = proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "sent 40 readings" in out and "outbox depth 0" in out
    assert err.done().count("unreachable") == 1
    _in_s3_exactly_once(device, stored)


@pytest.mark.slow
def test_sync_follow_keeps_running_while_the_endpoint_is_down_and_uploads_once_it_is_up(cloud, tmp_path):
    db = tmp_path / "kit.db"
    stored, device = _readings(db, 40)
    cloud.stop()
    proc = _sync_in_background(db, cloud.endpoint_url, "--follow", "--interval", "0.2")
    err = _Stderr(proc)
    try:
        err.wait_for("unreachable")
        time.sleep(2)  # the outage lasts a while (several failed tries): still one line, and still running
        assert proc.poll() is None, f"gave up: {err.text}"
        cloud.start()
        deadline = time.monotonic() + 90
        while not _s3_holds(device, len(stored)):
            assert proc.poll() is None and time.monotonic() < deadline, f"nothing uploaded: {err.text}"
            time.sleep(0.2)
        err.wait_for("answers again")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0, err.done()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = err.done()
    assert text.count("unreachable") == 1 and "Traceback" not in text, text
    assert "stopped; outbox depth 0" in text
    _in_s3_exactly_once(device, stored)


def _run(capsys, argv: list[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def aws_without_keys(tmp_path, monkeypatch):
    """Real AWS mode with nothing in the credential chain (no network: the instance-role lookup is off)."""
    from kit.cloud import config

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("KIT_CLOUD", "aws")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    config.use(None)
    config._session.cache_clear()  # a session of another test may hold credentials
    yield
    config._session.cache_clear()


@pytest.mark.parametrize(
    "flags", [[], ["--wait", "--timeout", "60"], ["--follow", "--interval", "0.1", "--timeout", "60"]]
)
def test_sync_without_credentials_says_so_at_once_and_keeps_the_outbox(aws_without_keys, store, capsys, flags):
    store.readings.append_many([("pot", i / 10, 1792044000.0 + i) for i in range(5)])
    started = time.monotonic()
    code, out, err = _run(capsys, ["cloud", "sync", "--db", str(store.path), *flags])
    assert code == 1 and err.startswith("kit cloud: error: no AWS credentials found: set AWS_ACCESS_KEY_ID"), err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert time.monotonic() - started < 30, "a setup mistake is not an outage to wait out"
    assert store.outbox.depth() == 5 and store.outbox.dead() == []


@pytest.mark.parametrize("verb", ["sync", "shadow", "provision"])
def test_empty_region_variables_count_as_unset(aws_without_keys, store, capsys, monkeypatch, verb):
    monkeypatch.setenv("AWS_REGION", "")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "")
    store.readings.append("pot", 0.5)
    code, _, err = _run(capsys, ["cloud", verb, "--db", str(store.path)])
    assert code == 2 and err.startswith("kit cloud: error: no AWS region configured for KIT_CLOUD=aws"), err
    assert err.count("\n") == 1 and "internal error" not in err
    assert store.outbox.depth() == 1


def test_status_with_empty_region_variables_makes_no_request_and_does_not_fail(aws_without_keys, capsys, monkeypatch):
    monkeypatch.setenv("AWS_REGION", "")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "")
    code, out, err = _run(capsys, ["cloud", "status", "--json"])
    assert code == 0 and err == "" and json.loads(out)["mode"] == "aws"

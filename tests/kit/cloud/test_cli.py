from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys

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

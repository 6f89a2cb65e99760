"""The same ClientApp/ServerApp for real: one SuperLink and three SuperNodes as separate processes.

Everything listens on 127.0.0.1 only; FLWR_HOME is a temporary folder; every process started here
is stopped (its whole process group, SIGKILL if SIGTERM is not enough).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("flwr")

APP = Path(__file__).resolve().parents[4] / "kit" / "ml" / "federated" / "app"
BIN = Path(sys.executable).parent
MODEL_SHAPES = [[256, 32], [32], [32, 3], [3]]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, proc: subprocess.Popen, log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"SuperLink exited with {proc.returncode}:\n{log.read_text()}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"SuperLink did not listen on 127.0.0.1:{port} within {timeout} s:\n{log.read_text()}")


def _stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + 10
    for p in procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    for p in procs:  # children (SuperExec, app processes) share the group: SIGKILL what is left
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait(timeout=10)


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_superlink_and_three_supernodes_run_two_rounds(tmp_path):
    home = tmp_path / "flwr-home"
    home.mkdir()
    env = dict(os.environ, FLWR_HOME=str(home), PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    port = _free_port()
    node_ports = [_free_port() for _ in range(3)]
    # Flower 1.42 reads SuperLink connections from $FLWR_HOME/config.toml, never from the app's pyproject
    (home / "config.toml").write_text(
        f'[superlink]\ndefault = "intersections"\n\n[superlink.intersections]\naddress = "127.0.0.1:{port}"\ninsecure = true\n'
    )
    app = tmp_path / "app"
    shutil.copytree(APP, app)  # flwr builds the app bundle from this folder; keep the repo untouched
    result = tmp_path / "result.json"

    procs: list[subprocess.Popen] = []
    logs: list[Path] = []

    def start(name: str, args: list[str]) -> subprocess.Popen:
        log = tmp_path / f"{name}.log"
        logs.append(log)
        proc = subprocess.Popen(
            [str(BIN / args[0]), *args[1:]],
            env=env,
            cwd=tmp_path,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        procs.append(proc)
        return proc

    try:
        link = start(
            "superlink",
            [
                "flower-superlink",
                "--insecure",
                "--disable-runtime-dependency-installation",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
        )
        _wait_for_port(port, link, logs[0])
        for i, node_port in enumerate(node_ports):
            start(
                f"supernode{i}",
                [
                    "flower-supernode",
                    "--insecure",
                    "--superlink",
                    f"127.0.0.1:{port}",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(node_port),
                    "--node-config",
                    f"partition-id={i} num-partitions=3",
                ],
            )
        run = subprocess.run(
            [
                str(BIN / "flwr"),
                "run",
                str(app),
                "intersections",
                "--stream",
                "--run-config",
                f"num-server-rounds=2 num-clients=3 samples-per-client=200 result-path='{result}'",
            ],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=360,
        )
        output = run.stdout + run.stderr
        assert run.returncode == 0, output
        assert result.exists(), output + "\n".join(p.read_text() for p in logs)
    finally:
        _stop(procs)
    assert all(p.poll() is not None for p in procs)

    history = json.loads(result.read_text())
    assert history["rounds"] == [0, 1, 2]
    assert history["accuracy"][-1] > history["accuracy"][0] + 0.05, history["accuracy"]
    assert "global accuracy per round" in output  # the ServerApp's log reached us through --stream
    # what crossed the network from the SuperNodes: the model's arrays and two scalar metrics, nothing else
    assert len(history["manifest"]) == 3 * 2
    for entry in history["manifest"]:
        assert set(entry["content"]) == {"arrays", "metrics"}
        assert entry["content"]["arrays"]["shapes"] == MODEL_SHAPES
        assert entry["content"]["metrics"]["keys"] == ["num-examples", "train-loss"]
    assert history["weight_shapes"] == MODEL_SHAPES
    assert not (APP / "result.json").exists()

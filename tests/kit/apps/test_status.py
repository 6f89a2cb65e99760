"""`kit status` tells a running app from a dead one (its pid) and from a stalled one (its heartbeat)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from kit.apps.status import liveness


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_liveness_from_pid_and_heartbeat():
    now = time.time()
    assert liveness({"state": "running", "pid": os.getpid(), "heartbeat": now}) == "running"
    assert liveness({"state": "running", "pid": os.getpid(), "heartbeat": now - 60}) == "stalled"
    assert liveness({"state": "running", "pid": _dead_pid(), "heartbeat": now}) == "dead"
    assert liveness({"state": "stopped", "pid": _dead_pid(), "heartbeat": now - 600}) == "stopped"


def test_kit_status_says_dead_after_a_kill(tmp_path):
    status = tmp_path / "status.json"
    status.write_text(
        json.dumps({"pid": _dead_pid(), "state": "running", "heartbeat": time.time() - 5, "outbox_depth": 3})
    )
    env = {**os.environ, "KIT_HOME": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-m", "kit", "status", "--status", str(status)], capture_output=True, text=True, env=env
    )
    assert out.returncode == 3, out
    assert "DEAD" in out.stdout and "is gone" in out.stdout

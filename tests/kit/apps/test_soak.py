"""A simulated day of the whole app, with the faults a deployed kit meets (accelerated).

An endpoint that accepts and never answers for an hour (blackholed), a refused endpoint (stopped) twice, a broker
restart and a broker that stalls (accepts, never answers), an hour of full disk (the running app's file-size limit
lowered below its store's size with prlimit: every write that grows a file fails, which SQLite reports as a disk I/O
error; ENOSPC itself, "database or disk is full", is proved in tests/kit/apps/test_logbook.py), a bad reading in the outbox (epoch milliseconds, as an
older kit stored them), a shadow request with a 400-digit integer, a good shadow change, one SIGKILL and restart.
The day is paced (``--speed``: simulated seconds per wall second), so the faults last as long on the wall
clock whatever the machine. Throughout, `kit status` must say "running": the status and its heartbeat never wait
behind the cloud's I/O. At the end: no run crashed, the conflict monitor never refused anything, every valid reading is in S3 exactly once
and the bad one is dead-lettered alone with its reason, the shadow converged (the good change is in effect and
reported, the 400-digit one refused without a change), telemetry resumed, and the status tells the truth.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from kit.apps.latency import HungEndpoint
from kit.apps.status import liveness
from kit.cloud.mqtt import Subscriber
from kit.cloud.shadow import ShadowAgent
from kit.cloud.uploader import Uploader
from kit.store import Store

START = datetime.fromisoformat("2026-10-15T00:00:00")
SPEED = 1200  # a day in 72 s of wall clock; an hour of outage is 3 s, longer than a connect timeout
SENSORS = ("queue_distance_m", "light", "road_temperature_c", "cpu_temperature_c", "pot")


def _hours(status: dict) -> float:
    t = datetime.fromisoformat(status["intersection_time"]).replace(tzinfo=None)
    return (t - START).total_seconds() / 3600


def _status(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


@pytest.mark.slow
def test_a_day_with_two_outages_a_broker_restart_and_a_crash(tmp_path, cloud, broker):
    db, status_file = tmp_path / "kit.db", tmp_path / "status.json"
    store = Store(db)
    store.params.set("sample_period_s", 10)  # 43 200 readings a day: enough to matter, quick to check
    device = store.params.get("device_id")
    operator = ShadowAgent(store, thing_name=device)
    operator.provision()
    env = {
        **os.environ,
        "KIT_CLOUD": "local",
        "AWS_ENDPOINT_URL": cloud.endpoint_url,
        "KIT_MQTT_PORT": str(broker.port),
        "KIT_HOME": str(tmp_path),
    }

    def start_app(hours: float, fresh: bool) -> subprocess.Popen:
        args = [
            sys.executable,
            "-m",
            "kit",
            "run",
            "intersection",
            "--db",
            str(db),
            "--status",
            str(status_file),
            "--hours",
            f"{hours:.4f}",
            "--cloud",
            "--camera-period",
            "30",
            "--speed",
            str(SPEED),
            "--log-level",
            "info",
        ]
        if fresh:
            args += ["--fresh", "--start", START.isoformat()]
        return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    events, bad_id = [], []
    with Subscriber(port=broker.port) as listener:
        proc = start_app(24, fresh=True)
        logs = []
        plan = [
            (2, "blackhole"),
            (3, "cloud back"),
            (4, "outage"),
            (5, "cloud back"),
            (6, "bad reading"),
            (7, "broker stall"),
            (7.5, "broker back"),
            (8, "broker restart"),
            (9, "huge int"),
            (10, "shadow change"),
            (11, "disk full"),
            (11.7, "disk back"),
            (12, "kill"),
            (15, "outage"),
            (17, "cloud back"),
        ]
        hung = []
        paused: set[str] = set()  # what the status said while logging was paused
        verdicts: dict[str, int] = {}  # what `kit status` would have said at each poll while the app ran
        deadline = time.monotonic() + 900
        try:
            while proc.poll() is None or plan:
                assert time.monotonic() < deadline, f"the soak did not finish; events so far {events}"
                if plan and proc.poll() is not None and (_status(status_file) or {}).get("state") != "running":
                    pytest.fail(f"the app ended before {[w for _, w in plan]} could be injected; events {events}")
                status = _status(status_file)
                if status and proc.poll() is None and status.get("pid") == proc.pid:
                    verdict = liveness(status)
                    verdicts[verdict] = verdicts.get(verdict, 0) + 1
                    if status.get("logging", "ok") != "ok":
                        paused.add(status["logging"].split(";")[0])
                if plan and status and status["state"] == "running" and _hours(status) >= plan[0][0]:
                    at, what = plan.pop(0)
                    events.append((round(_hours(status), 2), what))
                    if what == "outage":
                        cloud.stop()
                    elif what == "blackhole":
                        cloud.stop()
                        hung.append(HungEndpoint(cloud.port))  # same address: accepts, never answers
                    elif what == "cloud back":
                        while hung:
                            hung.pop().close()
                        cloud.start()
                    elif what == "broker stall":
                        broker.stop()
                        hung.append(HungEndpoint(broker.port))
                    elif what == "broker back":
                        hung.pop().close()
                        broker.start()
                    elif what == "bad reading":
                        with Store(db) as other:  # what an older kit wrote: a time in epoch milliseconds
                            with other.transaction() as conn:
                                conn.execute(
                                    "INSERT INTO readings (sensor, ts, value) VALUES ('legacy', ?, 0.5)",
                                    [START.timestamp() * 1000],
                                )
                                bad_id.append(conn.execute("SELECT max(id) FROM readings").fetchone()[0])
                                conn.execute(
                                    "INSERT INTO outbox (kind, reading_id, created_ts) VALUES ('reading', ?, 0)",
                                    [bad_id[-1]],
                                )
                    elif what == "huge int":
                        operator.request({"car_green_s": 10**400})
                    elif what == "broker restart":
                        broker.stop()
                        broker.start()
                        telemetry_before_restart = len(listener.messages)
                    elif what == "disk full":
                        # Python ignores SIGXFSZ: a write past the limit fails with EFBIG, SQLite says "full".
                        limit = 64 * 1024  # far below the store; the status file (a few kB) still fits
                        resource.prlimit(proc.pid, resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
                    elif what == "disk back":
                        resource.prlimit(proc.pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY,) * 2)
                    elif what == "shadow change":
                        operator.request({"ped_green_s": 9, "car_green_s": 20})
                    elif what == "kill":
                        proc.send_signal(signal.SIGKILL)
                        out, _ = proc.communicate(timeout=30)
                        logs.append(out)
                        assert proc.returncode == -signal.SIGKILL
                        last = max(Store(db).readings.latest(s)["ts"] for s in SENSORS)
                        left = 24 - (last - START.timestamp()) / 3600 - 1 / 3600
                        proc = start_app(left, fresh=False)
                elif not plan and proc.poll() is not None:
                    break
                time.sleep(0.02)
            out, _ = proc.communicate(timeout=120)
            logs.append(out)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 0, f"the app crashed:\n{logs[-1][-3000:]}"
        assert paused == {"PAUSED: disk I/O error"}, f"the status during the full disk said {paused}"
        assert set(verdicts) <= {"running", "stopped"} and verdicts.get("running", 0) > 100, (
            f"`kit status` verdicts while the app ran: {verdicts}"
        )
        assert [e[1] for e in events] == [
            "blackhole",
            "cloud back",
            "outage",
            "cloud back",
            "bad reading",
            "broker stall",
            "broker back",
            "broker restart",
            "huge int",
            "shadow change",
            "disk full",
            "disk back",
            "kill",
            "outage",
            "cloud back",
        ]
        assert listener.wait_until(lambda msgs: len(msgs) > telemetry_before_restart + 5, timeout=10), (
            "telemetry did not resume after the broker restart"
        )

    store = Store(db)
    final = _status(status_file)
    assert _hours(final) == pytest.approx(24, abs=0.05), final["intersection_time"]
    assert final["state"] == "stopped" and final["signals"] == "ok", final
    assert final["outbox_depth"] == 0 and final["dead_letters"] == 1 and final["logging"] == "ok"
    assert store.outbox.depth() == 0
    dead = store.outbox.dead()
    assert [d.payload["reading_id"] for d in dead] == bad_id and "cannot be uploaded" in dead[0].last_error
    stored = {r["id"] for s in SENSORS for r in store.readings.range(s)} - set(bad_id)
    assert len(stored) > 40_000
    uploader = Uploader(device_id=device)
    where: dict[int, list[str]] = {}
    for key in uploader.keys():
        for row in uploader.read(key):
            if row.get("sensor") in SENSORS:
                where.setdefault(row["reading_id"], []).append(key)
    in_s3 = [rid for rid, keys in where.items() for _ in keys]
    twice = {rid: keys for rid, keys in where.items() if len(keys) > 1}
    assert not twice, f"{len(twice)} readings reached S3 twice, e.g. {sorted(twice.items())[:3]}"
    assert set(in_s3) == stored, f"{len(stored - set(in_s3))} readings never reached S3"
    # the shadow converged: the device applied the change and reports it, nothing left to do
    shadow = operator.document()["state"]
    assert store.params.get("ped_green_s") == 9.0
    assert shadow["reported"]["ped_green_s"] == 9.0 and not shadow.get("delta")
    assert final["effective"]["ped_green_s"] == 9.0, "the change is in effect in the controller"
    assert all(h["new"] != 10**400 for h in store.params.history("car_green_s")), "the huge value never applied"

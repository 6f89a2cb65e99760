"""The intersection app: one program from the sensors to the cloud, in simulation."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kit.apps.intersection import AppOptions, IntersectionApp
from kit.apps.status import read_status
from kit.store import Store


def run_app(store, **options):
    app = IntersectionApp(store, AppOptions(**options))
    try:
        return app, app.run()
    finally:
        app.close()


def test_sensors_only_run_stores_readings_in_the_outbox_and_writes_status(tmp_path):
    store = Store(tmp_path / "kit.db")
    app, summary = run_app(store, seed=1, hours=0.25, start="2026-10-15T08:00:00", model=None)
    assert summary["vehicles_served"] > 0 and summary["crossings"] > 0
    n = store.readings.count()
    # five sensors per sample period (1 s by default) for 15 simulated minutes
    assert n == 5 * 15 * 60
    assert store.outbox.depth() == n, "without a cloud every reading waits in the outbox"
    status = read_status(app.status_path)
    assert status["state"] == "stopped" and status["readings"] == n and status["outbox_depth"] == n
    assert status["intersection_time"].startswith("2026-10-15T08:15")


def test_the_camera_model_runs_and_its_predictions_are_logged(tmp_path):
    store = Store(tmp_path / "kit.db")
    _, summary = run_app(
        store, seed=2, hours=0.1, start="2026-10-15T12:00:00", camera_period_s=5.0, model="intersection"
    )
    assert summary["model"] == "intersection.tflite"
    assert summary["frames"] == 6 * 60 / 5
    classes = [r["value"] for r in store.readings.range("model_queue_class")]
    assert len(classes) == summary["frames"] and set(classes) <= {0.0, 1.0, 2.0}


def test_parameters_come_from_the_store(tmp_path):
    store = Store(tmp_path / "kit.db")
    store.params.update({"ped_green_s": 12, "sample_period_s": 10}, source="local")
    app, _ = run_app(store, seed=1, hours=0.25, start="2026-10-15T08:00:00", model=None)
    walks = [d for name, d in app.controller.phase_log if name == "ped_green"]
    assert walks and all(d == 12 for d in walks)
    assert store.readings.count() == 5 * 15 * 6


def test_same_seed_same_day(tmp_path):
    a = run_app(Store(tmp_path / "a.db"), seed=5, hours=0.2, start="2026-10-15T17:00:00", model=None)[1]
    b = run_app(Store(tmp_path / "b.db"), seed=5, hours=0.2, start="2026-10-15T17:00:00", model=None)[1]
    assert a == b


def test_a_restart_resumes_intersection_time_from_the_store(tmp_path):
    store = Store(tmp_path / "kit.db")
    run_app(store, seed=1, hours=0.1, start="2026-10-15T08:00:00", model=None)
    last = store.readings.latest("light")["ts"]
    app, _ = run_app(store, seed=1, hours=0.1, start="2026-10-15T08:00:00", model=None)
    ts = [r["ts"] for r in store.readings.range("light")]
    assert ts == sorted(ts) and len(ts) == len(set(ts)), "a resumed run must continue, not overlap"
    assert min(t for t in ts if t > last) - last <= 2.0


def test_with_the_cloud_readings_reach_s3_and_a_shadow_change_retimes_the_lights(tmp_path, cloud, broker):
    from kit.cloud.mqtt import Subscriber
    from kit.cloud.shadow import ShadowAgent
    from kit.cloud.uploader import Uploader

    cfg = cloud.config.with_(mqtt_port=broker.port)
    from kit.cloud import config

    config.use(cfg)
    store = Store(tmp_path / "kit.db")
    store.params.set("sample_period_s", 5)
    device = store.params.get("device_id")
    operator = ShadowAgent(store, thing_name=device)
    operator.provision()
    operator.request({"ped_green_s": 11, "max_green_s": "sixty"})  # one good change, one bad
    with Subscriber(port=broker.port) as listener:
        app, summary = run_app(store, seed=3, hours=0.5, start="2026-10-15T09:00:00", model=None, cloud=True)
        assert listener.wait_for(1, timeout=10)
    assert summary["outbox_depth"] == 0
    rows = Uploader(device_id=device).read_all()
    ids = [r["reading_id"] for r in rows]
    stored = {
        r["id"]
        for sensor in ("queue_distance_m", "light", "road_temperature_c", "cpu_temperature_c", "pot")
        for r in store.readings.range(sensor)
    }
    assert len(ids) == len(set(ids)) and set(ids) == stored, "every reading in S3 exactly once"
    # the whole request is refused (atomic), with the reason reported; local parameters unchanged
    reported = operator.document()["state"]["reported"]
    assert "max_green_s" in (reported.get("rejected") or {})
    assert store.params.get("ped_green_s") == 7.0
    # a correct request is applied by the running app and changes the lights
    operator.request({"ped_green_s": 11, "max_green_s": 60})
    app, _ = run_app(store, seed=3, hours=0.25, model=None, cloud=True, mqtt=False)
    assert store.params.get("ped_green_s") == 11.0
    walks = [d for name, d in app.controller.phase_log if name == "ped_green"]
    assert walks and walks[-1] == 11


def _cli(*args, env=None):
    return [sys.executable, "-m", "kit", "run", "intersection", *args]


def _wait_status(path: Path, condition, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            status = json.loads(path.read_text())
            if condition(status):
                return status
        except (FileNotFoundError, json.JSONDecodeError):
            pass
        time.sleep(0.05)
    raise AssertionError(f"status never met the condition; last: {path.read_text() if path.exists() else 'none'}")


@pytest.mark.slow
def test_sigterm_stops_cleanly_and_loses_no_reading(tmp_path):
    db, status = tmp_path / "kit.db", tmp_path / "status.json"
    proc = subprocess.Popen(
        _cli("--db", str(db), "--no-model", "--status", str(status)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_status(status, lambda s: s["state"] == "running" and s["readings"] > 500)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    final = json.loads(status.read_text())
    assert final["state"] == "stopped"
    store = Store(db)
    # everything sampled was written at the stop, in whole samples of five sensors
    assert store.readings.count() == final["readings"] and final["readings"] % 5 == 0
    assert "Smart intersection" in out


def test_a_failing_camera_leaves_the_lights_to_the_sensors(tmp_path, mock_factory):
    from kit.board import Board
    from kit.sim.world import World

    class NoCameraBoard(Board):
        @property
        def camera(self):
            raise RuntimeError("no camera attached")

    board = NoCameraBoard(World(seed=0, start="2026-10-15T08:00:00"), pin_factory=mock_factory)
    try:
        app = IntersectionApp(Store(tmp_path / "kit.db"), AppOptions(seed=0, hours=0.1), board=board)
        summary = app.run()
        lamps = board.world.car_light_state(), board.world.ped_light_state()
    finally:
        board.close()
    assert summary["vehicles_served"] > 0 and summary["frames"] == 0
    assert "camera failed" in summary["model"]
    assert lamps == ("red", "red"), "an app that stops leaves the lamps in the all-red clearance"


def test_adaptive_limits_are_stored_parameters(tmp_path):
    store = Store(tmp_path / "kit.db")
    store.params.update({"ped_max_wait_s": 30, "night_min_green_s": 4}, source="cloud")
    app = IntersectionApp(store, AppOptions(seed=0, hours=0.01, model=None))
    try:
        assert app.controller.timings.ped_max_wait_s == 30 and app.controller.timings.night_min_green_s == 4
    finally:
        app.close()


def test_the_shipped_early_exit_model_skips_the_rest_on_easy_frames(tmp_path):
    store = Store(tmp_path / "kit.db")
    _, summary = run_app(
        store, seed=2, hours=0.25, start="2026-10-15T12:00:00", model="early_exit", camera_period_s=5.0
    )
    assert summary["model"].startswith("early_exit (early exit")
    assert summary["frames"] == 15 * 60 / 5
    assert 0 < summary["early_exits"] <= summary["frames"]
    assert store.readings.count("model_queue_class") == summary["frames"]


def test_the_default_model_is_the_fused_int8_early_exit_and_stays_in_use_through_the_night(tmp_path):
    assert AppOptions().model == "fusion"
    store = Store(tmp_path / "kit.db")
    app, summary = run_app(store, seed=3, hours=2.0, start="2026-10-15T05:00:00", camera_period_s=10.0)
    assert summary["model"].startswith("fusion (camera + sensors, int8 early exit")
    assert summary["frames"] == 2 * 3600 / 10
    assert store.readings.count("model_pedestrian") == summary["frames"], "the fused model answers both heads"
    assert summary["drift_windows"] == summary["frames"] // 16
    # night into dawn on a normal day: the stream monitor compares with normal frames of the same light and hour
    assert summary["model_in_use"] >= 0.9, summary
    assert read_status(app.status_path)["model_in_use"].endswith(f"of {summary['frames']} frames")
    assert summary["sensor_flags"] == 0 and summary["sensors"] == "ok", "working sensors are never flagged stuck"


def test_a_stuck_pir_is_flagged_and_the_fused_model_then_takes_it_as_failed(tmp_path):
    options = AppOptions(seed=0, hours=0.25, start="2026-10-15T12:00:00", stuck=(("pir", 0.0),))
    app = IntersectionApp(Store(tmp_path / "kit.db"), options)
    try:
        assert app.board.world.stuck == {"pir": 0.0}, "kit run intersection --stuck pir=0"
        summary = app.run()
        assert [name for name, _t in app.model_loop.flag_log] == ["pir"]
        assert 600 <= app.model_loop.flag_log[0][1] < 0.25 * 3600
        assert summary["sensor_flags"] == 1 and summary["sensors"].startswith("pir stuck at 0")
        vector = app.model_loop._vector()
        assert vector[5] == 0.0 and vector[4] == 1.0, "pir_ok 0 (masked), distance_ok 1"
    finally:
        app.close()


def test_a_sensor_flagged_stuck_no_longer_drives_the_signals():
    """A PIR stuck at "someone" called the crossing every cycle (122 crossings in this hour against 63, vehicle wait
    11.1 s against 5.9 s); a distance sensor stuck at a queue made every pedestrian wait the maximum (17.9 s against
    7.1 s). Once flagged, the control loop takes the fused model's pedestrian and queue instead (74 crossings, 6.9 s
    and 8.1 s; 63 crossings, 7.1 s). Without the model's pedestrian (the button alone) the pedestrians' wait was
    12.4 s, p95 41.2 s against 19.4 s."""

    def hour(*stuck):
        app = IntersectionApp(
            Store(":memory:"), AppOptions(seed=0, hours=1.0, start="2026-10-15T12:00:00", stuck=stuck)
        )
        try:
            return app.run(), [name for name, _ in app.model_loop.flag_log]
        finally:
            app.close()

    normal, flags = hour()
    assert flags == []
    pir, flags = hour(("pir", 1.0))
    assert flags == ["pir"]
    assert pir["crossings"] <= 1.3 * normal["crossings"], (pir["crossings"], normal["crossings"])
    assert pir["mean_vehicle_wait_s"] <= 1.3 * normal["mean_vehicle_wait_s"]
    assert pir["mean_pedestrian_wait_s"] <= 1.3 * normal["mean_pedestrian_wait_s"]
    assert pir["p95_pedestrian_wait_s"] <= 1.3 * normal["p95_pedestrian_wait_s"]
    assert pir["pedestrians_served"] >= normal["pedestrians_served"] - 2
    queue, flags = hour(("distance", 0.3))
    assert flags == ["distance"]
    assert queue["mean_pedestrian_wait_s"] <= 1.2 * normal["mean_pedestrian_wait_s"]
    assert queue["mean_vehicle_wait_s"] <= 1.2 * normal["mean_vehicle_wait_s"]

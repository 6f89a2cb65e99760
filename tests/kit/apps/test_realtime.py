"""The app on the real clock against real faults: an endpoint that accepts and never answers, one that refuses, a
broker that stalls. The lights keep their schedule (no tick waits for the network) and everything queued reaches
the endpoint once it answers. Lateness figures are printed by bench/control_latency.py; here the check is that no
tick waited for I/O (a blocked call would hold a tick for the 3 s connect or 10 s read timeout, or forever)."""

from __future__ import annotations

import pytest

from kit.apps.latency import FAST_PLAN, HungEndpoint, measure, refused_port
from kit.cloud import config
from kit.cloud.emulator import LocalCloud
from kit.cloud.uploader import Uploader
from kit.store import Store

SENSORS = ("queue_distance_m", "light", "road_temperature_c", "cpu_temperature_c", "pot")
NO_WAIT_MS = 1000.0  # far below any network timeout, far above scheduling noise on a busy machine


def _plan_ok(result, seconds):
    assert len(result.ticks_ms) >= seconds - 1, f"only {len(result.ticks_ms)} ticks in {seconds} s"
    cycle = sum(
        FAST_PLAN[k]
        for k in ("car_green_s", "car_amber_s", "all_red_s", "ped_green_s", "ped_clear_s", "car_red_amber_s")
    )
    assert len(result.phase_changes_ms) >= int(seconds / cycle * 6) - 1, "the lamps must keep changing on schedule"
    late = max(result.ticks_ms)
    assert late < NO_WAIT_MS, f"a tick came {late:.0f} ms late: the control loop waited for something"


@pytest.mark.slow
def test_a_hung_endpoint_and_a_stalled_broker_never_hold_the_lights_and_the_data_arrives_after(tmp_path):
    seconds = 14.0
    hung, broker = HungEndpoint(), HungEndpoint()
    port = hung.port
    cloud = LocalCloud(port, activate=False, bucket="kit-realtime")
    healed = []

    def heal(app, elapsed):
        if elapsed >= 6.0 and not healed:
            hung.close()  # the endpoint comes back on the same address
            cloud.start()
            healed.append(elapsed)

    config.use(cloud.config.with_(mqtt_port=broker.port, device_id="kit-rt"))
    store = Store(tmp_path / "kit.db")
    store.params.set("device_id", "kit-rt")
    try:
        result = measure(store, seconds, cloud=True, mqtt=True, during=heal, final_sync_s=20.0)
        _plan_ok(result, seconds)
        assert healed, "the endpoint never came back"
        assert store.outbox.depth() == 0 and store.outbox.dead() == []
        rows = Uploader(device_id="kit-rt").read_all()
        ids = [r["reading_id"] for r in rows if r.get("sensor") in SENSORS]
        stored = {r["id"] for s in SENSORS for r in store.readings.range(s)}
        assert len(ids) == len(set(ids)) and set(ids) == stored, "every reading in S3 exactly once"
    finally:
        config.use(None)
        cloud.stop()
        hung.close()
        broker.close()


@pytest.mark.slow
def test_a_refused_endpoint_never_holds_the_lights_and_the_readings_wait(tmp_path):
    seconds = 6.0
    config.use(config.CloudConfig(endpoint_url=f"http://127.0.0.1:{refused_port()}", mqtt_port=refused_port()))
    store = Store(tmp_path / "kit.db")
    try:
        result = measure(store, seconds, cloud=True, mqtt=True, final_sync_s=1.0)
    finally:
        config.use(None)
    _plan_ok(result, seconds)
    assert store.readings.count() > 0 and store.outbox.depth() == store.readings.count()
    assert result.summary["uploaded"] == 0

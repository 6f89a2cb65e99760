"""The endpoint goes away, the device crashes: every reading still reaches S3 exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from kit.cloud.uploader import Uploader

DEVICE = "kit-fault"
TOTAL = 1500

# The device loop, as a real process: sample readings, store them, push the outbox with Sync.
DEVICE_LOOP = r"""
import sys, time
from kit.store import Store
from kit.cloud.sync import CircuitBreaker, Sync
from kit.cloud.uploader import Uploader

db, total = sys.argv[1], int(sys.argv[2])
store = Store(db)
last = store.readings.latest("seq")
n = 0 if last is None else int(last["value"]) + 1
sync = Sync(store, Uploader(device_id="kit-fault"), batch_size=50, lease_seconds=1, seed=n,
            breaker=CircuitBreaker(failures_to_open=2, open_seconds=0.2))
while True:
    if n < total:
        upto = min(total, n + 10)
        store.readings.append_many([("seq", float(i), 1792044000.0 + i) for i in range(n, upto)])
        n = upto
    sync.step()
    if n >= total and store.outbox.depth() == 0:
        break
    time.sleep(0.01)
"""


def _wait(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


@pytest.mark.slow
def test_outage_and_crash_every_reading_in_s3_exactly_once(cloud, tmp_path):
    from kit.store import Store

    db = tmp_path / "device.db"
    store = Store(db)  # the test's own view of the device's file (WAL: readers don't block)
    up = Uploader(device_id=DEVICE).ensure_bucket()
    env = {**os.environ, "KIT_CLOUD": "local", "AWS_ENDPOINT_URL": cloud.endpoint_url, "KIT_BUCKET": up.bucket}

    def device():
        return subprocess.Popen([sys.executable, "-c", DEVICE_LOOP, str(db), str(TOTAL)], env=env)

    proc = device()
    try:
        _wait(lambda: len(up.keys()) >= 3, 20, "the first uploads")
        cloud.stop()  # the endpoint goes down...
        seen = store.readings.count("seq")
        _wait(lambda: store.readings.count("seq") >= seen + 300, 20, "readings during the outage")
        proc.send_signal(signal.SIGKILL)  # ...and the device crashes
        proc.wait(timeout=5)
        crashed_at = store.readings.count("seq")
        assert crashed_at < TOTAL and store.outbox.depth() > 0
        proc = device()  # restarted, still offline
        _wait(lambda: store.readings.count("seq") >= crashed_at + 200, 20, "readings after the restart")
        cloud.start()  # the endpoint is back
        assert proc.wait(timeout=40) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    rows = up.read_all()
    ids = [r["reading_id"] for r in rows]
    stored = {r["id"] for r in store.readings.range("seq")}
    assert len(stored) == TOTAL
    assert len(ids) == len(set(ids)), f"{len(ids) - len(set(ids))} readings uploaded twice"
    assert set(ids) == stored, f"missing in S3: {sorted(stored - set(ids))[:10]}"
    assert sorted(r["value"] for r in rows) == [float(i) for i in range(TOTAL)]
    assert store.outbox.depth() == 0 and store.outbox.dead() == []
    store.close()


def test_a_batch_sent_but_not_acked_before_a_crash_is_not_duplicated(cloud, store):
    from kit.cloud.sync import Sync

    store.readings.append_many([("seq", float(i), 1792044000.0 + i) for i in range(120)])
    up = Uploader().ensure_bucket()
    up.upload(store.outbox.lease(limit=50, lease_seconds=0.01))  # PUT done, then the crash: no ack
    time.sleep(0.02)  # the lease runs out
    report = Sync(store, up, batch_size=50).drain()
    assert report.sent == 120 and store.outbox.depth() == 0
    rows = up.read_all()
    assert len(rows) == 120 and len({r["outbox_id"] for r in rows}) == 120

from __future__ import annotations

import time

import pytest

from kit.cloud.sync import CLOSED, HALF_OPEN, OPEN, Backoff, CircuitBreaker, Sync, SyncError
from kit.cloud.uploader import Uploader

DAY = 1792044000.0  # 2026-10-15T06:00:00Z


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t

    def sleep(self, s):
        self.t += s


def _fill(store, n, start=0):
    store.readings.append_many([("seq", float(i), DAY + i) for i in range(start, start + n)])


def test_backoff_is_seeded_jittered_and_capped():
    a, b = Backoff(base=1, cap=4, seed=7).delays(8), Backoff(base=1, cap=4, seed=7).delays(8)
    assert a == b, "same seed, same delays"
    assert a != Backoff(base=1, cap=4, seed=8).delays(8)
    assert all(0 <= d <= min(4, 2**i) for i, d in enumerate(a))


def test_breaker_opens_after_failures_then_lets_one_trial_through():
    clock = Clock()
    cb = CircuitBreaker(failures_to_open=3, open_seconds=10, clock=clock)
    cb.failure()
    cb.failure()
    assert cb.state == CLOSED
    cb.failure()
    assert cb.state == OPEN and not cb.allow() and cb.retry_in() == 10
    clock.t = 10
    assert cb.state == HALF_OPEN and cb.allow()
    cb.failure()  # the trial failed: open again at once
    assert cb.state == OPEN and cb.opens == 2
    clock.t = 20
    cb.success()
    assert cb.state == CLOSED


def test_drain_sends_everything_in_batches_with_progress(cloud, store):
    _fill(store, 1200)
    seen = []
    report = Sync(store, batch_size=500, on_progress=lambda r: seen.append(r.depth)).drain()
    assert (report.sent, report.objects, report.requests, report.depth) == (1200, 3, 3, 0)
    assert seen == [700, 200, 0]
    assert len(Uploader().read_all()) == 1200


def test_outage_opens_the_circuit_keeps_the_data_and_resumes(cloud, store):
    _fill(store, 300)
    clock = Clock()
    sync = Sync(
        store,
        batch_size=100,
        breaker=CircuitBreaker(failures_to_open=3, open_seconds=5, clock=clock),
        sleep=clock.sleep,
        seed=1,
    )
    assert sync.step() == 100
    cloud.stop()
    report = sync.drain()
    assert report.circuit == OPEN and report.requests == 3, "three tries, then stop hammering the dead endpoint"
    assert report.depth == 200 and store.outbox.dead() == []
    assert sync.drain().requests == 0, "while open, no request at all"
    cloud.start()
    clock.t += 5
    report = sync.drain()
    assert report.sent == 200 and report.depth == 0 and report.circuit == CLOSED
    rows = Uploader().read_all()
    assert sorted(r["value"] for r in rows) == [float(i) for i in range(300)]


def test_wait_open_keeps_trying_until_the_endpoint_returns(cloud, store):
    _fill(store, 10)
    clock = Clock()
    calls = []

    def sleep(s):
        clock.sleep(s)
        calls.append(s)
        if len(calls) == 4:
            cloud.start()

    up = Uploader().ensure_bucket()
    cloud.stop()
    sync = Sync(store, up, breaker=CircuitBreaker(open_seconds=2, clock=clock), sleep=sleep)
    report = sync.drain(wait_open=True)
    assert report.sent == 10 and report.waited > 0 and len(calls) >= 4


def test_a_missing_bucket_stops_the_sync_with_advice_and_keeps_the_data(cloud, store):
    _fill(store, 5)
    up = Uploader(bucket="no-such-kit-bucket")
    with pytest.raises(SyncError, match="KIT_BUCKET.*kit cloud provision"):
        Sync(store, up).drain()
    assert store.outbox.depth() == 5 and store.outbox.dead() == []


def test_a_refused_batch_is_failed_and_dead_lettered_after_max_attempts(cloud, store):
    from botocore.exceptions import ClientError

    class Refusing:
        bucket = "kit-telemetry"

        def upload(self, items):
            raise ClientError(
                {
                    "Error": {"Code": "EntityTooLarge", "Message": "too big"},
                    "ResponseMetadata": {"HTTPStatusCode": 400},
                },
                "PutObject",
            )

    store.params.set("outbox_max_attempts", 2)
    _fill(store, 3)
    clock = Clock()
    report = Sync(store, Refusing(), sleep=clock.sleep).drain()
    assert report.refused == 6 and store.outbox.depth() == 0
    assert [d.last_error for d in store.outbox.dead()] == [
        "ClientError: An error occurred (EntityTooLarge) when calling the PutObject operation: too big"
    ] * 3


def test_run_keeps_draining_in_the_background_until_stopped(cloud, store):
    import threading

    sync = Sync(store, batch_size=100)
    stop = threading.Event()
    worker = threading.Thread(target=lambda: results.append(sync.run(stop, interval_s=0.05)))
    results = []
    worker.start()
    try:
        for k in range(3):  # readings keep arriving while it runs
            _fill(store, 50, start=50 * k)
            deadline = time.monotonic() + 10
            while store.outbox.depth() and time.monotonic() < deadline:
                stop.wait(0.02)
    finally:
        stop.set()
        worker.join(timeout=10)
    assert results and results[0].sent == 150 and store.outbox.depth() == 0
    assert len(Uploader().read_all()) == 150


def test_cli_sync_follow_runs_until_its_timeout(cloud, store, capsys):
    from kit.cli import main

    _fill(store, 20)
    assert main(["cloud", "sync", "--db", store.path, "--follow", "--interval", "0.05", "--timeout", "0.5"]) == 0
    assert "sent 20 readings" in capsys.readouterr().out


def test_one_bad_item_already_in_the_outbox_is_dead_lettered_alone_with_its_reason(cloud, store):
    # A reading an older kit stored with epoch milliseconds (validation at append refuses it today).
    _fill(store, 4)
    with store.transaction() as conn:
        conn.execute("INSERT INTO readings (sensor, ts, value) VALUES ('pot', 1792044000000.0, 0.5)")
        bad = conn.execute("SELECT max(id) FROM readings").fetchone()[0]
        conn.execute("INSERT INTO outbox (kind, reading_id, created_ts) VALUES ('reading', ?, 0)", [bad])
    _fill(store, 4)
    report = Sync(store).drain()
    assert report.sent == 8 and report.refused == 1 and store.outbox.depth() == 0
    dead = store.outbox.dead()
    assert [d.payload["reading_id"] for d in dead] == [bad]
    assert "cannot be uploaded" in dead[0].last_error and "year" in dead[0].last_error
    ids = {r["reading_id"] for r in Uploader().read_all()}
    assert bad not in ids and len(ids) == 8


def test_an_outage_is_heard_once_when_it_starts_and_once_when_it_ends(store):
    from botocore.exceptions import EndpointConnectionError

    class Flaky:
        bucket = "kit-telemetry"
        fails = 7

        def upload(self, items):
            if self.fails:
                self.fails -= 1
                raise EndpointConnectionError(endpoint_url="http://127.0.0.1:1")
            return []

    _fill(store, 3)
    clock, heard = Clock(), []
    sync = Sync(
        store,
        Flaky(),
        breaker=CircuitBreaker(failures_to_open=2, open_seconds=1, clock=clock),
        sleep=clock.sleep,
        on_outage=heard.append,
    )
    report = sync.drain(wait_open=True)
    assert report.sent == 3 and report.failures == 7
    assert [type(e).__name__ if e else None for e in heard] == ["EndpointConnectionError", None]
    assert sync.outage is None


def test_missing_credentials_are_a_setup_mistake_not_an_outage(store):
    from botocore.exceptions import NoCredentialsError

    from kit.cloud.sync import transient

    class Unsigned:
        bucket = "kit-telemetry"
        calls = 0

        def upload(self, items):
            self.calls += 1
            raise NoCredentialsError()

    assert not transient(NoCredentialsError())
    _fill(store, 3)
    clock, up, heard = Clock(), Unsigned(), []
    with pytest.raises(NoCredentialsError):
        Sync(store, up, sleep=clock.sleep, on_outage=heard.append).drain(wait_open=True, timeout=3600)
    assert up.calls == 1 and heard == [] and clock.t == 0
    assert store.outbox.depth() == 3 and store.outbox.dead() == []

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from datetime import datetime

import numpy as np
import pytest

from kit.store import Store

T0 = 1792044000.0  # 2026-10-15T06:00:00Z


def test_append_and_append_many_take_tuples_dicts_and_time_forms(store):
    assert store.readings.append("queue_m", 1.5, ts=T0) == 1
    n = store.readings.append_many(
        [
            ("queue_m", 2, T0 + 1),
            {"sensor": "queue_m", "value": np.float32(2.5), "ts": datetime(2026, 10, 15, 6, 0, 2)},
            ["light", 0.25, "2026-10-15T06:00:03Z"],
            ("light", 0.5),  # no time: now
        ]
    )
    assert n == 4
    assert [r["value"] for r in store.readings.range("queue_m")] == [1.5, 2.0, 2.5]
    assert store.readings.range("queue_m")[2]["ts"] == T0 + 2
    assert store.readings.latest("light")["value"] == 0.5
    assert store.readings.latest("nothing") is None
    assert store.outbox.depth() == 5  # every reading queued for the cloud, in the same transaction


@pytest.mark.parametrize(
    "bad, words",
    [
        (("", 1.0, T0), ["row 1", "sensor"]),
        ((None, 1.0, T0), ["row 1", "sensor"]),
        (("q", "3.2", T0), ["row 1", "must be a number"]),
        (("q", None, T0), ["row 1", "must be a number"]),
        (("q", float("nan"), T0), ["row 1", "finite"]),
        (("q", 1.0, "yesterday"), ["row 1", "ISO"]),
        ({"sensor": "q"}, ["row 1", "missing key 'value'"]),
        (("q",), ["row 1", "expected (sensor, value, ts)"]),
    ],
)
def test_a_bad_row_writes_nothing_and_names_its_position(store, bad, words):
    with pytest.raises((TypeError, ValueError)) as info:
        store.readings.append_many([("q", 1.0, T0), bad, ("q", 2.0, T0 + 1)])
    for word in words:
        assert word in str(info.value)
    assert "nothing was written" in str(info.value)
    assert store.readings.count() == 0 and store.outbox.depth() == 0


def test_sensor_names_are_values_never_sql(store):
    evil = "x'); DROP TABLE readings; --"
    store.readings.append(evil, 1.0, ts=T0)
    store.readings.append_many([(evil, 2.0, T0 + 1), ('q" OR 1=1 --', 3.0, T0 + 2)])
    assert [r["value"] for r in store.readings.range(evil)] == [1.0, 2.0]
    assert store.readings.latest('q" OR 1=1 --')["value"] == 3.0
    assert store.readings.per_minute(evil)[0]["count"] == 2
    assert {s["sensor"] for s in store.readings.sensors()} == {evil, 'q" OR 1=1 --'}
    assert store.readings.count() == 3
    with pytest.raises(TypeError, match="sensor"):
        store.readings.range(["q"])


def test_range_is_half_open_and_accepts_any_time_form(store):
    store.readings.append_many([("q", float(i), T0 + 10 * i) for i in range(10)])
    assert [r["value"] for r in store.readings.range("q", T0 + 20, T0 + 50)] == [2.0, 3.0, 4.0]
    assert len(store.readings.range("q", "2026-10-15T06:00:20Z", datetime(2026, 10, 15, 6, 0, 50))) == 3
    assert len(store.readings.range("q", None, None, limit=4)) == 4
    assert [r["value"] for r in store.readings.tail(2, "q")] == [8.0, 9.0]


def test_per_minute_aggregates(store):
    # minute 0: 1, 2, 3; minute 1: 10; minute 3: 5, 7
    store.readings.append_many(
        [
            ("q", 1.0, T0),
            ("q", 2.0, T0 + 20),
            ("q", 3.0, T0 + 59.9),
            ("q", 10.0, T0 + 60),
            ("q", 5.0, T0 + 185),
            ("q", 7.0, T0 + 239),
            ("other", 99.0, T0),
        ]
    )
    rows = store.readings.per_minute("q", T0, T0 + 3600)
    assert [(r["minute"] - T0, r["count"], r["mean"], r["min"], r["max"]) for r in rows] == [
        (0, 3, 2.0, 1.0, 3.0),
        (60, 1, 10.0, 10.0, 10.0),
        (180, 2, 6.0, 5.0, 7.0),
    ]


def _ack_all(store):
    while items := store.outbox.lease(limit=10_000):
        store.outbox.ack(items)


def test_prune_drops_old_readings_but_keeps_unsent_ones(store):
    day = 86400
    store.readings.append_many([("q", float(i), T0 + i * day / 4) for i in range(40)])  # 10 days
    now = T0 + 10 * day
    result = store.readings.prune(3, now=now)
    assert result == {"deleted": 0, "added": 0, "kept_unsent": 28}  # nothing delivered yet: all kept
    _ack_all(store)
    result = store.readings.prune(3, now=now)
    assert result["deleted"] == 28 and result["kept_unsent"] == 0
    assert min(r["ts"] for r in store.readings.range("q")) >= now - 3 * day
    store.readings.append("q", -1.0, ts=T0)  # old but unsent
    assert store.readings.prune(3, now=now, include_unsent=True)["deleted"] == 1
    assert store.outbox.depth() == 0


def test_downsample_keeps_one_weighted_mean_per_minute(store):
    store.readings.append_many([("q", float(v), T0 + s) for v, s in [(1, 0), (3, 30), (5, 50), (8, 70), (9, 200)]])
    store.readings.append_many([("q", 100.0, T0 + 86400 * 2)], upload=False)
    _ack_all(store)
    result = store.readings.prune(1, downsample=True, now=T0 + 86400 * 2)
    assert result == {"deleted": 3, "added": 1, "kept_unsent": 0}  # only minute 0 had several rows
    rows = store.readings.range("q", T0, T0 + 3600)
    assert [(r["ts"] - T0, r["value"], r["n"]) for r in rows] == [(0, 3.0, 3), (70, 8.0, 1), (200, 9.0, 1)]
    # downsampling again changes nothing; per-minute counts still count raw readings
    assert store.readings.prune(1, downsample=True, now=T0 + 86400 * 2)["deleted"] == 0
    assert store.readings.per_minute("q", T0, T0 + 60)[0]["count"] == 3
    assert store.readings.sensors()[0]["count"] == 6


def test_vacuum_gives_pruned_space_back(store):
    store.readings.append_many([("q", float(i), T0 + i) for i in range(20_000)], upload=False)
    store.readings.prune(1, now=T0 + 3 * 86400)
    assert store.readings.size()["free_bytes"] > 0
    saved = store.vacuum()
    assert saved > 0 and store.readings.size()["free_bytes"] == 0 and store.check() == []


def test_prune_refuses_nonsense(store):
    with pytest.raises(ValueError, match="older_than_days"):
        store.readings.prune(-1)


def test_size_report(store):
    before = store.readings.size()
    store.readings.append_many([("q", float(i), T0 + i) for i in range(5000)])
    after = store.readings.size()
    assert after["readings"] == 5000 and after["outbox"] == 5000
    assert after["file_bytes"] + after["wal_bytes"] > before["file_bytes"] + before["wal_bytes"]
    assert after["oldest_ts"] == T0 and after["newest_ts"] == T0 + 4999


# --- a process killed in the middle of append_many ---------------------------------------------------------

CHILD = textwrap.dedent("""
    import sys, time
    from kit.store import Store
    path, batch, start, pause_in = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    store = Store(path)
    conn = store.db.conn
    b = start
    while True:
        if b == pause_in:
            base = conn.total_changes
            def hold_mid_transaction():
                # half of this batch is inserted, nothing of it committed
                if conn.in_transaction and conn.total_changes - base >= batch // 2:
                    print("MID", flush=True)
                    time.sleep(60)  # the parent kills us here
                return 0
            conn.set_progress_handler(hold_mid_transaction, 50)
        store.readings.append_many([("s", float(b * batch + i), 1792044000.0 + b * batch + i) for i in range(batch)])
        print(b, flush=True)
        b += 1
""")


def _spawn(path, batch, start, pause_in):
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), str(batch), str(start), str(pause_in)],
        stdout=subprocess.PIPE,
        text=True,
    )


def _check_intact(path, batch):
    with Store(path) as store:
        assert store.check() == []
        values = [v for (v,) in store.db.execute("SELECT value FROM readings ORDER BY id")]
        assert values == [float(i) for i in range(len(values))], "readings missing in the middle or repeated"
        assert len(values) % batch == 0, "a batch was half written"
        assert store.outbox.depth() == len(values), "readings and outbox disagree"
        return len(values) // batch


def test_sigkill_mid_append_many_loses_only_the_open_batch(tmp_path):
    path, batch = tmp_path / "kit.db", 500
    child = _spawn(path, batch, start=0, pause_in=3)
    try:
        lines = [child.stdout.readline().strip() for _ in range(4)]
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
        child.stdout.close()
    assert lines == ["0", "1", "2", "MID"]
    assert _check_intact(path, batch) == 3  # batches 0-2 committed, batch 3 (half inserted) gone
    with Store(path) as store:  # and the file takes new writes cleanly
        store.readings.append_many([("s", float(3 * batch + i), 1.0) for i in range(batch)])
    assert _check_intact(path, batch) == 4


def test_repeated_sigkills_at_random_moments_never_duplicate_or_tear(tmp_path):
    path, batch = tmp_path / "kit.db", 2000
    committed = 0
    for _ in range(3):
        start = _check_intact(path, batch) if path.exists() else 0
        assert start >= committed  # nothing the child reported as committed was lost
        child = _spawn(path, batch, start=start, pause_in=-1)
        try:
            for _ in range(3):
                committed = int(child.stdout.readline()) + 1
        finally:
            os.kill(child.pid, signal.SIGKILL)  # most of the child's time is spent inside append_many
            child.wait(timeout=10)
            child.stdout.close()
    assert _check_intact(path, batch) >= committed

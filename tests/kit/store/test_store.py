from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time

import pytest

from kit.store import ParameterError, Store

T0 = 1792044000.0


def test_transaction_groups_writes_all_or_nothing(store):
    with pytest.raises(ParameterError):
        with store.transaction():
            store.readings.append("q", 1.0, ts=T0)
            store.params.set("car_green_s", 999)
    assert store.readings.count() == 0 and store.outbox.depth() == 0
    with store.transaction():
        store.readings.append("q", 1.0, ts=T0)
        store.outbox.enqueue("event", {"note": "with the reading"})
    assert store.readings.count() == 1 and store.outbox.depth() == 2


def test_memory_store_repr_and_check():
    with Store(":memory:") as store:
        store.readings.append("q", 1.0)
        assert store.check() == [] and repr(store) == "Store(':memory:')"
        assert store.readings.size()["wal_bytes"] == 0


def test_threads_share_one_store(store):
    def log(sensor):
        for i in range(20):
            store.readings.append_many([(sensor, float(i), T0 + i)])
            store.readings.latest(sensor)

    threads = [threading.Thread(target=log, args=(f"s{k}",)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.readings.count() == 80 and store.outbox.depth() == 80


WRITER = textwrap.dedent("""
    import os
    import sys
    import time
    from kit.store import Store
    store = Store(sys.argv[1])
    print("open", flush=True)
    for b in range(40):
        store.readings.append_many([("logger", float(b * 250 + i), 1792044000.0 + b * 250 + i) for i in range(250)])
        store.params.set("sample_period_s", 1 + b % 5)
        time.sleep(0.01)  # a logger samples now and then; without a pause it could finish before the reader looks
        if b == 19:  # half-way, give a slow reader (a busy machine) the chance to see the file mid-run
            deadline = time.monotonic() + 30
            while not os.path.exists(sys.argv[1] + ".seen") and time.monotonic() < deadline:
                time.sleep(0.01)
    print("done", flush=True)
""")


def test_two_processes_write_and_read_the_same_file_at_once(tmp_path):
    path = tmp_path / "kit.db"
    Store(path).close()
    child = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "open"
    seen = []
    deadline = time.monotonic() + 60
    with Store(path) as store:  # the "notebook": reads and writes while the logger writes
        while child.poll() is None and time.monotonic() < deadline:
            seen.append(store.readings.count("logger"))
            if 0 < seen[-1] < 10_000:
                (tmp_path / "kit.db.seen").touch()
            store.readings.append_many([("notebook", float(len(seen)), T0 + len(seen))])
            items = store.outbox.lease(limit=100)
            store.outbox.ack(items)
        assert child.wait(timeout=60) == 0 and child.stdout.read().strip() == "done"
        child.stdout.close()
        assert seen == sorted(seen)  # the reader only ever saw whole batches appear
        assert all(n % 250 == 0 for n in seen)
        assert any(0 < n < 10_000 for n in seen), "the two processes never overlapped"
        assert store.readings.count("logger") == 10_000
        assert store.readings.count("notebook") == len(seen)
        assert store.check() == []

from __future__ import annotations

import pytest

from kit.store import OutboxItem, Store

T0 = 1792044000.0


def _fill(store, n):
    store.readings.append_many([("q", float(i), T0 + i) for i in range(n)])


def test_lease_hands_out_items_oldest_first_and_not_twice(store):
    _fill(store, 10)
    first = store.outbox.lease(limit=4, now=T0)
    second = store.outbox.lease(limit=100, now=T0)
    assert [i.id for i in first] == [1, 2, 3, 4] and [i.id for i in second] == [5, 6, 7, 8, 9, 10]
    assert first[0] == OutboxItem(
        1, "reading", {"reading_id": 1, "sensor": "q", "ts": T0, "value": 0.0}, 0, first[0].created_ts
    )
    assert store.outbox.lease(now=T0) == [] and store.outbox.depth() == 10


def test_ack_removes_and_is_idempotent(store):
    _fill(store, 5)
    items = store.outbox.lease(now=T0)
    assert store.outbox.ack(items[:2]) == 2
    assert store.outbox.ack([items[0].id, items[1].id, 999]) == 0  # a resent ack changes nothing
    assert store.outbox.ack(items[2].id) == 1
    assert store.outbox.depth() == 2


def test_ids_only_grow_even_after_the_newest_item_is_acked(store):
    _fill(store, 3)
    store.outbox.ack(store.outbox.lease())
    store.outbox.enqueue("event", {"what": "door open"})
    assert [i.id for i in store.outbox.lease()] == [4]  # never 1 again: a receiver may still remember id 1


def test_failed_items_are_retried_then_dead_lettered_after_n(store):
    _fill(store, 2)
    for attempt in range(1, 3):
        items = store.outbox.lease(now=T0)
        assert [i.attempts for i in items] == [attempt - 1] * 2
        assert store.outbox.fail(items, "HTTP 503", max_attempts=3, now=T0) == []
    items = store.outbox.lease(now=T0)
    assert store.outbox.fail(items[:1], "HTTP 503", max_attempts=3, now=T0) == [1]
    assert store.outbox.depth() == 1  # item 2, still leased; item 1 is out of the queue
    store.outbox.ack(items[1:])
    dead = store.outbox.dead()
    assert [(d.id, d.attempts, d.last_error) for d in dead] == [(1, 3, "HTTP 503")] and dead[0].dead_ts == T0
    assert dead[0].payload["value"] == 0.0  # the reading is still there to inspect or resend
    assert store.outbox.lease(now=T0) == []
    assert store.outbox.retry_dead() == 1 and store.outbox.dead() == [] and store.outbox.depth() == 1
    assert [(i.id, i.attempts) for i in store.outbox.lease(now=T0)] == [(1, 0)]


def test_dead_letter_limit_defaults_to_the_parameter(store):
    store.params.set("outbox_max_attempts", 1)
    _fill(store, 1)
    assert store.outbox.fail(store.outbox.lease(), "boom") == [1]


def test_an_expired_lease_counts_as_a_failed_attempt(store):
    _fill(store, 1)
    store.outbox.lease(lease_seconds=30, now=T0)
    assert store.outbox.lease(now=T0 + 10) == []  # still leased
    again = store.outbox.lease(now=T0 + 31)  # the sender died without ack or fail
    assert [(i.id, i.attempts) for i in again] == [(1, 1)] and "lease expired" in again[0].last_error
    store.params.set("outbox_max_attempts", 2)
    assert store.outbox.lease(now=T0 + 100) == []  # expired again: second failure -> dead letter
    assert [d.id for d in store.outbox.dead()] == [1]


def test_enqueue_other_kinds_and_bad_input(store):
    id_ = store.outbox.enqueue("event", {"button_presses": 3})
    assert store.outbox.lease()[0].payload == {"button_presses": 3} and id_ == 1
    with pytest.raises(ValueError, match="JSON"):
        store.outbox.enqueue("event", {"x": float("nan")})
    with pytest.raises(TypeError, match="kind"):
        store.outbox.enqueue("", {})
    with pytest.raises(TypeError, match="ids"):
        store.outbox.ack(["1"])
    with pytest.raises(ValueError, match="limit"):
        store.outbox.lease(limit=0)
    with pytest.raises(ValueError, match="max_attempts"):
        store.outbox.fail([1], "x", max_attempts=0)


def test_items_survive_a_reopen_with_their_attempts(tmp_path):
    with Store(tmp_path / "kit.db") as store:
        _fill(store, 3)
        store.outbox.fail(store.outbox.lease(limit=1), "timeout")
    with Store(tmp_path / "kit.db") as store:
        items = store.outbox.lease()
        assert [(i.id, i.attempts) for i in items] == [(1, 1), (2, 0), (3, 0)]

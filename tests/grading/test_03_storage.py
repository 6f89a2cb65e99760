"""Grades lab 03 (local storage): safe parameter changes, a batched logger, SQL queries, retention, batching."""
import pytest

pytestmark = pytest.mark.notebook("03_storage")


def _check_apply_settings():
    import os
    import tempfile

    from kit.store import Store

    path = os.path.join(tempfile.mkdtemp(), "kit.db")
    with Store(path) as store:
        problems = apply_settings(store, {"car_green_s": 30, "ped_green_s": 100})
        assert isinstance(problems, dict) and "ped_green_s" in problems, (
            f"ped_green_s=100 is out of range: expected its problem in the result, got {problems!r}")
        assert store.params.get("car_green_s") == 20.0, "one bad value: nothing may change (car_green_s changed)"
        assert apply_settings(store, {"night_mode": "flashing"}).keys() == {"night_mode"}
        assert store.params.history() == [], "a refused change must leave no history"
        result = apply_settings(store, {"car_green_s": 30, "ped_green_s": 12})
        assert result == {}, f"valid changes should return {{}}, got {result!r}"
    with Store(path) as store:  # reboot
        assert store.params.get("car_green_s") == 30.0 and store.params.get("ped_green_s") == 12.0, (
            "valid changes must be stored (and survive reopening the store)")
        assert {h["source"] for h in store.params.history()} == {"lab"}, "record changes with source='lab'"


@pytest.mark.points(3)
def test_apply_settings_is_all_or_nothing_and_survives_a_reboot(lab):
    lab.run(_check_apply_settings)


def _check_log_readings():
    import math

    from kit import Board
    from kit.store import Store

    calls = {"append_many": [], "append": 0}
    with Board(seed=5) as board, Store(":memory:") as store:
        real_many, real_one = store.readings.append_many, store.readings.append

        def counting_many(rows, **kw):
            rows = list(rows)
            calls["append_many"].append(len(rows))
            return real_many(rows, **kw)

        def counting_one(*a, **kw):
            calls["append"] += 1
            return real_one(*a, **kw)

        store.readings.append_many, store.readings.append = counting_many, counting_one
        times = []
        def wait(seconds):
            board.world.advance(seconds)
            times.append(board.world.now)

        n = log_readings(board, store, 12, 20, wait, batch_size=15)
        assert n == 36, f"12 samples x 3 sensors = 36 readings; log_readings returned {n!r}"
        assert calls["append"] == 0, "use append_many in batches, not append for each reading"
        assert 2 <= len(calls["append_many"]) <= 4, (
            f"36 readings in batches of about 15 need about 3 append_many calls, you made {len(calls['append_many'])}")
        for sensor, low, high in (("queue_m", 0.0, 2.5), ("light", 0.0, 1.0), ("road_temp_c", -30.0, 70.0)):
            rows = store.readings.range(sensor)
            assert len(rows) == 12, f"expected 12 {sensor} readings, found {len(rows)}"
            assert all(low <= r["value"] <= high for r in rows), f"{sensor} values out of range: read the right device"
        stamps = [r["ts"] for r in store.readings.range("light")]
        from kit.store.timestamps import to_epoch
        assert stamps == [to_epoch(t) for t in times], "stamp each sample with board.world.now after wait()"
        assert math.isclose(stamps[1] - stamps[0], 20), "samples must be period_s apart"
        assert store.outbox.depth() == 36, "append_many queues readings for the cloud: don't pass upload=False"


@pytest.mark.points(3)
def test_log_readings_samples_three_sensors_in_batches(lab):
    lab.run(_check_log_readings)


def _check_hourly_means():
    from kit.store import Store

    t0 = 1792044000.0  # 06:00 UTC, the start of an hour
    with Store(":memory:") as store:
        store.readings.append_many(
            [("q", 1.0, t0), ("q", 3.0, t0 + 1800), ("q", 10.0, t0 + 3600), ("q", 20.0, t0 + 7199),
             ("q", 99.0, t0 + 7200), ("other", 5.0, t0), ("it's", 7.0, t0 + 10)])
        got = hourly_means(store, "q", t0, t0 + 7200)
        assert [tuple(x) for x in got] == [(t0, 2.0), (t0 + 3600, 15.0)], (
            f"expected [(hour, mean), ...] = [({t0}, 2.0), ({t0 + 3600}, 15.0)] for start <= ts < end, got {got!r}")
        got = hourly_means(store, "it's", t0, t0 + 86400)
        assert [tuple(x) for x in got] == [(t0, 7.0)], f"a sensor named it's should work (use ? parameters): {got!r}"
        assert list(hourly_means(store, "nothing", t0, t0 + 86400)) == []


@pytest.mark.points(2)
def test_hourly_means_groups_by_hour_with_parameters(lab):
    lab.run(_check_hourly_means)


def _check_apply_retention():
    from kit.store import Store

    t0 = 1792044000.0
    day = 86400.0
    with Store(":memory:") as store:
        # 10 readings per minute for 3 minutes, 5 days before "now"; one fresh reading
        store.readings.append_many([("q", float(i % 10), t0 + 6 * i) for i in range(30)])
        store.readings.append("q", 50.0, ts=t0 + 5 * day)
        while items := store.outbox.lease(limit=1000):
            store.outbox.ack(items)
        store.params.set("retention_days", 6)
        assert apply_retention(store, t0 + 5 * day) == 0, "readings younger than retention_days must stay"
        store.params.set("retention_days", 2)
        removed = apply_retention(store, t0 + 5 * day)
        assert removed == 30, f"30 old readings should be replaced by per-minute means; removed {removed!r}"
        minutes = store.readings.per_minute("q", t0, t0 + day)
        assert [(m["count"], m["mean"]) for m in minutes] == [(10, 4.5), (10, 4.5), (10, 4.5)], (
            "downsample (prune(..., downsample=True)), don't drop")
        assert store.readings.latest("q")["value"] == 50.0


@pytest.mark.points(2)
def test_apply_retention_downsamples_by_the_parameter(lab):
    lab.run(_check_apply_retention)


def _check_time_per_reading():
    from kit.store import Store

    sizes = []
    with Store(":memory:") as store:
        real = store.readings.append_many

        def counting(rows, **kw):
            rows = list(rows)
            sizes.append(len(rows))
            return real(rows, **kw)

        store.readings.append_many = counting
        rows = [("b", float(i), 1792044000.0 + i) for i in range(250)]
        seconds = time_per_reading(store, rows, 100)
        assert sizes == [100, 100, 50], f"250 rows in batches of 100 = calls of 100, 100, 50; got {sizes}"
        assert store.readings.count("b") == 250
        assert isinstance(seconds, float) and 0 < seconds < 0.1, f"seconds per reading, got {seconds!r}"


@pytest.mark.points(2)
def test_time_per_reading_writes_in_batches(lab):
    lab.run(_check_time_per_reading)

"""Grades lab 03 (local storage): safe parameter changes, a batched logger, SQL queries, retention, batching.

Each ``_observe_*`` function runs in the student's kernel and only gathers values; each test judges them here, in
the grader's process, on inputs drawn from ``grading_rng`` (fresh for every grading run).
"""

import math

import pytest

pytestmark = pytest.mark.notebook("03_storage")


def _observe_apply_settings(bad, night, good):
    import os
    import tempfile

    from kit.store import Store

    path = os.path.join(tempfile.mkdtemp(), "kit.db")
    out = {}
    with Store(path) as store:
        problems = apply_settings(store, bad)
        out["bad"] = sorted(problems) if isinstance(problems, dict) else repr(problems)[:200]
        out["after_bad"] = store.params.get("car_green_s")
        night_problems = apply_settings(store, night)
        out["night"] = sorted(night_problems) if isinstance(night_problems, dict) else repr(night_problems)[:200]
        out["history_after_refusals"] = len(store.params.history())
        result = apply_settings(store, good)
        out["good"] = result if isinstance(result, dict) else repr(result)[:200]
    with Store(path) as store:  # reboot
        out["reopened"] = {name: store.params.get(name) for name in good}
        out["sources"] = sorted({h["source"] for h in store.params.history()})
    return out


@pytest.mark.points(3)
def test_apply_settings_is_all_or_nothing_and_survives_a_reboot(lab, grading_rng):
    car, ped = grading_rng.randint(6, 119), grading_rng.randint(5, 29)
    bad = {"car_green_s": car, "ped_green_s": grading_rng.randint(31, 500)}
    got = lab.observe(
        _observe_apply_settings,
        bad,
        {"night_mode": "flashing-" + str(grading_rng.randint(1, 99))},
        {"car_green_s": car, "ped_green_s": ped},
    )
    assert isinstance(got["bad"], list) and "ped_green_s" in got["bad"], (
        f"ped_green_s={bad['ped_green_s']} is out of range: expected its problem in the result, got {got['bad']}"
    )
    assert got["after_bad"] == 20.0, "one bad value: nothing may change (car_green_s changed)"
    assert got["night"] == ["night_mode"], f"an unknown night_mode should be reported by name, got {got['night']}"
    assert got["history_after_refusals"] == 0, "a refused change must leave no history"
    assert got["good"] == {}, f"valid changes should return {{}}, got {got['good']!r}"
    assert got["reopened"] == {"car_green_s": float(car), "ped_green_s": float(ped)}, (
        f"valid changes must be stored (and survive reopening the store), got {got['reopened']}"
    )
    assert got["sources"] == ["lab"], "record changes with source='lab'"


def _observe_log_readings(seed, samples, period_s, batch_size):
    from kit import Board
    from kit.store import Store
    from kit.store.timestamps import to_epoch

    calls = {"append_many": [], "append": 0}
    with Board(seed=seed) as board, Store(":memory:") as store:
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
            times.append(to_epoch(board.world.now))

        n = log_readings(board, store, samples, period_s, wait, batch_size=batch_size)
        return {
            "n": n,
            "calls": calls,
            "times": times,
            "outbox": store.outbox.depth(),
            "rows": {
                s: [[r["ts"], r["value"]] for r in store.readings.range(s)] for s in ("queue_m", "light", "road_temp_c")
            },
        }


@pytest.mark.points(3)
def test_log_readings_samples_three_sensors_in_batches(lab, grading_rng):
    samples, period_s = grading_rng.randint(8, 16), grading_rng.choice([10, 15, 20, 30])
    batch_size = grading_rng.choice([12, 15, 18])
    got = lab.observe(_observe_log_readings, grading_rng.randint(1, 10_000), samples, period_s, batch_size)
    readings = 3 * samples
    assert got["n"] == readings, (
        f"{samples} samples x 3 sensors = {readings} readings; log_readings returned {got['n']!r}"
    )
    assert got["calls"]["append"] == 0, "use append_many in batches, not append for each reading"
    batches = math.ceil(readings / batch_size)
    assert batches - 1 <= len(got["calls"]["append_many"]) <= batches + 1, (
        f"{readings} readings in batches of about {batch_size} need about {batches} append_many calls, "
        f"you made {len(got['calls']['append_many'])}"
    )
    for sensor, low, high in (("queue_m", 0.0, 2.5), ("light", 0.0, 1.0), ("road_temp_c", -30.0, 70.0)):
        rows = got["rows"][sensor]
        assert len(rows) == samples, f"expected {samples} {sensor} readings, found {len(rows)}"
        assert all(low <= value <= high for _, value in rows), f"{sensor} values out of range: read the right device"
    stamps = [ts for ts, _ in got["rows"]["light"]]
    assert len(got["times"]) == samples and stamps == got["times"], (
        "stamp each sample with board.world.now after wait()"
    )
    assert math.isclose(stamps[1] - stamps[0], period_s), f"samples must be period_s ({period_s} s) apart"
    assert got["outbox"] == readings, "append_many queues readings for the cloud: don't pass upload=False"


def _observe_hourly_means(rows, sensor, start, end):
    from kit.store import Store

    with Store(":memory:") as store:
        store.readings.append_many([tuple(r) for r in rows])
        return [list(x) for x in hourly_means(store, sensor, start, end)]


@pytest.mark.points(2)
def test_hourly_means_groups_by_hour_with_parameters(lab, grading_rng):
    t0 = 1792044000.0 + 3600 * grading_rng.randint(0, 500)  # the start of an hour
    hours = grading_rng.randint(2, 4)
    rows, expected = [], []
    for h in range(hours):
        values = [round(grading_rng.uniform(0, 100), 1) for _ in range(grading_rng.randint(1, 4))]
        offsets = sorted(grading_rng.sample(range(3600), len(values)))
        rows += [["q", v, t0 + 3600 * h + o] for v, o in zip(values, offsets, strict=True)]
        expected.append([t0 + 3600 * h, sum(values) / len(values)])
    rows += [["q", 999.0, t0 + 3600 * hours], ["other", 5.0, t0], ["it's", 7.0, t0 + 10]]
    got = lab.observe(_observe_hourly_means, rows, "q", t0, t0 + 3600 * hours)
    assert len(got) == hours and all(
        g[0] == e[0] and math.isclose(g[1], e[1], rel_tol=1e-9) for g, e in zip(got, expected, strict=True)
    ), f"expected [(hour, mean), ...] = {expected} for start <= ts < end, got {got!r}"
    got = lab.observe(_observe_hourly_means, rows, "it's", t0, t0 + 86400)
    assert got == [[t0, 7.0]], f"a sensor named it's should work (use ? parameters): {got!r}"
    assert lab.observe(_observe_hourly_means, rows, "nothing", t0, t0 + 86400) == []


def _observe_apply_retention(values, t0, keep_days, short_days):
    from kit.store import Store

    day = 86400.0
    with Store(":memory:") as store:
        store.readings.append_many([("q", v, t0 + 6 * i) for i, v in enumerate(values)])
        store.readings.append("q", 50.0, ts=t0 + 5 * day)
        while items := store.outbox.lease(limit=1000):
            store.outbox.ack(items)
        store.params.set("retention_days", keep_days)
        kept = apply_retention(store, t0 + 5 * day)
        store.params.set("retention_days", short_days)
        removed = apply_retention(store, t0 + 5 * day)
        minutes = [[m["count"], m["mean"]] for m in store.readings.per_minute("q", t0, t0 + day)]
        return {"kept": kept, "removed": removed, "minutes": minutes, "latest": store.readings.latest("q")["value"]}


@pytest.mark.points(2)
def test_apply_retention_downsamples_by_the_parameter(lab, grading_rng):
    t0 = 1792044000.0
    values = [float(grading_rng.randint(0, 20)) for _ in range(30)]  # 10 a minute for 3 minutes, 5 days old
    got = lab.observe(_observe_apply_retention, values, t0, grading_rng.randint(6, 30), grading_rng.randint(1, 4))
    assert got["kept"] == 0, "readings younger than retention_days must stay"
    assert got["removed"] == 30, f"30 old readings should be replaced by per-minute means; removed {got['removed']!r}"
    expected = [[10, sum(values[i : i + 10]) / 10] for i in (0, 10, 20)]
    assert len(got["minutes"]) == 3 and all(
        g[0] == e[0] and math.isclose(g[1], e[1]) for g, e in zip(got["minutes"], expected, strict=True)
    ), f"downsample (prune(..., downsample=True)), don't drop: expected {expected}, got {got['minutes']}"
    assert got["latest"] == 50.0


def _observe_time_per_reading(count, batch_size):
    from kit.store import Store

    sizes = []
    with Store(":memory:") as store:
        real = store.readings.append_many

        def counting(rows, **kw):
            rows = list(rows)
            sizes.append(len(rows))
            return real(rows, **kw)

        store.readings.append_many = counting
        rows = [("b", float(i), 1792044000.0 + i) for i in range(count)]
        seconds = time_per_reading(store, rows, batch_size)
        return {
            "sizes": sizes,
            "stored": store.readings.count("b"),
            "seconds": seconds if isinstance(seconds, (int, float)) else repr(seconds)[:100],
            "type": type(seconds).__name__,
        }


@pytest.mark.points(2)
def test_time_per_reading_writes_in_batches(lab, grading_rng):
    batch_size = grading_rng.randint(50, 120)
    count = batch_size * grading_rng.randint(2, 3) + grading_rng.randint(1, batch_size - 1)
    got = lab.observe(_observe_time_per_reading, count, batch_size)
    expected = [batch_size] * (count // batch_size) + [count % batch_size]
    assert got["sizes"] == expected, (
        f"{count} rows in batches of {batch_size} = calls of {expected}; got {got['sizes']}"
    )
    assert got["stored"] == count
    assert got["type"] == "float" and 0 < got["seconds"] < 0.1, f"seconds per reading, got {got['seconds']!r}"

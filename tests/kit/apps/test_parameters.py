"""Every parameter in kit/store/defaults.py takes effect in the running app.

For each parameter, the simulated app runs twice from the same seed: once as it is, once with the parameter
changed part-way through the run (as `kit params set`, a notebook or the shadow would). The effect is
observed on the lamps, the buzzer, the store or the cloud after the change. A parameter added to the table
without a check here fails ``test_every_parameter_is_walked``; one with no reader fails its own check.

The app's worker rounds (store, retention, status; the cloud) are run from the control loop's tick once per simulated
minute here, so each run is deterministic.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

import pytest

from kit.apps.intersection import AppOptions, IntersectionApp
from kit.store import Store
from kit.store.defaults import PARAMETERS

CHANGE_AT_S = 300  # the change arrives 5 simulated minutes into the run
MINUTES = 25
DAY, NIGHT = "2026-10-15T08:00:00", "2026-10-15T01:00:00"


@dataclass
class Run:
    """What one run showed, tick by tick."""

    app: Any
    store: Any
    ticks: list[tuple[float, str, bool, str, str]] = field(default_factory=list)  # t, phase, buzzer, car, ped
    uploaded_before_end: int = 0

    def phases(self, after: float = CHANGE_AT_S) -> list[tuple[str, float]]:
        """(name, duration) of each complete phase that started at or after ``after`` (the last is cut off)."""
        out, start, name = [], None, None
        for t, phase, *_ in self.ticks:
            if phase != name:
                if name is not None and start is not None and start >= after:
                    out.append((name, t - start))
                start, name = t, phase
        return out

    def durations(self, phase: str, after: float = CHANGE_AT_S) -> list[float]:
        return [d for name, d in self.phases(after) if name == phase]


def run(
    tmp_path,
    name: str,
    *,
    start: str = DAY,
    setup: dict | None = None,
    change: dict | None = None,
    cloud: bool = False,
    prepare: Callable[[Store], None] | None = None,
    patch: Callable[[IntersectionApp], None] | None = None,
) -> Run:
    store = Store(tmp_path / f"{name}.db")
    if setup:
        store.params.update(setup, source="lab")
    if prepare:
        prepare(store)
    app = IntersectionApp(
        store,
        AppOptions(
            seed=3,
            start=start,
            hours=MINUTES / 60,
            model=None,
            cloud=cloud,
            mqtt=False,
            resume=False,
            flush_every_s=3600,
            final_sync_s=10,
            poll_s=0.0,
            retention_every_s=600,
            status_path=str(tmp_path / "s.json"),
        ),
    )
    result = Run(app, store)
    inner = app._tick_work
    world = app.board.world

    def work() -> None:
        t = app.control.elapsed
        if change and t == CHANGE_AT_S:
            store.params.update(change, source="lab")
        inner()
        if t % 60 == 0:
            if patch and t == 0 and cloud:
                app.cloud._build()
                patch(app)
            app._work()  # the workers' rounds, at a deterministic moment
            if app.cloud is not None:
                app.cloud.step()
        result.ticks.append(
            (
                t,
                app.controller.phase.name,
                bool(app.board.buzzer.is_active),
                world.car_light_state(),
                world.ped_light_state(),
            )
        )
        result.uploaded_before_end = app.health.uploaded

    app._tick_work = work
    try:
        app.run()
    finally:
        app.close()
    return result


_baselines: dict[tuple, Run] = {}


def baseline(tmp_path_factory, **kwargs: Any) -> Run:
    key = tuple(sorted((k, repr(v)) for k, v in kwargs.items()))
    if key not in _baselines:
        _baselines[key] = run(tmp_path_factory.mktemp("baseline"), "base", **kwargs)
    return _baselines[key]


# --- one check per parameter --------------------------------------------------------------------------------


def phase_length(phase: str, value: float) -> Callable:
    def check(tmp_path, tmp_path_factory, name):
        base = baseline(tmp_path_factory)
        changed = run(tmp_path, name, change={name: value})
        assert base.durations(phase) and set(base.durations(phase)) != {value}
        got = changed.durations(phase)
        assert got and set(got) == {value}, f"{name}={value}: {phase} lasted {sorted(set(got))}"

    return check


def differs(value: Any, *, start: str = DAY, setup: dict | None = None) -> Callable:
    """Policy parameters: after the change the signal plan is not what it would have been."""

    def check(tmp_path, tmp_path_factory, name):
        base = baseline(tmp_path_factory, start=start, setup=setup)
        changed = run(tmp_path, name, start=start, setup=setup, change={name: value})
        assert base.phases(0)[:2] == changed.phases(0)[:2], "same seed: the same plan before the change"
        assert changed.phases() != base.phases(), f"{name}={value!r} changed nothing the lamps showed"

    return check


def check_car_green_s(tmp_path, tmp_path_factory, name):
    setup = {"control_mode": "fixed"}
    base = baseline(tmp_path_factory, setup=setup)
    changed = run(tmp_path, name, setup=setup, change={"car_green_s": 35})
    assert set(base.durations("car_green")) == {20.0}
    assert set(changed.durations("car_green")) == {35.0}


def check_control_mode(tmp_path, tmp_path_factory, name):
    base = baseline(tmp_path_factory)
    changed = run(tmp_path, name, change={"control_mode": "fixed"})
    assert set(base.durations("car_green")) != {20.0}, "the adaptive plan should not look fixed"
    assert set(changed.durations("car_green")) == {20.0}
    assert len(changed.durations("ped_green")) >= len(changed.durations("car_green")) - 1  # served every cycle


def check_min_green_s(tmp_path, tmp_path_factory, name):
    base = baseline(tmp_path_factory)
    changed = run(tmp_path, name, change={"min_green_s": 40})
    assert min(base.durations("car_green")) < 40
    assert min(changed.durations("car_green")) >= 40


def check_night_mode(tmp_path, tmp_path_factory, name):
    base = baseline(tmp_path_factory, start=NIGHT)
    changed = run(tmp_path, name, start=NIGHT, change={"night_mode": "flashing_amber"})
    assert "night_flash" not in {p for _, p, *_ in base.ticks}
    flashing = [(car, ped) for t, phase, _, car, ped in changed.ticks if t > CHANGE_AT_S and phase == "night_flash"]
    assert flashing, "the night plan never started"
    assert {car for car, _ in flashing} == {"amber", "off"} and {ped for _, ped in flashing} == {"off"}


def check_buzzer_enabled(tmp_path, tmp_path_factory, name):
    base = baseline(tmp_path_factory)
    changed = run(tmp_path, name, change={"buzzer_enabled": False})
    ticking = [b for t, phase, b, *_ in base.ticks if t > CHANGE_AT_S and phase == "ped_green"]
    assert any(ticking) and not all(ticking), "the buzzer should tick (on, off) during the walk"
    assert not any(b for t, _, b, *_ in changed.ticks if t > CHANGE_AT_S)
    assert not any(b for t, phase, b, *_ in base.ticks if phase != "ped_green"), "buzzer only during the walk"


def check_sample_period_s(tmp_path, tmp_path_factory, name):
    changed = run(tmp_path, name, change={"sample_period_s": 10})
    ts = [r["ts"] for r in changed.store.readings.range("light")]
    t0 = ts[0]
    gaps = {round(b - a, 3) for a, b in zip(ts, ts[1:]) if a - t0 > CHANGE_AT_S + 1}
    before = {round(b - a, 3) for a, b in zip(ts, ts[1:]) if b - t0 < CHANGE_AT_S}
    assert before == {1.0} and gaps == {10.0}


def _old_sent_readings(store: Store, *, days: float, n: int) -> None:
    from datetime import datetime

    t0 = datetime.fromisoformat(DAY).replace(tzinfo=UTC).timestamp() - days * 86400
    store.readings.append_many([("old_sensor", float(i % 7), t0 + i) for i in range(n)], upload=False)


def check_retention_days(tmp_path, tmp_path_factory, name):
    prepare = functools.partial(_old_sent_readings, days=3, n=1200)
    base = run(tmp_path, "base", prepare=prepare)
    changed = run(tmp_path, name, prepare=prepare, change={"retention_days": 1})
    assert base.store.readings.count("old_sensor") == 1200
    assert changed.store.readings.count("old_sensor") == 20  # merged: one row per minute
    assert sum(r["n"] for r in changed.store.readings.range("old_sensor")) == 1200


def check_store_max_mb(tmp_path, tmp_path_factory, name):
    prepare = functools.partial(_old_sent_readings, days=2, n=60_000)
    base = run(tmp_path, "base", prepare=prepare)
    changed = run(tmp_path, name, prepare=prepare, change={"store_max_mb": 1})
    assert base.store.readings.count("old_sensor") == 60_000
    assert changed.store.readings.count("old_sensor") < 60_000
    assert changed.app.health.dropped.get("dropped_sent", 0) > 0
    assert (
        changed.store.readings.count() - changed.store.readings.count("old_sensor")
        == base.store.readings.count() - 60_000
    ), "the app's own unsent readings are kept"


def check_upload_batch_size(tmp_path, tmp_path_factory, name, cloud):
    base = run(tmp_path, "base", cloud=True)
    cloud.reset()
    changed = run(tmp_path, name, cloud=True, change={"upload_batch_size": 100})
    assert changed.app.health.upload_requests > 2 * base.app.health.upload_requests


def check_upload_max_age_s(tmp_path, tmp_path_factory, name, cloud):
    setup = {"sample_period_s": 10}
    base = run(tmp_path, "base", cloud=True, setup=setup)
    cloud.reset()
    changed = run(tmp_path, name, cloud=True, setup=setup, change={"upload_max_age_s": 60})
    assert base.uploaded_before_end == 0, "a part-full young batch waits"
    assert changed.uploaded_before_end > 0


def check_outbox_max_attempts(tmp_path, tmp_path_factory, name, cloud):
    from botocore.exceptions import ClientError

    def refuse(app):
        class Refusing:
            def __init__(self, real):
                self.real, self.bucket = real, real.bucket

            def group(self, items):
                return self.real.group(items)

            def ensure_bucket(self):
                return self

            def upload(self, items):
                raise ClientError(
                    {
                        "Error": {"Code": "InvalidArgument", "Message": "refused"},
                        "ResponseMetadata": {"HTTPStatusCode": 400},
                    },
                    "PutObject",
                )

        app.cloud.sync.uploader = Refusing(app.cloud.sync.uploader)

    setup = {"upload_max_age_s": 60, "sample_period_s": 30}
    base = run(tmp_path, "base", cloud=True, setup=setup, patch=refuse)
    changed = run(tmp_path, name, cloud=True, setup=setup, change={"outbox_max_attempts": 1}, patch=refuse)
    assert {d.attempts for d in base.store.outbox.dead()} == {5}
    assert {d.attempts for d in changed.store.outbox.dead()} >= {1}


def check_device_id(tmp_path, tmp_path_factory, name, cloud):
    from kit.cloud.uploader import Uploader

    changed = run(tmp_path, name, cloud=True, setup={"upload_max_age_s": 60}, change={"device_id": "kit-0002"})
    assert Uploader(device_id="kit-0001").keys() and Uploader(device_id="kit-0002").keys()
    assert changed.app.cloud.shadow.document()["state"]["reported"]["device_id"] == "kit-0002"


CHECKS: dict[str, Callable] = {
    "car_green_s": check_car_green_s,
    "car_amber_s": phase_length("car_amber", 5.0),
    "car_red_amber_s": phase_length("car_red_amber", 3.0),
    "all_red_s": phase_length("all_red", 4.0),
    "ped_green_s": phase_length("ped_green", 12.0),
    "ped_clear_s": phase_length("ped_clear", 9.0),
    "min_green_s": check_min_green_s,
    "max_green_s": differs(12.0),
    "ped_max_wait_s": differs(5.0),
    "night_min_green_s": differs(30.0, setup={"night_daylight": 1.0}),  # night all day: day traffic
    "queue_threshold_m": differs(0.3),
    "queue_hysteresis_m": differs(0.6),
    "night_daylight": differs(1.0),
    "control_mode": check_control_mode,
    "night_mode": check_night_mode,
    "buzzer_enabled": check_buzzer_enabled,
    "sample_period_s": check_sample_period_s,
    "retention_days": check_retention_days,
    "store_max_mb": check_store_max_mb,
    "upload_max_age_s": check_upload_max_age_s,
    "upload_batch_size": check_upload_batch_size,
    "outbox_max_attempts": check_outbox_max_attempts,
    "device_id": check_device_id,
}
CLOUD = {"upload_max_age_s", "upload_batch_size", "outbox_max_attempts", "device_id"}


def test_every_parameter_is_walked():
    missing = set(PARAMETERS) - set(CHECKS)
    assert not missing, f"parameters with no observed effect in the app: {sorted(missing)}; add a check here"
    assert not set(CHECKS) - set(PARAMETERS)


@pytest.mark.parametrize("name", sorted(set(PARAMETERS) - CLOUD))
def test_the_parameter_takes_effect_in_the_running_app(name, tmp_path, tmp_path_factory):
    CHECKS[name](tmp_path, tmp_path_factory, name)


@pytest.mark.parametrize("name", sorted(CLOUD))
def test_the_cloud_parameter_takes_effect_in_the_running_app(name, tmp_path, tmp_path_factory, cloud):
    CHECKS[name](tmp_path, tmp_path_factory, name, cloud)


def test_the_app_sends_at_most_10_requests_per_10000_readings_at_the_defaults(tmp_path, cloud):
    # An hour at the defaults: 5 sensors every second = 18 000 readings; uploads go by whole batches of 1000
    # (the oldest reading never reaches upload_max_age_s = 1 h within the run).
    store = Store(tmp_path / "kit.db")
    app = IntersectionApp(
        store,
        AppOptions(
            seed=3,
            start=DAY,
            hours=1.0,
            model=None,
            cloud=True,
            mqtt=False,
            resume=False,
            status_path=str(tmp_path / "s.json"),
        ),
    )
    try:
        summary = app.run()
    finally:
        app.close()
    readings = store.readings.count()
    assert readings == 18_000 and summary["outbox_depth"] == 0 and summary["uploaded"] == readings
    assert summary["upload_requests"] * 10_000 / readings <= 10, summary["upload_requests"]

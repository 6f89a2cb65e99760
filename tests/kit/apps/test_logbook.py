"""Storage cannot stop the lights: a full disk or a read-only store pauses logging (said in status), the lights keep
running, nothing is lost, and logging resumes when the store can be written again. Real SQLite file; the disk fills
through SQLite's own page limit (PRAGMA max_page_count gives SQLITE_FULL exactly as a full card does)."""

from __future__ import annotations

from kit.apps.intersection import AppOptions, IntersectionApp
from kit.store import Store

SECONDS = 1200


def _run_with(tmp_path, fault_on, fault_off):
    store = Store(tmp_path / "kit.db")
    app = IntersectionApp(
        store,
        AppOptions(
            seed=1,
            start="2026-10-15T08:00:00",
            hours=SECONDS / 3600,
            model=None,
            resume=False,
            flush_every_s=3600,
            status_path=str(tmp_path / "s.json"),
        ),
    )
    seen = {}
    inner = app._tick_work

    def work():
        t = app.control.elapsed
        if t == 300:
            fault_on(store)
        if t == 900:
            fault_off(store)
        inner()
        if t % 60 == 0:
            app._work()
            if 300 < t < 900:
                seen.setdefault("logging", app.health.logging)
                seen["phases"] = seen.get("phases", 0)
        seen.setdefault("greens", []).append(app.controller.phase.name)

    app._tick_work = work
    try:
        summary = app.run()
    finally:
        app.close()
    return store, app, summary, seen


def test_a_full_disk_pauses_logging_not_the_lights_and_loses_nothing(tmp_path):
    def fill(store):
        pages = store.db.execute("PRAGMA page_count").fetchone()[0]
        store.db.execute(f"PRAGMA max_page_count = {pages}")  # not one page more: the disk is full

    def free(store):
        store.db.execute("PRAGMA max_page_count = 1073741823")

    store, app, summary, seen = _run_with(tmp_path, fill, free)
    assert seen["logging"].startswith("PAUSED: disk full"), seen["logging"]
    assert summary["crossings"] > 5 and summary["vehicles_served"] > 100, "the lights kept running"
    assert app.health.logging == "ok", "logging resumed once space came back"
    assert store.readings.count() == 5 * SECONDS, "every reading taken while the disk was full was written after"


def test_a_read_only_store_pauses_logging_and_resumes(tmp_path):
    store, app, summary, seen = _run_with(
        tmp_path, lambda s: s.db.execute("PRAGMA query_only = ON"), lambda s: s.db.execute("PRAGMA query_only = OFF")
    )
    assert seen["logging"].startswith("PAUSED: store is read-only"), seen["logging"]
    assert app.health.logging == "ok" and store.readings.count() == 5 * SECONDS


def test_an_implausible_reading_is_refused_alone(tmp_path):
    from kit.apps.health import Health
    from kit.apps.logbook import Logbook

    store = Store(tmp_path / "kit.db")
    book = Logbook(store, store.params.live(), Health())
    good = [("pot", 0.5, 1792044000.0 + i) for i in range(10)]
    book.add(good[:5] + [("pot", 0.5, 1792044000000.0)] + good[5:])  # epoch milliseconds
    assert book.flush() == 10
    assert store.readings.count() == 10 and book.dropped["refused"] == 1

"""Readings per second: the kit's append_many vs raw sqlite3 executemany vs one commit per reading.

Run: .venv/bin/python bench/store.py [--rows N] [--seed S]. All three write the same seeded readings
into a fresh file with the same readings table and index. "raw executemany" uses the kit's settings
(WAL, synchronous=NORMAL) and the same batches, so the difference is the kit's checks and its outbox.
"per-row commits" is the naive logger: one commit per reading, with plain sqlite3.connect defaults
(rollback journal, synchronous=FULL) and, for fairness, also with the kit's WAL settings.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sqlite3
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from kit.store import Store  # noqa: E402
from kit.store.db import SCHEMA, split_statements  # noqa: E402

SENSORS = ("queue_m", "light", "road_temp_c", "pot", "cpu_temp_c")


def make_rows(n: int, seed: int) -> list[tuple[str, float, float]]:
    rng = random.Random(seed)
    t0 = 1792044000.0
    return [(SENSORS[i % len(SENSORS)], rng.uniform(0, 4), t0 + i * 0.2) for i in range(n)]


def raw_connection(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    for statement in split_statements(SCHEMA):
        conn.execute(statement)
    return conn


def bench_kit(path: str, rows: list, batch: int, upload: bool) -> float:
    store = Store(path)
    start = time.perf_counter()
    for i in range(0, len(rows), batch):
        store.readings.append_many(rows[i : i + batch], upload=upload)
    elapsed = time.perf_counter() - start
    assert store.readings.count() == len(rows)
    store.close()
    return len(rows) / elapsed


def bench_raw(path: str, rows: list, batch: int) -> float:
    conn = raw_connection(path)
    data = [(s, ts, v) for s, v, ts in rows]
    start = time.perf_counter()
    for i in range(0, len(data), batch):
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO readings (sensor, ts, value) VALUES (?, ?, ?)", data[i : i + batch])
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return len(rows) / elapsed


def bench_per_row(path: str, rows: list, *, wal: bool, budget_s: float) -> float:
    """One commit per reading: plain sqlite3.connect defaults (rollback journal, synchronous=FULL), or WAL."""
    conn = raw_connection(path) if wal else sqlite3.connect(path)
    if not wal:
        for statement in split_statements(SCHEMA):
            conn.execute(statement)
        conn.commit()
    start = time.perf_counter()
    done = 0
    for s, v, ts in rows:  # stops after budget_s: with an fsync per commit this can be a few hundred per second
        conn.execute("INSERT INTO readings (sensor, ts, value) VALUES (?, ?, ?)", (s, ts, v))
        conn.commit()
        done += 1
        if done % 50 == 0 and time.perf_counter() - start > budget_s:
            break
    elapsed = time.perf_counter() - start
    conn.close()
    return done / elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="readings per run (default 100000)")
    parser.add_argument("--batch", type=int, default=1000, help="readings per transaction (default 1000)")
    parser.add_argument("--per-row-seconds", type=float, default=2.0, help="time budget of each per-row run")
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs for the batched methods")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rows = make_rows(args.rows, args.seed)
    folder = tempfile.mkdtemp(prefix="kit-bench-")
    batched = {
        "raw executemany": lambda p: bench_raw(p, rows, args.batch),
        "kit append_many": lambda p: bench_kit(p, rows, args.batch, upload=True),
        "kit append_many (upload=False)": lambda p: bench_kit(p, rows, args.batch, upload=False),
    }
    # Interleaved rounds, best of each, every run on a fresh file: load from other work on the machine
    # then hits all methods alike.
    results = {name: 0.0 for name in batched}
    for k in range(args.repeat):
        for i, (name, run) in enumerate(batched.items()):
            results[name] = max(results[name], run(os.path.join(folder, f"batched{i}_{k}.db")))
    results.update(
        {
            "per-row commits (sqlite3 defaults)": bench_per_row(
                os.path.join(folder, "naive.db"), rows, wal=False, budget_s=args.per_row_seconds
            ),
            "per-row commits (WAL, NORMAL)": bench_per_row(
                os.path.join(folder, "per_row.db"), rows, wal=True, budget_s=args.per_row_seconds
            ),
        }
    )
    raw, per_row = results["raw executemany"], results["per-row commits (sqlite3 defaults)"]
    print(
        f"{args.rows} readings, {args.batch} per transaction, best of {args.repeat} "
        f"(per-row runs: {args.per_row_seconds:g} s each), seed {args.seed}"
    )
    print(f"{'method':36} {'readings/s':>12} {'x raw':>8} {'x per-row':>10}")
    for name, rate in results.items():
        print(f"{name:36} {rate:12,.0f} {rate / raw:8.2f} {rate / per_row:10.1f}")
    shutil.rmtree(folder, ignore_errors=True)
    kit = results["kit append_many"]
    print(
        f"goal: kit >= 0.5x raw ({'met' if kit >= 0.5 * raw else 'NOT met'}: {kit / raw:.2f}x), "
        f">= 20x naive per-row commits ({'met' if kit >= 20 * per_row else 'NOT met'}: {kit / per_row:.0f}x; "
        f"{kit / results['per-row commits (WAL, NORMAL)']:.0f}x per-row commits with the kit's WAL settings)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

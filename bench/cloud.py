"""Requests and bytes sent per 10 000 readings: the kit's batched sync vs one request per reading.

One run against the local endpoint (moto on 127.0.0.1). Every HTTP request boto3 sends is counted
at the wire (botocore's ``before-send`` event), with its body and header bytes. Goal: at most 10
requests per 10 000 readings.

    .venv/bin/python bench/cloud.py [--readings 10000]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

import kit.cloud
from kit.cloud.sync import Sync
from kit.cloud.uploader import Uploader
from kit.store import Store

DAY = 1792044000.0  # 2026-10-15T06:00:00Z


class Meter:
    """Counts requests and bytes a boto3 client sends."""

    def __init__(self, client):
        self.requests = 0
        self.bytes = 0
        client.meta.events.register("before-send.*.*", self._count)

    def _count(self, request, **_):
        body = request.body or b""
        size = len(body) if isinstance(body, (bytes, bytearray, str)) else int(request.headers.get("Content-Length", 0))
        headers = sum(len(k) + len(str(v)) + 4 for k, v in request.headers.items())
        self.requests += 1
        self.bytes += size + headers + len(request.method) + len(request.url) + 12


def readings(store: Store, n: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    sensors = ["distance", "light", "road_temp", "pot", "cpu_temp"]
    values = rng.normal(10, 3, n).round(3)
    store.readings.append_many([(sensors[i % 5], float(values[i]), DAY + i * 0.2) for i in range(n)])


def batched(n: int, batch: int | None, folder: Path) -> dict:
    store = Store(folder / f"batched-{batch}.db")
    readings(store, n)
    if batch:
        store.params.set("upload_batch_size", batch)
    up = Uploader(device_id=f"bench-{batch or 'default'}").ensure_bucket()
    meter = Meter(up.s3)
    t0 = time.perf_counter()
    report = Sync(store, up).drain()
    result = {
        "requests": meter.requests,
        "bytes": meter.bytes,
        "seconds": time.perf_counter() - t0,
        "batch": store.params.get("upload_batch_size"),
        "readings": n,
    }
    assert report.depth == 0 and len(up.read_all()) == n, "every reading must be in S3"
    return result


def one_per_reading(n: int, folder: Path) -> dict:
    store = Store(folder / "single.db")
    readings(store, n)
    s3 = kit.cloud.client("s3")
    up = Uploader(s3=s3, device_id="bench-single").ensure_bucket()
    meter = Meter(s3)
    t0 = time.perf_counter()
    while items := store.outbox.lease(limit=500):
        for item in items:  # the naive way: one PUT of plain JSON per reading
            s3.put_object(Bucket=up.bucket, Key=f"single/{item.id}.json", Body=json.dumps(item.payload).encode())
        store.outbox.ack(items)
    return {
        "requests": meter.requests,
        "bytes": meter.bytes,
        "seconds": time.perf_counter() - t0,
        "batch": 1,
        "readings": n,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readings", type=int, default=10_000)
    parser.add_argument(
        "--baseline-readings",
        type=int,
        default=2_000,
        help="readings sent one per request (slow: ~20 ms each); figures are scaled to 10 000",
    )
    args = parser.parse_args()
    n = args.readings
    folder = Path(tempfile.mkdtemp(prefix="kit-bench-cloud-"))
    with kit.cloud.LocalCloud():
        rows = [("one request per reading", one_per_reading(args.baseline_readings, folder))]
        for batch in (None, 500, 2000):
            label = "kit sync, default batch" if batch is None else f"kit sync, batch {batch}"
            rows.append((label, batched(n, batch, folder)))
    for r in (row for _, row in rows):  # everything per 10 000 readings
        scale = 10_000 / r["readings"]
        r.update(requests=r["requests"] * scale, bytes=r["bytes"] * scale, seconds=r["seconds"] * scale)
    base = rows[0][1]
    print(
        f"local endpoint (moto); batched: {n} readings sent; one-per-reading: {args.baseline_readings} sent; "
        "all figures per 10 000 readings"
    )
    print(
        f"{'method':<26}{'batch':>7}{'requests':>10}{'bytes sent':>13}{'fewer req.':>12}{'fewer bytes':>12}{'seconds':>9}"
    )
    for label, r in rows:
        print(
            f"{label:<26}{r['batch']:>7}{r['requests']:>10.0f}{r['bytes']:>13,.0f}"
            f"{base['requests'] / r['requests']:>11.0f}x{base['bytes'] / r['bytes']:>11.1f}x{r['seconds']:>9.2f}"
        )
    default = rows[1][1]
    print(
        f"goal <= 10 requests per 10 000 readings: the default batch ({default['batch']}) "
        f"{'meets' if default['requests'] <= 10 else 'misses'} it with {default['requests']:.0f}; "
        f"upload_batch_size=500 would give {rows[2][1]['requests']:.0f}"
    )


if __name__ == "__main__":
    main()

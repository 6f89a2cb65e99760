"""Grades lab 04 (edge to cloud): S3 batches, the shadow's desired state, MQTT telemetry, draining the outbox.

Each ``_observe_*`` function runs in the student's kernel and only gathers values (the local AWS endpoint and
Mosquitto run there too); each test judges them here, in the grader's process, on inputs drawn from
``grading_rng`` (fresh for every grading run). What S3 received comes back as the object's raw bytes and is
unpacked here; the expected outbox items come from the grader's own store fed the same readings.
"""

import base64
import gzip
import json
import math

import pytest

pytestmark = pytest.mark.notebook("04_cloud")

DAY = 86_400


def _device(rng):
    return f"kit-{rng.randint(0, 9999):04d}"


def _bucket(rng, what):
    return f"grading-{what}-{rng.randint(0, 10**6)}"


def _observe_upload_batch(bucket, device, readings, already_sent):
    import base64

    import kit.cloud
    from kit.store import Store

    with kit.cloud.LocalCloud(activate=False) as cloud, Store(":memory:") as store:
        cloud.reset()  # the emulator's state is per process: start from nothing
        s3 = cloud.client("s3")
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        store.readings.append_many([tuple(r) for r in readings])
        if already_sent:
            store.outbox.ack(store.outbox.lease(limit=already_sent))
        items = store.outbox.lease(limit=100)
        key = upload_batch(s3, bucket, device, items)
        listed = s3.list_objects_v2(Bucket=bucket)
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read() if listed["KeyCount"] == 1 else b""
        again = upload_batch(s3, bucket, device, items)
        count = s3.list_objects_v2(Bucket=bucket)["KeyCount"]
    return {"key": key, "body": base64.b64encode(body).decode()[:1_000_000], "again": again, "objects": count}


def _grader_items(readings, already_sent):
    """The outbox items the kit's store makes of these readings, leased in the grader's own process."""
    from kit.store import Store

    with Store(":memory:") as store:
        store.readings.append_many([tuple(r) for r in readings])
        if already_sent:
            store.outbox.ack(store.outbox.lease(limit=already_sent))
        return store.outbox.lease(limit=100)


def _lines(body_b64):
    """The JSON lines of a gzipped object, unpacked here (whatever the notebook's json or gzip do)."""
    try:
        text = gzip.decompress(base64.b64decode(body_b64)).decode()
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    except (OSError, ValueError, EOFError) as err:
        raise AssertionError(f"the object is not gzipped JSON lines: {type(err).__name__}: {err}") from None


@pytest.mark.points(3)
def test_upload_batch_uses_an_idempotent_key_and_gzipped_json_lines(lab, grading_rng):
    from datetime import datetime, timezone

    # a batch whose first reading is just before midnight UTC: the first reading decides the date
    day = datetime(2026, 1, 1, tzinfo=timezone.utc).timestamp() + grading_rng.randint(0, 364) * DAY
    t0 = day + DAY - 1 - grading_rng.randint(0, 20)
    already_sent = grading_rng.randint(0, 3)
    readings = [
        [
            grading_rng.choice(["pot", "light", "queue_m"]),
            round(grading_rng.uniform(0, 2), 4),
            t0 + 7 * (i - already_sent),
        ]
        for i in range(already_sent + grading_rng.randint(3, 8))
    ]
    device, bucket = _device(grading_rng), _bucket(grading_rng, "04")
    got = lab.observe(_observe_upload_batch, bucket, device, readings, already_sent)
    items = _grader_items(readings, already_sent)
    date = datetime.fromtimestamp(items[0].payload["ts"], tz=timezone.utc).strftime("%Y-%m-%d")
    expected = f"readings/{device}/{date}/{items[0].id:012d}.jsonl.gz"
    assert got["key"] == expected, f"expected the key {expected!r}, got {got['key']!r}"
    assert _lines(got["body"]) == [{"outbox_id": i.id, **i.payload} for i in items], (
        "one JSON line per item: {'outbox_id': item.id, **item.payload}, in order"
    )
    assert got["again"] == expected, f"a resend must use the same key, got {got['again']!r}"
    assert got["objects"] == 1, f"a resend must not add an object: {got['objects']} objects in the bucket"


def _observe_read_batch(bucket, key, text):
    import gzip

    import kit.cloud

    with kit.cloud.LocalCloud(activate=False) as cloud:
        cloud.reset()
        s3 = cloud.client("s3")
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        s3.put_object(Bucket=bucket, Key=key, Body=gzip.compress(text.encode()))
        return read_batch(s3, bucket, key)


@pytest.mark.points(2)
def test_read_batch_returns_the_rows(lab, grading_rng):
    rows = []
    for i in range(grading_rng.randint(2, 12)):
        row = {"outbox_id": grading_rng.randint(1, 10**6), "value": round(grading_rng.uniform(-50, 50), 5)}
        if grading_rng.random() < 0.7:
            row |= {"sensor": grading_rng.choice(["light", "pot", "queue_m"]), "ts": 1.8e9 + i}
        rows.append(row)
    key = f"readings/{_device(grading_rng)}/batch-{grading_rng.randint(0, 999)}.jsonl.gz"
    text = "".join(json.dumps(r) + "\n" for r in rows)
    got = lab.observe(_observe_read_batch, _bucket(grading_rng, "04r"), key, text)
    assert got == rows, f"expected {rows!r}, got {got!r}"


def _observe_handle_desired(bad, unknown, good):
    from kit.store import Store

    out = {"bad": []}
    with Store(":memory:") as store:
        for request in bad:
            before = store.params.all()
            reply = handle_desired(store, request)
            out["bad"].append({"reply": reply, "changed": store.params.all() != before})
        out["unknown"] = handle_desired(store, {unknown: 1})
        out["good"] = handle_desired(store, good)
        out["stored"] = store.params.all()
        out["sources"] = sorted({h["source"] for h in store.params.history()})
    return out


@pytest.mark.points(3)
def test_handle_desired_validates_applies_and_reports(lab, grading_rng):
    from kit.store import Store

    unknown = grading_rng.choice(["warp", "turbo", "speed", "green"]) + f"_{grading_rng.randint(1, 99)}"
    low = grading_rng.randint(20, 60)
    bad = [
        {"car_green_s": grading_rng.choice(["long", "30s", None])},
        {"car_green_s": grading_rng.randint(5, 120), unknown: grading_rng.randint(1, 9)},
        {"min_green_s": low, "max_green_s": low - grading_rng.randint(1, 10)},  # each valid, together not
        {"car_amber_s": grading_rng.choice([0.5, 1, 7, 60])},
    ]
    good = {"car_green_s": grading_rng.randint(5, 120), "ped_green_s": grading_rng.randint(4, 30)}
    got = lab.observe(_observe_handle_desired, bad, unknown, good)
    with Store(":memory:") as store:  # the grader's own store: what applying `good` reports
        assert all(store.params.validate(request) for request in bad)
        store.params.update(good, source="cloud")
        expected = store.params.all()
    assert len(got["bad"]) == len(bad)
    for request, answer in zip(bad, got["bad"], strict=True):
        reply = answer["reply"]
        rejected = reply.get("rejected") if isinstance(reply, dict) else None
        assert isinstance(rejected, dict) and rejected, f"{request!r} must be rejected, got {reply!r}"
        assert not answer["changed"], f"a rejected request {request!r} must change nothing"
    rejected = got["unknown"].get("rejected") if isinstance(got["unknown"], dict) else None
    assert isinstance(rejected, dict) and unknown in rejected, f"name the unknown parameter {unknown!r}: {rejected!r}"
    report = got["good"]
    assert isinstance(report, dict) and report.get("rejected", "missing") is None, (
        f"report rejected=None when everything was applied, got {report!r}"
    )
    assert {k: v for k, v in report.items() if k != "rejected"} == expected, (
        f"after applying {good}, report every parameter's value: expected {expected}, got {report}"
    )
    assert got["stored"] == expected, f"{good} must be applied to the store"
    assert got["sources"] == ["cloud"], f"apply with source='cloud' (history sources: {got['sources']})"


def _observe_publish_readings(device, rows):
    class Info:
        def __init__(self, mid):
            self.mid = mid

    class Recorder:
        def __init__(self):
            self.calls = []

        def publish(self, topic, payload=None, qos=0, retain=False, properties=None):
            self.calls.append((topic, payload, qos))
            return Info(100 + 7 * len(self.calls))

    rec = Recorder()
    mids = publish_readings(rec, device, [tuple(r) for r in rows])
    calls = [
        [topic, payload.decode() if isinstance(payload, (bytes, bytearray)) else payload, qos]
        for topic, payload, qos in rec.calls
    ]
    return {"calls": calls, "mids": list(mids) if mids is not None else None}


def _observe_publish_live(device, values):
    import paho.mqtt.client as mqtt

    import kit.cloud.broker
    from kit.cloud.mqtt import Subscriber

    # a broker slow to start on a busy grading machine is not the student's failure: wait for it up to 60 s
    with kit.cloud.broker.Broker().start(timeout=60) as b, Subscriber(b.host, b.port, client_id="grader") as sub:
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="grader-pub")
        c.connect(b.host, b.port)
        c.loop_start()
        try:
            publish_readings(c, device, [("pot", v, float(i)) for i, v in enumerate(values)])
            sub.wait_for(len(values), timeout=30)
        finally:
            c.loop_stop()
            c.disconnect()
        return {"messages": list(sub.messages), "topics": sorted(set(sub.topics))}


@pytest.mark.points(2)
def test_publish_readings_sends_json_at_qos1_on_the_telemetry_topic(lab, grading_rng):
    device = _device(grading_rng)
    rows = [
        [grading_rng.choice(["queue_m", "light", "pot"]), round(grading_rng.uniform(0, 3), 4), 1.8e9 + i]
        for i in range(grading_rng.randint(2, 6))
    ]
    got = lab.observe(_observe_publish_readings, device, rows)
    calls = got["calls"]
    assert len(calls) == len(rows), f"one publish per reading: {len(rows)} readings, {len(calls)} publishes"
    topic = f"kit/{device}/telemetry"
    assert all(c[0] == topic for c in calls), f"topic: expected {topic!r}, got {calls[0][0]!r}"
    assert all(c[2] == 1 for c in calls), f"publish at qos=1, got {[c[2] for c in calls]}"
    try:
        payloads = [json.loads(c[1]) for c in calls]
    except (TypeError, ValueError):
        raise AssertionError(f"each payload is a JSON text, got {calls[0][1]!r}") from None
    expected = [{"sensor": s, "value": v, "ts": ts} for s, v, ts in rows]
    assert payloads == expected, f"payloads: expected {expected}, got {payloads}"
    assert got["mids"] == [100 + 7 * (i + 1) for i in range(len(rows))], (
        f"return the message ids (info.mid), got {got['mids']!r}"
    )
    values = [round(grading_rng.uniform(-5, 5), 3) for _ in range(5)]
    live = lab.observe(_observe_publish_live, device, values, timeout=120)  # a busy machine: see the broker
    received = sorted(m.get("value") for m in live["messages"] if isinstance(m, dict))
    assert received == sorted(values), (
        f"through a real broker the subscriber should get the values {sorted(values)}, got {received}"
    )
    assert live["topics"] == [topic], f"messages should arrive on {topic!r}, got {live['topics']}"


def _observe_drain(bucket, device, values, t0, batch_size):
    import kit.cloud
    from kit.cloud.uploader import Uploader
    from kit.store import Store

    with kit.cloud.LocalCloud(activate=False) as cloud, Store(":memory:") as store:
        cloud.reset()
        up = Uploader(s3=cloud.client("s3"), bucket=bucket, device_id=device).ensure_bucket()
        store.readings.append_many([("pot", v, t0 + i) for i, v in enumerate(values)])
        depths = drain(store, up, batch_size)
        return {
            "depths": list(depths) if depths is not None else None,
            "in_s3": sorted(r["value"] for r in up.read_all()),
            "left": store.outbox.depth(),
            "leasable": len(store.outbox.lease()),
        }


@pytest.mark.points(3)
def test_drain_sends_the_outbox_in_batches(lab, grading_rng):
    n, batch_size = grading_rng.randint(120, 320), grading_rng.randint(30, 110)
    values = [round(grading_rng.uniform(0, 100), 3) for _ in range(n)]
    t0 = 1.79e9 + grading_rng.randint(0, 10**6)
    got = lab.observe(_observe_drain, _bucket(grading_rng, "04d"), _device(grading_rng), values, t0, batch_size)
    expected = [max(0, n - batch_size * (i + 1)) for i in range(math.ceil(n / batch_size))]
    assert got["depths"] == expected, (
        f"{n} items in batches of {batch_size}: depths {expected} after each batch, got {got['depths']!r}"
    )
    assert got["in_s3"] == sorted(values), "every reading once in S3"
    assert got["left"] == 0 and got["leasable"] == 0, "ack what was uploaded: the outbox ends empty"

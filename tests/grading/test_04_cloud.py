"""Grades lab 04 (edge to cloud): S3 batches, the shadow's desired state, MQTT telemetry, draining the outbox."""

import pytest

pytestmark = pytest.mark.notebook("04_cloud")


def _check_upload_batch():
    import gzip
    import json

    import kit.cloud
    from kit.store import Store

    t0 = 1792108799.0  # 2026-10-15T23:59:59Z: the batch's first reading decides the date
    with kit.cloud.LocalCloud(activate=False) as cloud, Store(":memory:") as store:
        cloud.reset()  # the emulator's state is per process: start from nothing
        s3 = cloud.client("s3")
        s3.create_bucket(Bucket="grading-04", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        store.readings.append_many([("pot", 0.5, t0 - 1), ("pot", 0.25, t0), ("pot", 0.75, t0 + 2)])
        store.outbox.ack(store.outbox.lease(limit=1))  # outbox id 1 already sent
        items = store.outbox.lease(limit=10)
        key = upload_batch(s3, "grading-04", "kit-0099", items)
        expected = f"readings/kit-0099/2026-10-15/{items[0].id:012d}.jsonl.gz"
        assert key == expected, f"expected the key {expected!r}, got {key!r}"
        body = s3.get_object(Bucket="grading-04", Key=key)["Body"].read()
        lines = gzip.decompress(body).decode().splitlines()
        assert [json.loads(line) for line in lines] == [{"outbox_id": i.id, **i.payload} for i in items], (
            "one JSON line per item: {'outbox_id': item.id, **item.payload}, in order"
        )
        assert upload_batch(s3, "grading-04", "kit-0099", items) == key, "a resend must use the same key"
        assert s3.list_objects_v2(Bucket="grading-04")["KeyCount"] == 1, "a resend must not add an object"


@pytest.mark.points(3)
def test_upload_batch_uses_an_idempotent_key_and_gzipped_json_lines(lab):
    lab.run(_check_upload_batch)


def _check_read_batch():
    import gzip
    import json

    import kit.cloud

    rows = [{"outbox_id": 7, "sensor": "light", "value": 0.3, "ts": 1.0}, {"outbox_id": 8, "value": 2}]
    with kit.cloud.LocalCloud(activate=False) as cloud:
        cloud.reset()
        s3 = cloud.client("s3")
        s3.create_bucket(Bucket="grading-04r", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        text = "".join(json.dumps(r) + "\n" for r in rows)
        s3.put_object(Bucket="grading-04r", Key="k.jsonl.gz", Body=gzip.compress(text.encode()))
        got = read_batch(s3, "grading-04r", "k.jsonl.gz")
        assert got == rows, f"expected {rows!r}, got {got!r}"


@pytest.mark.points(2)
def test_read_batch_returns_the_rows(lab):
    lab.run(_check_read_batch)


def _check_handle_desired():
    from kit.store import Store

    with Store(":memory:") as store:
        for bad in ({"car_green_s": "long"}, {"car_green_s": 30, "warp": 9}, {"min_green_s": 50, "max_green_s": 20}):
            before = store.params.all()
            out = handle_desired(store, bad)
            assert isinstance(out.get("rejected"), dict) and out["rejected"], f"{bad!r} must be rejected, got {out!r}"
            assert store.params.all() == before, f"a rejected request {bad!r} must change nothing"
        assert "warp" in handle_desired(store, {"warp": 1})["rejected"], "name the unknown parameter"
        out = handle_desired(store, {"car_green_s": 33, "ped_green_s": 11})
        assert out.get("rejected", "missing") is None, "report rejected=None when everything was applied"
        assert out["car_green_s"] == 33.0 and out["car_amber_s"] == 3.0, "report every parameter"
        assert store.params.get("ped_green_s") == 11.0
        assert {h["source"] for h in store.params.history()} == {"cloud"}, "apply with source='cloud'"


@pytest.mark.points(3)
def test_handle_desired_validates_applies_and_reports(lab):
    lab.run(_check_handle_desired)


def _check_publish_readings():
    import json

    class Info:
        def __init__(self, mid):
            self.mid = mid

    class Recorder:
        def __init__(self):
            self.calls = []

        def publish(self, topic, payload=None, qos=0, retain=False, properties=None):
            self.calls.append((topic, payload, qos))
            return Info(100 + len(self.calls))

    rec = Recorder()
    rows = [("queue_m", 1.5, 10.0), ("light", 0.25, 11.0)]
    mids = publish_readings(rec, "kit-0042", rows)
    assert len(rec.calls) == 2, f"one publish per reading, got {len(rec.calls)}"
    assert {c[0] for c in rec.calls} == {"kit/kit-0042/telemetry"}, f"topic: {rec.calls[0][0]!r}"
    assert all(c[2] == 1 for c in rec.calls), "publish at qos=1"
    assert [json.loads(c[1]) for c in rec.calls] == [
        {"sensor": "queue_m", "value": 1.5, "ts": 10.0},
        {"sensor": "light", "value": 0.25, "ts": 11.0},
    ]
    assert list(mids) == [101, 102], f"return the message ids (info.mid), got {mids!r}"


def _check_publish_readings_live():
    import paho.mqtt.client as mqtt

    import kit.cloud.broker
    from kit.cloud.mqtt import Subscriber

    with kit.cloud.broker.Broker() as b, Subscriber(b.host, b.port, client_id="grader") as sub:
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="grader-pub")
        c.connect(b.host, b.port)
        c.loop_start()
        try:
            publish_readings(c, "kit-7", [("pot", float(i), float(i)) for i in range(5)])
            assert sub.wait_for(5, timeout=10), f"the subscriber got {len(sub.messages)} of 5 messages"
        finally:
            c.loop_stop()
            c.disconnect()
        assert sorted(m["value"] for m in sub.messages) == [0.0, 1.0, 2.0, 3.0, 4.0]


@pytest.mark.points(2)
def test_publish_readings_sends_json_at_qos1_on_the_telemetry_topic(lab):
    lab.run(_check_publish_readings)
    lab.run(_check_publish_readings_live)


def _check_drain():
    import kit.cloud
    from kit.cloud.uploader import Uploader
    from kit.store import Store

    with kit.cloud.LocalCloud(activate=False) as cloud, Store(":memory:") as store:
        cloud.reset()
        up = Uploader(s3=cloud.client("s3"), bucket="grading-04d", device_id="kit-0077").ensure_bucket()
        store.readings.append_many([("pot", float(i), 1792044000.0 + i) for i in range(250)])
        depths = drain(store, up, 100)
        assert list(depths) == [150, 50, 0], f"250 items in batches of 100: depths [150, 50, 0], got {depths!r}"
        rows = up.read_all()
        assert sorted(r["value"] for r in rows) == [float(i) for i in range(250)], "every reading once in S3"
        assert store.outbox.depth() == 0 and store.outbox.lease() == [], "ack what was uploaded"


@pytest.mark.points(3)
def test_drain_sends_the_outbox_in_batches(lab):
    lab.run(_check_drain)

from __future__ import annotations

import gzip

from kit.cloud.uploader import Uploader, decode, encode

DAY = 1792044000.0  # 2026-10-15T06:00:00Z


def _rows(n, start=0):
    return [("distance", 1.0 + i / 100, DAY + i) for i in range(start, start + n)]


def test_encoding_is_deterministic_gzip_json_lines():
    rows = [{"outbox_id": 1, "value": 2.5}, {"outbox_id": 2, "value": 3.5}]
    assert encode(rows) == encode(rows), "same rows must give the same bytes (same ETag)"
    assert gzip.decompress(encode(rows)).decode().count("\n") == 2
    assert decode(encode(rows)) == rows


def test_batch_goes_up_and_comes_back_under_a_device_date_sequence_key(cloud, store):
    store.readings.append_many(_rows(50))
    up = Uploader(device_id="kit-0042").ensure_bucket()
    items = store.outbox.lease(limit=500)
    [done] = up.upload(items)
    assert done.key == f"readings/kit-0042/2026-10-15/{items[0].id:012d}.jsonl.gz"
    assert done.ids == tuple(i.id for i in items) and done.bytes > 0
    back = up.read_all()
    assert [r["reading_id"] for r in back] == [r["id"] for r in store.readings.range("distance")]
    assert back[0] == {"outbox_id": items[0].id, **items[0].payload}


def test_resending_a_batch_overwrites_the_same_object(cloud, store):
    store.readings.append_many(_rows(30))
    up = Uploader().ensure_bucket()
    items = store.outbox.lease(limit=20)
    first = up.upload(items)
    again = up.upload(items)  # e.g. the ack was lost: the same batch goes again
    bigger = up.upload(items + store.outbox.lease(limit=20))  # or a bigger batch from the same oldest item
    assert first[0].key == again[0].key == bigger[0].key
    assert len(up.keys()) == 1 and len(up.read_all()) == 30


def test_a_batch_across_midnight_is_split_by_date(cloud, store):
    store.readings.append_many([("pot", 0.1, DAY + 17.9 * 3600), ("pot", 0.2, DAY + 18.1 * 3600)])
    up = Uploader().ensure_bucket()
    done = up.upload(store.outbox.lease())
    assert [d.key.split("/")[2] for d in done] == ["2026-10-15", "2026-10-16"]


def test_an_object_is_the_same_gzip_bytes_to_every_http_client(cloud, store):
    """boto3, `requests` and `curl --compressed` all get the gzip file (no Content-Encoding to undo)."""
    import shutil
    import subprocess

    import requests

    store.readings.append_many(_rows(20))
    up = Uploader(device_id="kit-0042").ensure_bucket()
    [done] = up.upload(store.outbox.lease(limit=100))
    via_boto3 = up.s3.get_object(Bucket=up.bucket, Key=done.key)
    assert via_boto3["ContentType"] == "application/gzip" and "ContentEncoding" not in via_boto3
    raw = via_boto3["Body"].read()
    url = up.s3.generate_presigned_url("get_object", Params={"Bucket": up.bucket, "Key": done.key}, ExpiresIn=300)
    response = requests.get(url, timeout=10)  # requests decodes any Content-Encoding it is given
    assert response.status_code == 200 and "Content-Encoding" not in response.headers
    assert response.content == raw and gzip.decompress(response.content).count(b"\n") == 20
    curl = shutil.which("curl")
    if curl:
        out = subprocess.run([curl, "--silent", "--fail", "--compressed", url], capture_output=True, timeout=30)
        assert out.returncode == 0 and out.stdout == raw

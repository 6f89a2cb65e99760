from __future__ import annotations

import time

import pytest

from kit.cloud import config
from kit.cloud.emulator import LocalCloud, reachable


def test_a_stopped_endpoint_refuses_at_once_and_keeps_its_state_when_back(cloud):
    from botocore.exceptions import EndpointConnectionError

    s3 = cloud.client("s3")
    s3.create_bucket(Bucket="kit-state", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    port = cloud.port
    cloud.stop()
    assert not reachable(cloud.endpoint_url)
    t0 = time.monotonic()
    with pytest.raises(EndpointConnectionError):
        s3.list_buckets()
    assert time.monotonic() - t0 < 2, "a stopped endpoint must fail fast, not hang"
    cloud.start()
    assert cloud.port == port and reachable(cloud.endpoint_url)
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["kit-state"]


def test_context_manager_activates_and_deactivates_the_default():
    with LocalCloud() as cloud:
        assert config.current().endpoint_url == cloud.endpoint_url
        assert cloud.endpoint_url.startswith("http://127.0.0.1:")
        assert config.client("s3").list_buckets()["ResponseMetadata"]["HTTPStatusCode"] == 200
        assert "running" in repr(cloud)
    assert config.current().endpoint_url == config.DEFAULT_ENDPOINT

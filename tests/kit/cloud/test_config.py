from __future__ import annotations

import pytest

from kit.cloud import config
from kit.cloud.config import CloudConfig, CloudConfigError


def test_defaults_point_at_the_local_endpoint():
    cfg = CloudConfig.from_env({})
    assert cfg.local and cfg.endpoint_url == config.DEFAULT_ENDPOINT and cfg.region == config.LOCAL_REGION
    assert (cfg.bucket, cfg.device_id, cfg.mqtt_port) == ("kit-telemetry", "kit-0001", 1883)


def test_aws_mode_takes_everything_from_the_standard_variables():
    cfg = CloudConfig.from_env(
        {
            "KIT_CLOUD": "aws",
            "AWS_REGION": "eu-central-1",
            "AWS_PROFILE": "kit",
            "KIT_BUCKET": "my-kit",
            "KIT_MQTT_CERT": "/etc/kit/device.pem.crt",
        }
    )
    assert not cfg.local and cfg.endpoint_url is None
    assert (cfg.region, cfg.profile, cfg.bucket, cfg.mqtt_port) == ("eu-central-1", "kit", "my-kit", 8883)


def test_unknown_mode_and_bad_port_say_what_to_use():
    with pytest.raises(CloudConfigError, match="KIT_CLOUD='azure'.*local"):
        CloudConfig.from_env({"KIT_CLOUD": "azure"})
    with pytest.raises(CloudConfigError, match="KIT_MQTT_PORT='x'"):
        CloudConfig.from_env({"KIT_MQTT_PORT": "x"})
    for bad in ("Bad_Bucket!", "ab", "-kit", "kit-", "x" * 64):
        with pytest.raises(CloudConfigError, match="is not an S3 bucket name"):
            CloudConfig.from_env({"KIT_BUCKET": bad})
    assert CloudConfig.from_env({"KIT_BUCKET": "my-kit.telemetry-2"}).bucket == "my-kit.telemetry-2"


def test_nothing_secret_is_shown_and_local_clients_never_get_real_keys(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAREALKEY123")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "verysecretvalue")
    cfg = CloudConfig.from_env()
    shown = repr(cfg) + str(cfg.describe())
    assert "verysecret" not in shown and "AKIAREAL" not in shown
    creds = config.session(cfg).get_credentials()
    assert creds.access_key == "kit-local", "the local emulator must not receive the user's AWS keys"


def test_clients_are_plain_boto3_clients_on_the_configured_endpoint():
    import botocore.client

    cfg = CloudConfig(endpoint_url="http://127.0.0.1:1")
    s3 = config.client("s3", cfg)
    assert isinstance(s3, botocore.client.BaseClient)
    assert s3.meta.endpoint_url == "http://127.0.0.1:1" and s3.meta.region_name == "eu-west-1"


def test_aws_without_a_region_explains_the_fix(monkeypatch):
    for var in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    with pytest.raises(CloudConfigError, match="export AWS_REGION"):
        config.client("s3", CloudConfig(mode="aws", endpoint_url=None, region=None))


def test_use_overrides_the_environment_until_reset():
    cfg = CloudConfig(bucket="lab-bucket")
    config.use(cfg)
    try:
        assert config.current() is cfg
    finally:
        config.use(None)
    assert config.current().bucket == "kit-telemetry"


def test_an_empty_region_variable_does_not_hide_the_profiles_region(tmp_path, monkeypatch):
    (tmp_path / "config").write_text("[default]\nregion = eu-north-1\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_REGION", "")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "example")
    config._session.cache_clear()
    try:
        cfg = CloudConfig.from_env({"KIT_CLOUD": "aws", "AWS_REGION": "", "AWS_DEFAULT_REGION": ""})
        assert cfg.region is None
        s3 = config.client("s3", cfg)  # no request: making a client is local
        assert s3.meta.region_name == "eu-north-1" and "s3.eu-north-1.amazonaws.com" in s3.meta.endpoint_url
    finally:
        config._session.cache_clear()

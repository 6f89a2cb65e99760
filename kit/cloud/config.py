"""Where the cloud is: the local AWS endpoint (the default) or real AWS, and how to reach the broker.

Everything comes from the environment, never from code, notebooks or the SQLite file:

========================  ===============================================================  =========================
variable                  meaning                                                          default
========================  ===============================================================  =========================
``KIT_CLOUD``             ``local`` (emulated AWS on this machine) or ``aws``               ``local``
``AWS_ENDPOINT_URL``      boto3's own variable: the endpoint every client talks to         ``http://127.0.0.1:5151``
                          (local mode); unset on real AWS                                  when local
``AWS_REGION`` /          boto3's region chain (a profile's region also counts)            ``eu-west-1`` when local
``AWS_DEFAULT_REGION``
``AWS_PROFILE``           boto3's named profile (credentials from ``~/.aws``)              none
``KIT_BUCKET``            S3 bucket the readings go to                                     ``kit-telemetry``
``KIT_DEVICE_ID``         device (thing) name when the store has none                      ``kit-0001``
``KIT_MQTT_HOST/PORT``    MQTT broker                                                      ``127.0.0.1`` / 1883
``KIT_MQTT_CA/CERT/KEY``  paths of the CA, device certificate and private key (TLS)        none (plain MQTT)
========================  ===============================================================  =========================

Credentials are left to boto3's standard chain (environment, profile, instance role). In local
mode the kit passes fixed placeholder keys instead, so that a student's real AWS keys are never
sent to the emulator.

    >>> from kit.cloud.config import CloudConfig
    >>> cfg = CloudConfig.from_env({"KIT_CLOUD": "local"})
    >>> cfg.endpoint_url
    'http://127.0.0.1:5151'
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from kit.errors import UsageError

DEFAULT_PORT = 5151  # not 5000: macOS uses 5000 for AirPlay
DEFAULT_ENDPOINT = f"http://127.0.0.1:{DEFAULT_PORT}"
LOCAL_REGION = "eu-west-1"
DEFAULT_BUCKET = "kit-telemetry"
DEFAULT_DEVICE = "kit-0001"
# Placeholders the emulator accepts; they are not secrets and never reach AWS.
LOCAL_KEYS = {"aws_access_key_id": "kit-local", "aws_secret_access_key": "kit-local"}
MODES = ("local", "aws")


class CloudConfigError(UsageError):
    """The cloud configuration (an environment variable) is not usable."""


@dataclass(frozen=True)
class CloudConfig:
    """Where boto3 clients and the MQTT client connect. Holds no secret (only paths and names).

    >>> cfg = CloudConfig(endpoint_url="http://127.0.0.1:5151")
    >>> cfg.local
    True
    >>> CloudConfig(mode="aws", endpoint_url=None, region="eu-central-1").local
    False
    """

    mode: str = "local"
    endpoint_url: str | None = DEFAULT_ENDPOINT
    region: str | None = LOCAL_REGION
    profile: str | None = None
    bucket: str = DEFAULT_BUCKET
    device_id: str = DEFAULT_DEVICE
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 1883
    mqtt_ca: str | None = None
    mqtt_cert: str | None = None
    mqtt_key: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise CloudConfigError(f"KIT_CLOUD={self.mode!r} is not a cloud mode; use one of {MODES}")

    @property
    def local(self) -> bool:
        """True when the clients talk to the emulated AWS on this machine."""
        return self.mode == "local"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> CloudConfig:
        """Read the configuration from ``env`` (default: ``os.environ``)."""
        env = os.environ if env is None else env
        mode = env.get("KIT_CLOUD", "local").strip().lower() or "local"
        endpoint = env.get("AWS_ENDPOINT_URL") or None
        region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None
        if mode == "local":
            endpoint = endpoint or DEFAULT_ENDPOINT
            region = region or LOCAL_REGION
        port_text = env.get("KIT_MQTT_PORT", "")
        try:
            mqtt_port = int(port_text) if port_text else (8883 if env.get("KIT_MQTT_CERT") else 1883)
        except ValueError:
            raise CloudConfigError(f"KIT_MQTT_PORT={port_text!r} is not a port number; use e.g. 1883 or 8883") from None
        bucket = env.get("KIT_BUCKET") or DEFAULT_BUCKET
        if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", bucket):  # S3's rule, said before any request
            raise CloudConfigError(
                f"KIT_BUCKET={bucket[:80]!r} is not an S3 bucket name: 3 to 63 lower-case letters, digits, '.' "
                "or '-', starting and ending with a letter or digit (e.g. my-kit-telemetry)"
            )
        return cls(
            mode=mode,
            endpoint_url=endpoint,
            region=region,
            profile=env.get("AWS_PROFILE") or None,
            bucket=bucket,
            device_id=env.get("KIT_DEVICE_ID") or DEFAULT_DEVICE,
            mqtt_host=env.get("KIT_MQTT_HOST") or "127.0.0.1",
            mqtt_port=mqtt_port,
            mqtt_ca=env.get("KIT_MQTT_CA") or None,
            mqtt_cert=env.get("KIT_MQTT_CERT") or None,
            mqtt_key=env.get("KIT_MQTT_KEY") or None,
        )

    def with_(self, **changes: Any) -> CloudConfig:
        """A copy with some fields changed, e.g. ``cfg.with_(bucket="lab-04")``."""
        return replace(self, **changes)

    def describe(self) -> dict[str, Any]:
        """What ``kit cloud status`` prints: where things are, never a key."""
        return {
            "mode": self.mode,
            "endpoint": self.endpoint_url or "AWS default for the region",
            "region": self.region or "(from the profile / AWS_DEFAULT_REGION)",
            "profile": self.profile or "(default chain)",
            "credentials": "placeholders for the local endpoint" if self.local else "boto3 standard chain",
            "bucket": self.bucket,
            "device": self.device_id,
            "mqtt": f"{self.mqtt_host}:{self.mqtt_port}" + (" (TLS)" if self.mqtt_cert else ""),
        }


_current: CloudConfig | None = None


def current() -> CloudConfig:
    """The configuration in use: the one a running local emulator set with :func:`use`, else the environment."""
    return _current if _current is not None else CloudConfig.from_env()


def use(cfg: CloudConfig | None) -> None:
    """Make ``cfg`` the process-wide default (``None`` goes back to the environment)."""
    global _current
    _current = cfg


def session(cfg: CloudConfig | None = None) -> Any:
    """A ``boto3.Session`` for ``cfg``: the standard credential chain on AWS, placeholders locally."""
    cfg = cfg or current()
    return _session(cfg.local, cfg.region, cfg.profile)


@functools.lru_cache(maxsize=8)
def _session(local: bool, region: str | None, profile: str | None) -> Any:
    # One session per place: building one loads botocore's service models again (~0.3 s each).
    import boto3  # lazily: ``import kit`` stays light

    if local:
        return boto3.Session(region_name=region, **LOCAL_KEYS)
    import botocore.session

    core = botocore.session.Session(profile=profile)
    if not region:
        # botocore takes an empty AWS_DEFAULT_REGION as a region ('' gives the endpoint https://s3..amazonaws.com)
        # and it hides the profile's region; empty means unset here, as everywhere in the kit's configuration.
        region = core.get_scoped_config().get("region") or None
    return boto3.Session(botocore_session=core, region_name=region)


def client(service: str, cfg: CloudConfig | None = None, **kwargs: Any) -> Any:
    """An ordinary boto3 client for ``service``, pointed at the configured endpoint.

    >>> s3 = client("s3")                 # doctest: +SKIP
    >>> s3.list_buckets()["Buckets"]      # doctest: +SKIP
    []
    """
    cfg = cfg or current()
    sess = session(cfg)
    if not sess.region_name:
        raise CloudConfigError(
            "no AWS region configured for KIT_CLOUD=aws; set AWS_REGION (e.g. export AWS_REGION=eu-west-1) "
            "or a region in your AWS profile"
        )
    if cfg.endpoint_url:
        kwargs.setdefault("endpoint_url", cfg.endpoint_url)
    elif service == "iot-data" and "endpoint_url" not in kwargs:
        # On AWS the data plane lives at an account-specific address.
        iot = sess.client("iot", config=boto_config())
        kwargs["endpoint_url"] = "https://" + iot.describe_endpoint(endpointType="iot:Data-ATS")["endpointAddress"]
    # On AWS as locally: short timeouts and ONE attempt per call. The kit's loops (Sync, the app's cloud link)
    # do the retrying with backoff and a circuit breaker; botocore's own retries (3 attempts in standard mode)
    # times its 60 s read timeout would stack on top, and one call to a hung endpoint took 184 s.
    kwargs.setdefault("config", boto_config())
    return sess.client(service, **kwargs)


def boto_config() -> Any:
    """The botocore ``Config`` of every kit client: connect 3 s, read 10 s, ``retries={"max_attempts": 1}``."""
    from botocore.config import Config

    return Config(connect_timeout=3, read_timeout=10, retries={"max_attempts": 1})

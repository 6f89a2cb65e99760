"""Edge to cloud: S3 uploads, the IoT device shadow and MQTT telemetry, against a local AWS endpoint or real AWS.

    >>> import kit.cloud
    >>> cloud = kit.cloud.start_local()          # moto on 127.0.0.1, a free port
    >>> s3 = kit.cloud.client("s3")              # an ordinary boto3 client, pointed at it
    >>> cloud.stop()

    >>> mqtt_broker = kit.cloud.broker.start()   # Mosquitto on a free local port (needs mosquitto installed)

Nothing here imports boto3, moto or paho until it is used.
"""
from __future__ import annotations

from kit.cloud import broker
from kit.cloud.config import CloudConfig, client, current, session, use
from kit.cloud.emulator import LocalCloud
from kit.cloud.emulator import start as start_local
from kit.cloud.mqtt import Subscriber, Telemetry
from kit.cloud.shadow import ShadowAgent
from kit.cloud.sync import Backoff, CircuitBreaker, Sync
from kit.cloud.uploader import Uploader

__all__ = ["Backoff", "CircuitBreaker", "CloudConfig", "LocalCloud", "ShadowAgent", "Subscriber", "Sync", "Telemetry",
           "Uploader", "broker", "client", "current", "session", "start_local", "use"]

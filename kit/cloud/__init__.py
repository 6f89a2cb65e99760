"""Edge to cloud: S3 uploads, the IoT device shadow and MQTT telemetry, against a local AWS endpoint or real AWS.

    >>> import kit.cloud
    >>> cloud = kit.cloud.start_local()          # moto on 127.0.0.1, a free port
    >>> s3 = kit.cloud.client("s3")              # an ordinary boto3 client, pointed at it
    >>> cloud.stop()

    >>> mqtt_broker = kit.cloud.broker.start()   # Mosquitto on a free local port (needs mosquitto installed)
    >>> mqtt_broker.stop()                       # it runs in a session of its own: it outlives Python unless stopped

Nothing here imports boto3, moto or paho until it is used.
"""

from __future__ import annotations

from kit.exports import lazy

# public name -> module that defines it (imported on first use)
__getattr__, __dir__, __all__ = lazy(
    __name__,
    {
        "Backoff": "kit.cloud.sync",
        "CircuitBreaker": "kit.cloud.sync",
        "CloudConfig": "kit.cloud.config",
        "LocalCloud": "kit.cloud.emulator",
        "ShadowAgent": "kit.cloud.shadow",
        "Subscriber": "kit.cloud.mqtt",
        "Sync": "kit.cloud.sync",
        "Telemetry": "kit.cloud.mqtt",
        "Uploader": "kit.cloud.uploader",
        "broker": "kit.cloud.broker:",
        "client": "kit.cloud.config",
        "current": "kit.cloud.config",
        "session": "kit.cloud.config",
        "start_local": "kit.cloud.emulator:start",
        "use": "kit.cloud.config",
    },
)

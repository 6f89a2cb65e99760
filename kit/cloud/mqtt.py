"""Live telemetry over MQTT (paho-mqtt 2): QoS 1 on ``kit/<device>/telemetry``.

The client keeps a persistent session (MQTT 5, ``clean_start=False``) and queues QoS 1 messages
in memory while the broker is away (down at start, restarting): they are sent, and acknowledged,
when it comes back. The durable copy of every reading is the store's outbox; MQTT is the live view.

    >>> from kit.cloud.mqtt import Telemetry, Subscriber
    >>> sub = Subscriber("127.0.0.1", 1883).start()                 # doctest: +SKIP
    >>> tele = Telemetry("kit-0001", host="127.0.0.1", port=1883).start()   # doctest: +SKIP
    >>> tele.publish({"sensor": "distance", "value": 3.2})          # doctest: +SKIP
    >>> tele.flush(timeout=5)                                       # doctest: +SKIP
    True

On AWS IoT Core: port 8883, the thing name as client id, and the device's X.509 certificate::

    Telemetry(thing, host="xxxxxxxx-ats.iot.eu-west-1.amazonaws.com", port=8883,
              tls={"ca_certs": "AmazonRootCA1.pem", "certfile": "device.pem.crt", "keyfile": "private.pem.key"})

(or ``KIT_MQTT_HOST``, ``KIT_MQTT_PORT``, ``KIT_MQTT_CA``, ``KIT_MQTT_CERT``, ``KIT_MQTT_KEY`` with
:meth:`Telemetry.from_config`). Keep the key file outside the repository, readable only by the
service user (``chmod 600``).
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

SESSION_EXPIRY_S = 24 * 3600  # the broker keeps our queue for a day of outage


def topic(device_id: str, kind: str = "telemetry") -> str:
    """The topic a device publishes ``kind`` on: ``kit/<device>/<kind>``.

    >>> topic("kit-0001")
    'kit/kit-0001/telemetry'
    """
    if not device_id or any(c in device_id for c in "/+#"):
        raise ValueError(f"device id {device_id!r} cannot be part of an MQTT topic; use letters, digits, '-' or '_'")
    return f"kit/{device_id}/{kind}"


def _client(client_id: str, tls: dict[str, Any] | None) -> Any:
    import paho.mqtt.client as mqtt

    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    c.reconnect_delay_set(min_delay=0.05, max_delay=2)
    if tls:
        c.tls_set(**tls)
    return c


def _session_properties() -> Any:
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = SESSION_EXPIRY_S
    return props


class Telemetry:
    """Publishes readings of one device at QoS 1; survives a broker that is down or restarts.

    >>> tele = Telemetry("kit-0001", host="127.0.0.1", port=1883)   # doctest: +SKIP
    >>> with tele:                                                   # doctest: +SKIP
    ...     tele.publish({"sensor": "road_temp", "value": 7.5})
    """

    def __init__(
        self,
        device_id: str,
        *,
        host: str = "127.0.0.1",
        port: int = 1883,
        qos: int = 1,
        tls: dict[str, Any] | None = None,
        client_id: str | None = None,
        max_queued: int = 100_000,
    ) -> None:
        self.device_id = device_id
        self.topic = topic(device_id)
        self.host, self.port, self.qos = host, port, qos
        self._client = _client(client_id or f"{device_id}-telemetry", tls)
        # 0 would be "unbounded": a long outage must not eat the Pi's memory.
        self.max_queued = max_queued
        self._client.max_queued_messages_set(max_queued)
        self._client.on_publish = self._on_publish
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._lock = threading.Condition()
        self._pending: set[int] = set()
        self._acked_early: set[int] = set()
        self.sent = 0
        self.acked = 0
        self.connected = False
        self.connects = 0

    @classmethod
    def from_config(cls, cfg: Any = None, **kwargs: Any) -> Telemetry:
        """Built from :class:`kit.cloud.config.CloudConfig` (the environment by default)."""
        from kit.cloud import config

        cfg = cfg or config.current()
        tls = None
        if cfg.mqtt_cert:
            tls = {"ca_certs": cfg.mqtt_ca, "certfile": cfg.mqtt_cert, "keyfile": cfg.mqtt_key}
            # AWS IoT policies bind the client id to the thing name (iot:Connection.Thing.ThingName)
            kwargs.setdefault("client_id", cfg.device_id)
        return cls(cfg.device_id, host=cfg.mqtt_host, port=cfg.mqtt_port, tls=tls, **kwargs)

    # paho callbacks (network thread) ---------------------------------------------------------
    def _on_publish(self, client: Any, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        with self._lock:
            if mid in self._pending:
                self._pending.discard(mid)
            else:  # the ack can beat publish() returning its mid
                self._acked_early.add(mid)
            self.acked += 1
            self._lock.notify_all()

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        self.connected = not reason.is_failure
        self.connects += 1

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        self.connected = False

    # use -------------------------------------------------------------------------------------
    def start(self) -> Telemetry:
        """Connect in the background; publishing works before the broker is reachable."""
        self._client.connect_async(
            self.host, self.port, keepalive=30, clean_start=False, properties=_session_properties()
        )
        self._client.loop_start()
        return self

    def publish(self, reading: dict[str, Any] | str | bytes) -> int:
        """Queue one message (a dict is sent as JSON); returns its message id."""
        import paho.mqtt.client as mqtt

        payload = json.dumps(reading, separators=(",", ":")) if isinstance(reading, dict) else reading
        info = self._client.publish(self.topic, payload, qos=self.qos)
        if info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:
            raise OverflowError(
                f"the MQTT queue is full ({self.max_queued} messages waiting); "
                "the broker has been away too long; the outbox still holds every reading"
            )
        with self._lock:
            self.sent += 1
            if info.mid in self._acked_early:
                self._acked_early.discard(info.mid)
            elif self.qos:
                self._pending.add(info.mid)
        return info.mid

    @property
    def pending(self) -> int:
        """Messages not yet acknowledged by the broker."""
        with self._lock:
            return len(self._pending)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until the broker acknowledged every message; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(min(left, 0.1))
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Flush (up to ``timeout``), then disconnect."""
        self.flush(timeout)
        self._client.disconnect()
        self._client.loop_stop()

    def __enter__(self) -> Telemetry:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "connected" if self.connected else "offline"
        return f"<Telemetry {self.topic} @ {self.host}:{self.port} {state} sent={self.sent} pending={self.pending}>"


class Subscriber:
    """A live listener (the "cloud side"): collects JSON messages from ``kit/+/telemetry``.

    Its session is persistent too, so messages published while it reconnects wait for it.

        >>> sub = Subscriber("127.0.0.1", 1883).start()       # doctest: +SKIP
        >>> sub.wait_for(10, timeout=5)                        # doctest: +SKIP
        >>> [m["value"] for m in sub.messages]                 # doctest: +SKIP
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 1883,
        *,
        topic_filter: str = "kit/+/telemetry",
        client_id: str = "kit-subscriber",
        tls: dict[str, Any] | None = None,
    ) -> None:
        self.host, self.port, self.topic_filter = host, port, topic_filter
        self.messages: list[Any] = []
        self.topics: list[str] = []
        self._arrived: queue.Queue = queue.Queue()
        self._subscribed = threading.Event()
        self._client = _client(client_id, tls)
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message
        self._client.on_subscribe = lambda *a: self._subscribed.set()

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if not reason.is_failure and not flags.session_present:
            client.subscribe(self.topic_filter, qos=1)
        elif not reason.is_failure:
            self._subscribed.set()

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        try:
            body: Any = json.loads(msg.payload)
        except ValueError:
            body = msg.payload
        self.messages.append(body)
        self.topics.append(msg.topic)
        self._arrived.put(body)

    def start(self, timeout: float = 5.0) -> Subscriber:
        """Connect and wait (up to ``timeout``) until subscribed; starts anyway if the broker is down."""
        self._client.connect_async(
            self.host, self.port, keepalive=30, clean_start=False, properties=_session_properties()
        )
        self._client.loop_start()
        self._subscribed.wait(timeout)
        return self

    def wait_for(self, count: int, timeout: float = 10.0) -> bool:
        """Wait until at least ``count`` messages arrived in total (QoS 1 may deliver a message twice)."""
        return self.wait_until(lambda messages: len(messages) >= count, timeout)

    def wait_until(self, condition: Callable[[list[Any]], bool], timeout: float = 10.0) -> bool:
        """Wait until ``condition(messages)`` is true; False on timeout."""
        deadline = time.monotonic() + timeout
        while not condition(self.messages):
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                self._arrived.get(timeout=min(left, 0.1))
            except queue.Empty:
                pass
        return True

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def __enter__(self) -> Subscriber:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def publish_http(device_id: str, reading: dict[str, Any], *, client: Any = None) -> dict[str, Any]:
    """The HTTP path: ``iot-data.publish`` on the same topic (AWS IoT Core's REST API).

    On the local endpoint the call succeeds but no broker is behind it; use MQTT for live data.
    """
    if client is None:
        from kit.cloud.config import client as make_client

        client = make_client("iot-data")
    return client.publish(topic=topic(device_id), qos=1, payload=json.dumps(reading).encode())


class DeltaListener:
    """Receives the thing's shadow deltas by MQTT (``$aws/things/<thing>/shadow/update/delta``, AWS IoT Core's
    topic) into a queue; the app's cloud worker hands each to :meth:`kit.cloud.shadow.ShadowAgent.handle`.

    Connecting happens in paho's own thread: a broker that is down or stalls never blocks the caller.

        >>> listener = DeltaListener("kit-0001", port=1883).start()    # doctest: +SKIP
        >>> listener.get(timeout=1)                                     # doctest: +SKIP
        b'{"state": {"car_green_s": 25}, "version": 7}'
    """

    def __init__(
        self,
        thing_name: str,
        *,
        host: str = "127.0.0.1",
        port: int = 1883,
        tls: dict[str, Any] | None = None,
        client_id: str | None = None,
    ) -> None:
        from kit.cloud.shadow import delta_topic

        self.topic = delta_topic(thing_name)
        self.host, self.port = host, port
        self.messages: queue.Queue = queue.Queue(maxsize=1000)
        self.subscribed = threading.Event()
        self._client = _client(client_id or f"{thing_name}-shadow", tls)
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message
        self._client.on_subscribe = lambda *a: self.subscribed.set()

    @classmethod
    def from_config(cls, thing_name: str, cfg: Any = None) -> DeltaListener:
        from kit.cloud import config

        cfg = cfg or config.current()
        tls = {"ca_certs": cfg.mqtt_ca, "certfile": cfg.mqtt_cert, "keyfile": cfg.mqtt_key} if cfg.mqtt_cert else None
        return cls(thing_name, host=cfg.mqtt_host, port=cfg.mqtt_port, tls=tls)

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if not reason.is_failure:
            client.subscribe(self.topic, qos=1)

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        try:
            self.messages.put_nowait(bytes(msg.payload))
        except queue.Full:
            pass  # polling catches up with whatever was missed

    def start(self) -> DeltaListener:
        self._client.connect_async(self.host, self.port, keepalive=30)
        self._client.loop_start()
        return self

    def get(self, timeout: float = 0.0) -> bytes | None:
        """The next delta message, or None."""
        try:
            return self.messages.get(timeout=timeout) if timeout > 0 else self.messages.get_nowait()
        except queue.Empty:
            return None

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

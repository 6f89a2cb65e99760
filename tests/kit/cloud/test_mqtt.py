from __future__ import annotations

import pytest

from kit.cloud.mqtt import Subscriber, Telemetry, publish_http, topic


def test_topic_layout_and_bad_device_names():
    assert topic("kit-0007") == "kit/kit-0007/telemetry"
    with pytest.raises(ValueError, match="cannot be part of an MQTT topic"):
        topic("a/b")


def test_telemetry_reaches_a_live_subscriber_at_qos1(broker):
    with Subscriber(broker.host, broker.port, client_id="t-sub") as sub, \
            Telemetry("kit-0007", host=broker.host, port=broker.port) as tele:
        for i in range(20):
            tele.publish({"seq": i, "sensor": "distance", "value": 2.5})
        assert tele.flush(timeout=5) and tele.pending == 0
        assert sub.wait_for(20, timeout=5)
    assert [m["seq"] for m in sub.messages] == list(range(20))
    assert set(sub.topics) == {"kit/kit-0007/telemetry"}


def test_broker_down_at_start_then_up_nothing_lost(broker_stopped):
    tele = Telemetry("kit-0008", host=broker_stopped.host, port=broker_stopped.port).start()
    try:
        for i in range(10):
            tele.publish({"seq": i})
        assert not tele.connected and tele.pending == 10
        broker_stopped.start()
        with Subscriber(broker_stopped.host, broker_stopped.port, client_id="t-sub2") as sub:
            for i in range(10, 20):
                tele.publish({"seq": i})
            assert tele.flush(timeout=10), "queued QoS 1 messages must go out once the broker is up"
            # the first 10 may have reached the broker before the subscriber: only the later ones are promised
            assert sub.wait_until(lambda msgs: {m["seq"] for m in msgs} >= set(range(10, 20)), timeout=5)
    finally:
        tele.close(timeout=1)


def test_broker_restart_mid_stream_loses_no_qos1_message(broker):
    with Subscriber(broker.host, broker.port, client_id="t-sub3") as sub, \
            Telemetry("kit-0009", host=broker.host, port=broker.port) as tele:
        for i in range(50):
            tele.publish({"seq": i})
        assert tele.flush(timeout=5)
        broker.restart()
        for i in range(50, 100):       # some go out while the client has not noticed the restart yet
            tele.publish({"seq": i})
        assert tele.flush(timeout=15), f"unacknowledged after the restart: {tele.pending}"
        sub.wait_until(lambda msgs: {m["seq"] for m in msgs} >= set(range(100)), timeout=15)
        got = {m["seq"] for m in sub.messages}
        assert got == set(range(100)), f"lost: {sorted(set(range(100)) - got)}"
        assert tele.connects >= 2


def test_the_http_path_publishes_through_iot_data(cloud):
    reply = publish_http("kit-0007", {"seq": 1})
    assert reply["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_from_config_takes_broker_and_tls_paths_from_the_environment(tmp_path):
    from kit.cloud.config import CloudConfig

    cfg = CloudConfig(device_id="kit-0010", mqtt_host="broker.example", mqtt_port=1999)
    tele = Telemetry.from_config(cfg)
    assert (tele.topic, tele.host, tele.port) == ("kit/kit-0010/telemetry", "broker.example", 1999)
    with pytest.raises(FileNotFoundError):   # TLS is configured from the paths, which must exist
        Telemetry.from_config(cfg.with_(mqtt_ca=str(tmp_path / "ca.pem"), mqtt_cert=str(tmp_path / "d.crt"),
                                        mqtt_key=str(tmp_path / "d.key")))

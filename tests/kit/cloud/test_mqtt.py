from __future__ import annotations

import pytest

from kit.cloud.mqtt import Subscriber, Telemetry, publish_http, topic


def test_topic_layout_and_bad_device_names():
    assert topic("kit-0007") == "kit/kit-0007/telemetry"
    with pytest.raises(ValueError, match="cannot be part of an MQTT topic"):
        topic("a/b")


def test_telemetry_reaches_a_live_subscriber_at_qos1(broker):
    with (
        Subscriber(broker.host, broker.port, client_id="t-sub") as sub,
        Telemetry("kit-0007", host=broker.host, port=broker.port) as tele,
    ):
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
    with (
        Subscriber(broker.host, broker.port, client_id="t-sub3") as sub,
        Telemetry("kit-0009", host=broker.host, port=broker.port) as tele,
    ):
        for i in range(50):
            tele.publish({"seq": i})
        assert tele.flush(timeout=5)
        broker.restart()
        for i in range(50, 100):  # some go out while the client has not noticed the restart yet
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
    with pytest.raises(FileNotFoundError):  # TLS is configured from the paths, which must exist
        Telemetry.from_config(
            cfg.with_(
                mqtt_ca=str(tmp_path / "ca.pem"), mqtt_cert=str(tmp_path / "d.crt"), mqtt_key=str(tmp_path / "d.key")
            )
        )


def _openssl(*args, cwd):
    import subprocess

    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def pki(tmp_path):
    """A CA, a broker certificate for 127.0.0.1 and a device certificate (CN = the thing name)."""
    import shutil

    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make test certificates")
    d = tmp_path / "pki"
    d.mkdir()
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=kit test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        cwd=d,
    )
    for name, subj, ext in (
        ("server", "/CN=127.0.0.1", "subjectAltName=IP:127.0.0.1"),
        ("device", "/CN=kit-tls", "extendedKeyUsage=clientAuth"),
    ):
        _openssl(
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-subj",
            subj,
            "-keyout",
            f"{name}.key",
            "-out",
            f"{name}.csr",
            cwd=d,
        )
        (d / f"{name}.ext").write_text(ext + "\n")
        _openssl(
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            f"{name}.ext",
            "-out",
            f"{name}.pem",
            cwd=d,
        )
    return d


def test_tls_with_x509_client_certificates_as_on_aws_iot(pki, tmp_path):
    from kit.cloud.broker import Broker
    from kit.cloud.config import CloudConfig

    (tmp_path / "mosq").mkdir()
    tls_broker = Broker(
        0,
        workdir=tmp_path / "mosq",
        tls={"cafile": str(pki / "ca.pem"), "certfile": str(pki / "server.pem"), "keyfile": str(pki / "server.key")},
    ).start()
    device_tls = {
        "ca_certs": str(pki / "ca.pem"),
        "certfile": str(pki / "device.pem"),
        "keyfile": str(pki / "device.key"),
    }
    try:
        cfg = CloudConfig(
            device_id="kit-tls",
            mqtt_host="127.0.0.1",
            mqtt_port=tls_broker.port,
            mqtt_ca=device_tls["ca_certs"],
            mqtt_cert=device_tls["certfile"],
            mqtt_key=device_tls["keyfile"],
        )
        with (
            Subscriber("127.0.0.1", tls_broker.port, client_id="tls-sub", tls=device_tls) as sub,
            Telemetry.from_config(cfg) as tele,
        ):
            tele.publish({"seq": 1})
            assert tele.flush(timeout=10) and sub.wait_for(1, timeout=10)
        assert sub.messages == [{"seq": 1}]
        # no certificate: the broker refuses the device
        plain = Telemetry("kit-tls", host="127.0.0.1", port=tls_broker.port, tls={"ca_certs": device_tls["ca_certs"]})
        plain.start()
        try:
            plain.publish({"seq": 2})
            assert not plain.flush(timeout=1) and not plain.connected
        finally:
            plain.close(timeout=0)
    finally:
        tls_broker.stop()

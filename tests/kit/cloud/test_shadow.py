from __future__ import annotations

import json

import pytest

from kit.cloud.shadow import DOCUMENT, ShadowAgent


@pytest.fixture
def agent(cloud, store):
    return ShadowAgent(store, thing_name="kit-0001").provision()


def _reported(agent):
    return agent.document()["state"]["reported"]


def test_provisioning_registers_the_thing_and_reports_every_parameter(cloud, agent, store):
    assert cloud.client("iot").describe_thing(thingName="kit-0001")["thingName"] == "kit-0001"
    reported = _reported(agent)
    assert reported["car_green_s"] == store.params.get("car_green_s")
    assert "rejected" not in reported
    agent.provision()  # a second run is harmless


def test_a_desired_timing_is_validated_applied_and_reported(agent, store):
    changed = []
    agent.on_change = changed.append
    agent.request({"car_green_s": 30, "ped_green_s": 9})
    result = agent.poll()
    assert result.ok and result.applied == {"car_green_s": 30.0, "ped_green_s": 9.0}
    assert store.params.get("car_green_s") == 30.0 and changed == [result.applied]
    assert store.params.history("car_green_s")[-1]["source"] == "cloud"
    doc = agent.document()
    assert "delta" not in doc["state"] and doc["state"]["reported"]["car_green_s"] == 30.0
    assert agent.poll().applied == {}, "nothing left to do once reported"


@pytest.mark.parametrize(
    "desired, bad, words",
    [
        ({"car_green_s": "fast"}, "car_green_s", "number"),
        ({"car_amber_s": 60}, "car_amber_s", "between 3 and 6"),
        ({"car_green_s": 25, "turbo_mode": True}, "turbo_mode", "unknown"),
        ({"car_green_s": {"value": 25}}, "car_green_s", "single value"),
        ({"car_green_s": [25]}, "car_green_s", "single value"),
        ({"device_id": "stolen"}, "device_id", "device only"),
        ({"min_green_s": 50, "max_green_s": 20}, "min_green_s", "max_green_s"),
    ],
)
def test_bad_requests_change_nothing_and_say_why(agent, store, desired, bad, words):
    before = store.params.all()
    agent.request(desired)
    result = agent.poll()
    assert bad in result.rejected and words in result.rejected[bad].lower(), result.rejected
    assert store.params.all() == before and store.params.history() == []
    assert bad in _reported(agent)["rejected"]


def test_an_oversized_request_is_rejected_whole(agent, store):
    before = store.params.all()
    agent.request({"car_green_s": 25, "note": "x" * 9000})
    result = agent.poll()
    assert list(result.rejected) == [DOCUMENT] and "bytes, more than the 8192" in result.rejected[DOCUMENT]
    assert store.params.all() == before
    assert DOCUMENT in _reported(agent)["rejected"]


@pytest.mark.parametrize(
    "document, words",
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (json.dumps({"state": "desired"}).encode(), "must be a JSON object"),
        (json.dumps({"state": {"desired": [1], "reported": {}}}).encode(), "desired must be an object"),
        (json.dumps({"state": {"desired": {}, "delta": "x"}}).encode(), "delta must be an object"),
    ],
)
def test_malformed_documents_are_rejected_with_a_reason(agent, store, document, words):
    before = store.params.all()
    result = agent.handle(document)
    assert words in result.rejected[DOCUMENT]
    assert store.params.all() == before
    assert words in _reported(agent)["rejected"][DOCUMENT]


def test_an_mqtt_delta_message_is_handled_like_a_get(agent, store):
    result = agent.handle(json.dumps({"version": 7, "state": {"ped_clear_s": 6}}))
    assert result.applied == {"ped_clear_s": 6.0} and result.version == 7


def test_a_repeated_bad_delta_is_not_reported_again_and_a_good_one_clears_the_reasons(agent, store):
    agent.request({"car_amber_s": 60})
    assert agent.poll().rejected
    version = agent.document()["version"]
    assert agent.poll().skipped and agent.document()["version"] == version, "no churn on the same bad delta"
    agent.request({"car_amber_s": 4})
    assert agent.poll().applied == {"car_amber_s": 4.0}
    assert "rejected" not in _reported(agent)


def test_a_flood_of_unknown_names_gives_a_bounded_report(agent):
    result = agent.handle({"state": {f"p{i}": i for i in range(100)}})
    reported = _reported(agent)["rejected"]
    assert len(result.rejected) == 100 and len(reported) == 21 and "80 more" in reported["(more)"]


def test_the_cloud_wins_again_after_a_local_change(agent, store):
    agent.request({"car_green_s": 30})
    assert agent.poll().applied == {"car_green_s": 30.0}
    store.params.set("car_green_s", 25)  # someone changes it on the device
    agent.report()
    assert agent.poll().applied == {"car_green_s": 30.0}, "the desired state still asks for 30 s"


def test_a_delta_published_on_aws_iot_s_topic_reaches_the_agent_through_mosquitto(agent, store, broker):
    """The device side of AWS IoT Core's shadow push: a delta document on ``$aws/things/<thing>/shadow/update/delta``
    arrives through a real broker, is applied and reported, without waiting for a poll."""
    import paho.mqtt.client as mqtt

    from kit.cloud.mqtt import DeltaListener

    listener = DeltaListener("kit-0001", host=broker.host, port=broker.port).start()
    publisher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="iot-core")
    try:
        assert listener.subscribed.wait(10), "the listener subscribes once connected"
        assert listener.topic == "$aws/things/kit-0001/shadow/update/delta"
        publisher.connect(broker.host, broker.port)
        publisher.loop_start()
        delta = {"version": 12, "timestamp": 1764633600, "state": {"car_green_s": 27}}
        publisher.publish(listener.topic, json.dumps(delta), qos=1).wait_for_publish(5)
        message = listener.get(timeout=10)
        assert message is not None, "the delta must arrive through the broker"
        result = agent.handle(message)
        assert result.applied == {"car_green_s": 27.0} and result.version == 12
        assert store.params.get("car_green_s") == 27.0
        assert _reported(agent)["car_green_s"] == 27.0
        # another thing's delta is not ours: the listener never sees it
        publisher.publish("$aws/things/kit-0002/shadow/update/delta", json.dumps(delta), qos=1).wait_for_publish(5)
        assert listener.get(timeout=1) is None
    finally:
        publisher.loop_stop()
        publisher.disconnect()
        listener.close()

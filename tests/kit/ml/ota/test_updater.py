"""The device-side updater with the real TFLite interpreter: canary, swap, refusal, rollback, restart."""

import json

import pytest

from kit.ml import shipped_model
from kit.ml.host import ModelHost
from kit.ml.ota.canary import CanaryPolicy
from kit.ml.ota.slots import sha256_file
from kit.ml.ota.updater import Updater

POLICY = CanaryPolicy(frames=24, probation_frames=16)


def feed(updater, host, frames, labels):
    """What the model loop does per frame: its current model's answer handed to the updater."""
    for frame, label in zip(frames, labels):
        updater.observe(frame, host.predict(frame)["queue"][0], 1.0, int(label))
    updater.step()


def in_canary(folder, variants, factory, name="good", version=None, policy=POLICY):
    """A started updater that took ``variants[name]`` (with its card) and is canarying it."""
    up = Updater(folder, factory=factory, policy=policy)
    up.start()
    up.offer_file(variants[name], version=version or f"{name}-1", card=variants[name].with_suffix(".json"))
    up.step()
    return up


@pytest.fixture
def factory():
    return ModelHost(shipped_model())


def test_good_candidate_is_canaried_swapped_confirmed_and_survives_restart(tmp_path, variants, day_frames, factory):
    frames, labels = day_frames
    up = Updater(tmp_path, factory=factory, policy=POLICY)
    assert up.start() is None and up.host is factory
    assert up.offer_file(variants["good"], version="good-1", card=variants["good"].with_suffix(".json")) == "queued"
    up.step()
    assert up.phase == "canary" and up.swap() is None  # nothing reaches the lights during the canary
    feed(up, factory, frames[:24], labels[:24])
    new = up.swap()
    assert new is not None and new is not factory and up.swap() is None  # handed over once
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["current"]["version"] == "good-1" and state["previous"] is None
    assert up.phase == "probation"
    feed(up, new, frames[24:40], labels[24:40])
    assert up.phase == "running", up.reason
    assert up.status()["version"] == "good-1" and up.status()["sha256"] == sha256_file(variants["good"])
    # a restart runs the delivered model, loaded from the folder
    again = Updater(tmp_path, factory=factory, policy=POLICY)
    host = again.start()
    assert host is not None and sha256_file(host.path) == sha256_file(variants["good"])


@pytest.mark.parametrize("name, why", [("flat", "less confident"), ("rolled", "agrees with the sensor less")])
def test_worse_candidate_is_refused_with_its_reason_and_never_retried(
    tmp_path, variants, day_frames, factory, name, why
):
    frames, labels = day_frames
    up = in_canary(tmp_path, variants, factory, name=name)
    feed(up, factory, frames[:24], labels[:24])
    assert up.swap() is None and up.host is factory
    assert up.phase == "rejected" and why in up.reason
    assert json.loads((tmp_path / "state.json").read_text())["current"] is None
    again = Updater(tmp_path, factory=factory, policy=POLICY)
    again.start()
    assert again.offer_file(variants[name], version=f"{name}-1").startswith("refused before")


def test_drift_alarm_after_the_swap_rolls_back_to_the_previous_model(tmp_path, variants, day_frames, factory):
    frames, labels = day_frames
    up = in_canary(tmp_path, variants, factory)
    feed(up, factory, frames[:24], labels[:24])
    new = up.swap()
    assert new is not None
    up.note_drift(True)
    feed(up, new, frames[24:28], labels[24:28])
    assert up.swap() is factory and up.phase == "rolled back" and "drift" in up.reason
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["current"] is None and state["events"][-1]["event"] == "rolled back"
    assert up.status()["rollbacks"] == 1 and up.status()["version"] == "factory"


def test_files_that_are_not_compatible_models_are_refused_before_any_canary(tmp_path, variants, factory):
    broken = tmp_path / "broken.tflite"
    broken.write_bytes(variants["good"].read_bytes()[:5000])
    up = Updater(tmp_path / "slots", factory=factory, policy=POLICY)
    up.start()
    up.offer_file(broken, version="broken-1")
    up.step()
    assert up.phase == "rejected" and "load" in up.reason and up.swap() is None
    up.offer_file(shipped_model("signal_policy"), version="policy-1")
    up.step()
    assert up.phase == "rejected" and "signature" in up.reason
    # the card must describe the file it came with
    up.offer_file(variants["flat"], version="wrong-card", card=variants["good"].with_suffix(".json"))
    up.step()
    assert up.phase == "rejected" and "card" in up.reason


def test_frames_waiting_for_the_canary_are_bounded(tmp_path, variants, day_frames, factory):
    frames, _ = day_frames
    up = Updater(tmp_path, factory=factory, policy=POLICY)
    up.start()
    up.observe(frames[0], [1, 0, 0], 1.0)
    assert len(up._frames) == 0  # idle: nothing is kept
    up.offer_file(variants["good"], version="good-1", card=variants["good"].with_suffix(".json"))
    up.step()
    for _ in range(1000):
        up.observe(frames[0], [1, 0, 0], 1.0)
    assert len(up._frames) == 256


def test_a_restart_during_probation_runs_the_probation_again_and_can_still_roll_back(
    tmp_path, variants, day_frames, factory
):
    frames, labels = day_frames
    up = in_canary(tmp_path, variants, factory)
    feed(up, factory, frames[:24], labels[:24])
    assert up.swap() is not None and up.phase == "probation"
    assert json.loads((tmp_path / "state.json").read_text())["current"]["confirmed"] is False
    # the process dies here (nothing more is written); the restart runs the new model, still on probation
    again = Updater(tmp_path, factory=factory, policy=POLICY)
    host = again.start()
    assert host is not None and again.phase == "probation" and again.status()["version"] == "good-1"
    again.note_drift(True)
    feed(again, host, frames[24:28], labels[24:28])
    assert again.swap() is factory and again.phase == "rolled back"
    # and a probation that ends is written down: a later restart does not start it again
    third = in_canary(tmp_path / "other", variants, factory, version="good-2")
    feed(third, factory, frames[:24], labels[:24])
    new = third.swap()
    feed(third, new, frames[24:40], labels[24:40])
    assert third.phase == "running"
    assert json.loads((tmp_path / "other" / "state.json").read_text())["current"]["confirmed"] is True
    fourth = Updater(tmp_path / "other", factory=factory, policy=POLICY)
    fourth.start()
    assert fourth.phase == "idle" and fourth.status()["version"] == "good-2"


def test_an_alarm_during_the_canary_is_not_news_in_probation_even_if_the_last_window_before_the_swap_was_calm(
    tmp_path, variants, day_frames, factory
):
    """A model chosen while drift alarmed (to fix it) is not rolled back when drift alarms again after its swap,
    even when one calm window happened to come just before the swap."""
    frames, labels = day_frames
    up = in_canary(tmp_path, variants, factory)
    up.note_drift(True)  # the works alarm during the canary
    feed(up, factory, frames[:12], labels[:12])
    up.note_drift(False)  # one calm window
    feed(up, factory, frames[12:24], labels[12:24])
    new = up.swap()
    assert new is not None and up.phase == "probation"
    up.note_drift(True)  # the works again
    feed(up, new, frames[24:40], labels[24:40])
    assert up.phase == "running" and up.rollbacks == 0, up.reason


def test_probation_compares_the_new_model_with_the_previous_one_on_the_same_frames(
    tmp_path, variants, day_frames, factory
):
    """Canaried on clear day frames (confidence 0.999), then on probation at night, where both models are unsure
    (about 0.81): the scene changed, not the model, so it is confirmed (the canary's figure as the baseline would
    have rolled it back)."""
    from kit.ml.data import make_dataset

    frames, labels = day_frames
    night = make_dataset(16, seed=77, conditions="night")
    up = in_canary(tmp_path, variants, factory)
    feed(up, factory, frames[:24], labels[:24])
    new = up.swap()
    assert new is not None and up._probation["baseline"] > 0.95
    feed(up, new, night.x, night.queue)
    assert up.phase == "running" and up.rollbacks == 0, up.reason
    # a model that is really less sure than the previous one on those same frames is still rolled back
    flat = Updater(
        tmp_path / "flat",
        factory=factory,
        policy=CanaryPolicy(
            frames=24, probation_frames=16, min_agreement=0.0, max_confidence_drop=1.0, max_sensor_drop=1.0
        ),
    )
    flat.start()
    flat.offer_file(variants["flat"], version="flat-1", card=variants["flat"].with_suffix(".json"))
    flat.step()
    feed(flat, factory, frames[:24], labels[:24])
    worse = flat.swap()
    assert worse is not None  # a lenient canary let it through
    flat.policy = POLICY
    feed(flat, worse, night.x, night.queue)
    assert flat.phase == "rolled back" and "on the same frames" in flat.reason, flat.reason

"""FieldModel: what a model loop holds; the swap happens inside predict, between two frames."""

import pytest

from kit.ml import MODELS_DIR, shipped_model
from kit.ml.early_exit import EarlyExitHost
from kit.ml.host import ModelHost
from kit.ml.ota.canary import CanaryPolicy
from kit.ml.ota.field import FieldModel
from kit.ml.ota.slots import sha256_file


def _factory(kind):
    if kind == "one-piece":
        return ModelHost(shipped_model())
    if kind == "early-exit":
        return EarlyExitHost.load(MODELS_DIR / "early_exit")
    from kit.ml.fusion import FusedHost

    return FusedHost.load("fusion")


@pytest.mark.parametrize("factory_kind", ["one-piece", "early-exit", "fused"])
def test_the_new_model_scores_whole_frames_from_the_one_after_the_commit(tmp_path, variants, day_frames, factory_kind):
    import numpy as np

    from kit.ml.sensors import SENSORS

    frames, labels = day_frames
    factory = _factory(factory_kind)
    sensors = np.zeros(len(SENSORS), np.float32)
    field = FieldModel(factory, tmp_path, policy=CanaryPolicy(frames=16, probation_frames=8)).start(thread=False)
    assert field.offer_file(variants["good"], version="good-1", card=variants["good"].with_suffix(".json")) == "queued"
    field.updater.step()
    hosts = []
    for frame, label in zip(frames[:40], labels[:40]):
        probs, pedestrian, _, ms = field.predict(frame, sensors, sensor_class=int(label))
        assert probs.shape == (3,) and ms >= 0
        hosts.append(field.host)
        field.updater.step()
    assert field.swaps_taken == 1 and field.status()["version"] == "good-1", field.status()
    first_new = next(i for i, h in enumerate(hosts) if h is not factory)
    assert all(h is factory for h in hosts[:first_new]) and all(h is hosts[first_new] for h in hosts[first_new:])
    assert sha256_file(hosts[-1].path) == sha256_file(variants["good"])
    assert pedestrian is not None  # the delivered one-piece model reports pedestrians too


def test_a_deployment_reaches_a_serving_device_through_the_shadow_on_its_own_thread(
    cloud, tmp_path, variants, day_frames
):
    import time

    from kit.ml.ota.deploy import deploy, reported

    frames, labels = day_frames
    deploy(variants["good"], "kit-0050", version="good-1")
    factory = ModelHost(shipped_model())
    field = FieldModel(
        factory, tmp_path, policy=CanaryPolicy(frames=16, probation_frames=8), thing_name="kit-0050", poll_s=0.05
    ).start()
    try:
        for k in range(5000):  # bounded; the frames keep coming while the updater works
            field.predict(frames[k % len(frames)], sensor_class=int(labels[k % len(labels)]))
            if field.host is not factory and field.status()["phase"] == "running":
                break
            time.sleep(0.002)
        assert field.status()["version"] == "good-1" and field.status()["phase"] == "running", field.status()
        for _ in range(500):  # the report follows on the updater's next poll
            seen = reported("kit-0050")["reported"]
            if seen and seen["phase"] == "running":
                break
            time.sleep(0.01)
        assert seen["version"] == "good-1" and seen["sha256"] == sha256_file(variants["good"])
    finally:
        field.close()

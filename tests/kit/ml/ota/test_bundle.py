"""The fused model over the air: its two parts and card as one bundle, checked part by part, canaried with the
sensor vectors beside the frames, swapped, rolled back, recovered after a restart; hostile bundles refused."""

import hashlib
import io
import json
import zipfile

import numpy as np
import pytest

from kit.ml import MODELS_DIR, shipped_model
from kit.ml.fusion import FusedHost
from kit.ml.host import ModelHost
from kit.ml.ota import bundle
from kit.ml.ota.canary import CanaryPolicy
from kit.ml.ota.field import FieldModel
from kit.ml.ota.updater import Updater
from kit.ml.ota.verify import CandidateError, Signature, signature_of, verify_candidate

POLICY = CanaryPolicy(frames=24, probation_frames=16)


def test_a_folder_packs_to_the_same_bytes_and_the_bundle_predicts_like_the_folder(fused_frames):
    frames, sensors, _ = fused_frames
    data = bundle.pack(MODELS_DIR / "fusion")
    assert data == bundle.pack(MODELS_DIR / "fusion") and bundle.is_bundle(data)
    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    assert names == sorted(["card.json", "rest_int8.tflite", "stem_int8.tflite", "stream_reference.json"])
    loaded, folder = bundle.load(data), FusedHost.load("fusion")
    a, b = loaded.predict_batch(frames[:16], sensors[:16]), folder.predict_batch(frames[:16], sensors[:16])
    assert np.array_equal(a["queue"], b["queue"]) and np.array_equal(a["pedestrian"], b["pedestrian"])


def _rezip(data, change):
    """The bundle's members, changed by ``change(dict)``, written back as a zip (stored unless told otherwise)."""
    z = zipfile.ZipFile(io.BytesIO(data))
    members = {n: z.read(n) for n in z.namelist()}
    compression = change(members) or zipfile.ZIP_STORED
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=compression) as out:
        for name, content in members.items():
            out.writestr(name, content)
    return buf.getvalue()


def _flip(members):
    part = bytearray(members["stem_int8.tflite"])
    part[3000] ^= 0xFF
    members["stem_int8.tflite"] = bytes(part)


HOSTILE = {
    "truncated": (lambda d: d[: len(d) // 2], "not a readable model bundle"),
    "a path outside": (
        lambda d: _rezip(d, lambda m: m.update({"../../etc/cron.d/x": b"*"}) or None),
        "no part of a fused",
    ),
    "compressed": (lambda d: _rezip(d, lambda m: zipfile.ZIP_DEFLATED), "compresses"),
    "a changed part": (lambda d: _rezip(d, _flip), "card lists"),
    "no card": (lambda d: _rezip(d, lambda m: m.pop("card.json") and None), "has no card.json"),
    "one part": (lambda d: _rezip(d, lambda m: m.pop("rest_int8.tflite") and None), "two parts of one variant"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_hostile_bundle_is_refused_with_its_reason_before_any_canary(tmp_path, name):
    spoil, words = HOSTILE[name]
    path = tmp_path / "candidate.zip"
    path.write_bytes(spoil(bundle.pack(MODELS_DIR / "fusion")))
    with pytest.raises(CandidateError, match=words) as err:
        verify_candidate(path, Signature())
    assert len(str(err.value).splitlines()) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["candidate.zip"]  # nothing unpacked anywhere


def test_a_fused_model_needs_an_app_that_feeds_its_sensors(tmp_path, fused_variants):
    path = tmp_path / "good.zip"
    path.write_bytes(bundle.pack(fused_variants["good"]))
    assert isinstance(verify_candidate(path, Signature()), FusedHost)
    with pytest.raises(CandidateError, match="feeds frames only"):
        verify_candidate(path, Signature(sensors=()))
    with pytest.raises(CandidateError, match="reads the sensors"):
        verify_candidate(path, Signature(sensors=("distance", "pir")))


def feed(updater, host, frames, sensors, labels):
    """What the model loop does per frame: the running model's answer, with the frame's sensor vector."""
    for frame, vector, label in zip(frames, sensors, labels):
        probs = host.predict(frame, vector).queue_probs if isinstance(host, FusedHost) else host.predict(frame)["queue"]
        updater.observe(frame, np.asarray(probs).reshape(-1), 1.0, int(label), vector)
    updater.step()


def test_a_fused_model_is_canaried_with_the_sensors_swapped_and_runs_after_a_restart(
    tmp_path, fused_variants, fused_frames
):
    frames, sensors, labels = fused_frames
    factory = FusedHost.load("fusion")
    up = Updater(tmp_path, factory=factory, policy=POLICY)
    assert up.start() is None
    assert up.offer_file(fused_variants["good"], version="fused-f32") == "queued"
    up.step()
    assert up.phase == "canary", up.reason
    feed(up, factory, frames[:24], sensors[:24], labels[:24])
    new = up.swap()
    assert isinstance(new, FusedHost) and not new.stem.quantized, up.reason  # the float32 parts run now
    feed(up, new, frames[24:40], sensors[24:40], labels[24:40])
    assert up.phase == "running", up.reason
    blob = tmp_path / "blobs" / f"{up.status()['sha256']}.zip"
    assert hashlib.sha256(blob.read_bytes()).hexdigest() == up.status()["sha256"]
    again = Updater(tmp_path, factory=factory, policy=POLICY)
    host = again.start()
    assert isinstance(host, FusedHost) and host.path == blob
    # a fused model whose queue heads are shifted by one class is confident and wrong: the sensors catch it
    assert again.offer_file(fused_variants["rolled"], version="fused-rolled") == "queued"
    again.step()
    feed(again, host, frames[:24], sensors[:24], labels[:24])
    assert again.phase == "rejected" and "agrees with the sensor less" in again.reason and again.swap() is None
    assert again.status()["version"] == "fused-f32"


def test_a_camera_model_device_takes_a_fused_model_and_rolls_back_to_it(tmp_path, fused_variants, fused_frames):
    frames, sensors, labels = fused_frames
    factory = ModelHost(shipped_model())
    assert signature_of(factory).sensors  # the app feeds the sensor vector whatever model it runs
    field = FieldModel(factory, tmp_path, policy=CanaryPolicy(frames=16, probation_frames=8)).start(thread=False)
    field.offer_file(fused_variants["good"], version="fused-f32")
    field.updater.step()
    for frame, vector, label in zip(frames[:20], sensors[:20], labels[:20]):
        probs, pedestrian, _, _ = field.predict(frame, vector, sensor_class=int(label))
        field.updater.step()
    assert field.fused and field.swaps_taken == 1 and pedestrian is not None, field.status()
    field.note_drift(True)  # a drift alarm in probation that the canary did not see
    field.predict(frames[20], sensors[20])
    field.updater.step()
    field.predict(frames[21], sensors[21])
    assert field.host is factory and field.status()["phase"] == "rolled back", field.status()
    assert json.loads((tmp_path / "state.json").read_text())["current"] is None


def test_deploy_sends_a_fused_folder_as_one_bundle_the_device_runs(cloud, tmp_path, fused_variants, fused_frames):
    from kit.ml.ota.deploy import deploy, reported
    from kit.ml.ota.updater import shadow_poller

    frames, sensors, labels = fused_frames
    spec = deploy(fused_variants["good"], "kit-0060", version="fused-f32")
    assert spec.key == f"models/sha256/{spec.sha256}.zip" and spec.card_key.endswith(f"{spec.sha256}.json")
    s3, bucket = cloud.client("s3"), cloud.config.bucket
    obj = s3.get_object(Bucket=bucket, Key=spec.key)
    body = obj["Body"].read()
    assert obj["ContentType"] == "application/zip" and hashlib.sha256(body).hexdigest() == spec.sha256
    assert body == bundle.pack(fused_variants["good"])
    # the shipped folder by name: its int8 parts
    assert deploy("fusion", "kit-0061").key.endswith(".zip")
    factory = FusedHost.load("fusion")
    up = Updater(tmp_path, factory=factory, policy=CanaryPolicy(frames=16, probation_frames=8))
    up.start()
    poll = shadow_poller(up, "kit-0060")
    poll()
    up.step()
    assert up.phase == "canary", up.reason
    feed(up, factory, frames[:16], sensors[:16], labels[:16])
    assert isinstance(up.swap(), FusedHost)
    poll()
    seen = reported("kit-0060")["reported"]
    assert seen["version"] == "fused-f32" and seen["key"] == spec.key and seen["phase"] == "probation"
    # the candidate reported during the canary is gone from the shadow, not left behind by its merge
    assert "candidate" not in seen

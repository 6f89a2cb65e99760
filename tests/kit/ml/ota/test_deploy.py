"""Deploy over the local AWS endpoint (a real moto server): S3 content-addressed key, shadow desired.model,
the device's updater downloading, verifying, canarying, swapping and reporting."""

import json
import os
import subprocess
import sys

import pytest

from kit.cli import main
from kit.ml import shipped_model
from kit.ml.host import ModelHost
from kit.ml.ota.canary import CanaryPolicy
from kit.ml.ota.deploy import deploy, reported
from kit.ml.ota.desired import DeployError, DesiredModel
from kit.ml.ota.slots import sha256_file
from kit.ml.ota.updater import Updater, shadow_poller


def test_deploy_then_the_device_runs_it_and_reports_it(cloud, tmp_path, variants, day_frames):
    frames, labels = day_frames
    spec = deploy(variants["good"], "kit-0042", version="good-1")
    sha = sha256_file(variants["good"])
    assert spec.key == f"models/sha256/{sha}.tflite" and spec.sha256 == sha
    s3 = cloud.client("s3")
    bucket = cloud.config.bucket
    assert s3.get_object(Bucket=bucket, Key=spec.key)["Body"].read() == variants["good"].read_bytes()
    assert json.loads(s3.get_object(Bucket=bucket, Key=spec.card_key)["Body"].read())["sha256"] == sha
    assert reported("kit-0042")["desired"] == spec.to_dict()

    factory = ModelHost(shipped_model())
    up = Updater(tmp_path, factory=factory, policy=CanaryPolicy(frames=16, probation_frames=8))
    up.start()
    poll = shadow_poller(up, "kit-0042")
    poll()  # reads desired.model, reports the factory model
    up.step()
    assert up.phase == "canary"
    for frame, label in zip(frames[:16], labels[:16]):
        up.observe(frame, factory.predict(frame)["queue"][0], 1.0, int(label))
    up.step()
    assert up.swap() is not None
    poll()
    seen = reported("kit-0042")["reported"]
    assert seen["version"] == "good-1" and seen["sha256"] == sha and seen["phase"] == "probation"
    # the same file again uploads nothing new and asks for the same thing
    assert deploy(variants["good"], "kit-0042", version="good-1") == spec
    assert up.offer(spec) == "already running"


def test_a_damaged_object_is_refused_and_the_device_keeps_its_model(cloud, tmp_path, variants):
    spec = deploy(variants["good"], "kit-0043", version="good-1")
    data = bytearray(variants["good"].read_bytes())
    data[2000] ^= 0xFF  # someone overwrote the object with other bytes
    cloud.client("s3").put_object(Bucket=cloud.config.bucket, Key=spec.key, Body=bytes(data))
    factory = ModelHost(shipped_model())
    up = Updater(tmp_path, factory=factory)
    up.start()
    up.offer(spec)
    up.step()
    assert up.phase == "rejected" and "sha256" in up.reason and up.swap() is None
    assert not list((tmp_path / "blobs").glob("*.tflite*"))  # nothing half-written stays


def test_desired_model_is_checked_and_min_kit_respected(tmp_path):
    with pytest.raises(DeployError, match="content-addressed"):
        DesiredModel.from_dict({"version": "a", "sha256": "0" * 64, "key": "models/other.tflite"})
    with pytest.raises(DeployError, match="64 hex"):
        DesiredModel.from_dict({"version": "a", "sha256": "xyz", "key": "k"})
    spec = DesiredModel.from_dict(
        {"version": "a", "sha256": "0" * 64, "key": f"models/sha256/{'0' * 64}.tflite", "min_kit": "99.0"}
    )
    up = Updater(tmp_path, kit_version="0.1.0")
    up.start()
    assert up.offer(spec) == "refused: needs kit >= 99.0, this device runs 0.1.0"


def _kit(*args, cloud):
    root = os.path.dirname(
        os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    )
    env = {**os.environ, "PYTHONPATH": root, "AWS_ENDPOINT_URL": cloud.endpoint_url, "KIT_CLOUD": "local"}
    return subprocess.run([sys.executable, "-m", "kit", *args], capture_output=True, text=True, env=env, timeout=120)


def test_cli_deploys_and_shows_status_and_refuses_bad_input_in_one_line(cloud, variants, tmp_path, capsys):
    out = _kit("model", "deploy", str(variants["good"]), "--device", "kit-0044", "--version", "good-1", cloud=cloud)
    assert out.returncode == 0, out.stderr
    sent = json.loads(out.stdout)["desired.model"]
    assert sent["version"] == "good-1" and sent["key"].startswith("models/sha256/")
    status = _kit("model", "deploy", "--device", "kit-0044", "--status", cloud=cloud)
    assert json.loads(status.stdout)["desired"] == sent
    lonely = tmp_path / "lonely.tflite"
    lonely.write_bytes(variants["good"].read_bytes())  # no card beside it
    for args, words in [
        ((str(lonely),), "no model card"),
        (("nosuchmodel",), "no shipped model"),
        ((str(tmp_path / "missing.tflite"),), "no model file"),
    ]:
        # in-process (the CLI's own error handling, without starting an interpreter per row)
        code = main(["model", "deploy", *args, "--device", "kit-0044"])
        err = capsys.readouterr().err
        assert code == 2 and words in err and len(err.strip().splitlines()) == 1, err


def test_the_parameter_agent_leaves_desired_model_to_the_updater(cloud, tmp_path, variants):
    from kit.cloud.shadow import ShadowAgent
    from kit.store import Store

    store = Store(tmp_path / "kit.db")
    agent = ShadowAgent(store, thing_name="kit-0045").provision()
    deploy(variants["good"], "kit-0045", version="good-1")
    agent.request({"car_green_s": 30})
    result = agent.poll()
    assert result.applied == {"car_green_s": 30.0} and not result.rejected
    assert not agent.document()["state"]["reported"].get("rejected")
    store.close()

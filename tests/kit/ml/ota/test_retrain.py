"""Loop (b): frames uploaded by the device (a real moto S3) become a fine-tuned candidate the device can load."""

import numpy as np
import pytest

from kit.cli import main
from kit.ml import MODELS_DIR, shipped_model
from kit.ml.card import ModelCard, file_sha256
from kit.ml.fusion import FusedHost
from kit.ml.host import ModelHost
from kit.ml.ota import bundle
from kit.ml.ota.desired import DeployError
from kit.ml.ota.retrain import FrameUploader, download_frames, retrain_from_s3
from kit.ml.ota.verify import signature_of, verify_candidate


def test_uploaded_frames_come_back_in_order_and_retrain_into_a_loadable_candidate(cloud, tmp_path, day_frames):
    frames, labels = day_frames
    up = FrameUploader("kit-0050", chunk=24, limit=60)
    ready = [up.add(f, int(q), pedestrian=i % 2) for i, (f, q) in enumerate(zip(frames, labels))]
    assert ready.index(True) == 23 and up.full  # a chunk is ready every 24 frames; the limit stops at 60
    keys = [up.flush(), up.flush()]
    assert keys[1] is None and up.sent == 60  # one flush sends everything buffered
    data, listed = download_frames("kit-0050")
    assert listed == keys[:1] and (data.x == frames[:60]).all() and (data.queue == labels[:60]).all()
    assert data.pedestrian.tolist() == [i % 2 for i in range(60)]

    card = retrain_from_s3(
        "kit-0050", base="intersection", out=tmp_path, seed=0, epochs=1, replay=0, holdout=0.25, progress=None
    )
    path = tmp_path / "intersection-kit-0050-retrained.tflite"
    assert card["_path"] == str(path) and card["data"]["uploaded"]["held_out"] == 15
    factory = ModelHost(shipped_model())
    host = verify_candidate(path, signature_of(factory), sha256=card["sha256"])  # what the device checks
    assert host.predict(frames[0])["queue"].shape == (1, 3)
    assert 0.0 <= card["metrics"]["queue_accuracy"] <= 1.0 and card["metrics"]["n"] == 15
    assert path.read_bytes() != shipped_model().read_bytes()


def test_a_fused_retrain_writes_a_folder_like_the_shipped_one_scored_on_held_out_uploads(cloud, tmp_path, fused_frames):
    frames, sensors, queue = fused_frames
    up = FrameUploader("kit-0052", chunk=32)
    for f, q, v in zip(frames, queue, sensors):
        if up.add(f, int(q), int(v[1] > 0.5), sensors=v):  # the pedestrian label is the PIR's, as the app's
            up.flush()
    card = retrain_from_s3("kit-0052", out=tmp_path, seed=0, epochs=1, replay=8, holdout=0.25, progress=None)
    folder = tmp_path / "fusion-kit-0052-retrained"
    assert card["_path"] == str(folder)
    shipped = ModelCard.load("fusion")
    host = FusedHost.load(folder)  # what the app does with a fused folder
    assert host.threshold == shipped.details["threshold"]  # the base's exit threshold, said on the card
    out = host.predict(frames[0], sensors[0])
    assert out.queue_probs.shape == (3,) and 0.0 <= out.pedestrian_prob <= 1.0
    saved = ModelCard.load(folder)
    assert saved.check_files() == [] and sorted(saved.files) == sorted(shipped.files)  # every part's digest
    assert saved.inputs == shipped.inputs and saved.outputs == shipped.outputs
    assert all((folder / f).read_bytes() != (MODELS_DIR / "fusion" / f).read_bytes() for f in saved.files)
    weights = saved.details["keras_weights"]
    assert file_sha256(folder / weights["file"]) == weights["sha256"]
    assert (folder / "stream_reference.json").exists()  # the app's drift monitor for the fused model
    assert bundle.load(bundle.pack(folder)).stem.quantized  # what deploy sends and the device checks, part by part
    details = saved.details
    uploaded = saved.data["uploaded"]  # where the device's app reads which device's uploads it learned
    assert (uploaded["device"], uploaded["frames"], uploaded["trained_on"], uploaded["held_out"]) == (
        "kit-0052",
        64,
        48,
        16,
    )
    for key in ("metrics", "metrics_base"):  # the newest 16 uploads, new and base, int8 early exit
        m = details[key]
        assert m["n"] == 16 and 0.0 <= m["queue_accuracy"] <= 1.0 and 0.0 <= m["pedestrian_f1"] <= 1.0
    assert uploaded["pedestrian_labels"] == "base"  # the PIR is an input: its copy would teach the head to copy it
    assert saved.data["replay"]["n"] == 8 and details["training"]["epochs"] == 1
    assert "--base fusion" in saved.reproduce  # the default: the model the app runs


def test_retrain_refuses_bad_input_in_one_line(cloud, tmp_path, capsys):
    with pytest.raises(DeployError, match="no bucket 'kit-telemetry'"):
        retrain_from_s3("kit-nobody", out=tmp_path)
    raw = FrameUploader("kit-0051", chunk=2)
    raw.add(np.zeros((64, 64), np.uint8), 0)
    raw.flush()  # makes the bucket on the local endpoint
    with pytest.raises(DeployError, match="no frames under s3://kit-telemetry/frames/kit-nobody/"):
        retrain_from_s3("kit-nobody", out=tmp_path)
    cloud.client("s3").put_object(Bucket=cloud.config.bucket, Key="frames/kit-0051/zz.npz", Body=b"not a chunk")
    with pytest.raises(DeployError, match="zz.npz is not a frames chunk"):
        download_frames("kit-0051")
    with pytest.raises(DeployError, match="is the base model's own folder"):
        retrain_from_s3("kit-0053", out=MODELS_DIR, name="fusion")  # the shipped model stays as it is
    no_sensors = FrameUploader("kit-0053", chunk=1)
    no_sensors.add(np.zeros((64, 64), np.uint8), 0)
    no_sensors.flush()  # a chunk without sensor vectors: nothing a fused model can learn from
    for args, words in [
        (("--from-s3", "kit-0053"), "carry no sensor vectors (in 0 of 1 chunks)"),  # base: the app's default
        (("--from-s3", "kit-0053", "--base", str(tmp_path)), "is a folder but not a fused model"),
        (("--from-s3", "kit-0053", "--base", "intersection", "--pedestrian-labels", "pir"), "is for a fused base"),
        (("--from-s3", "a/b"), "letters, digits, '-' or '_'"),
        (("--from-s3", "kit-nobody"), "no frames under"),
        (("--from-s3", "kit-0051", "--epochs", "0"), "--epochs"),
    ]:
        try:
            code = main(["model", "retrain", *args, "--out", str(tmp_path)])
        except SystemExit as exc:  # argparse's own refusal
            code = exc.code
        err = capsys.readouterr().err
        assert code == 2 and words in err and len(err.strip().splitlines()) == 1, err

"""Loop (b): frames uploaded by the device (a real moto S3) become a fine-tuned candidate the device can load."""

import numpy as np
import pytest

from kit.cli import main
from kit.ml import shipped_model
from kit.ml.host import ModelHost
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

    card = retrain_from_s3("kit-0050", out=tmp_path, seed=0, epochs=1, replay=0, holdout=0.25, progress=None)
    path = tmp_path / "intersection-kit-0050-retrained.tflite"
    assert card["_path"] == str(path) and card["data"]["uploaded"]["held_out"] == 15
    factory = ModelHost(shipped_model())
    host = verify_candidate(path, signature_of(factory), sha256=card["sha256"])  # what the device checks
    assert host.predict(frames[0])["queue"].shape == (1, 3)
    assert 0.0 <= card["metrics"]["queue_accuracy"] <= 1.0 and card["metrics"]["n"] == 15
    assert path.read_bytes() != shipped_model().read_bytes()


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
    for args, words in [
        (("--from-s3", "a/b"), "thing name without '/'"),
        (("--from-s3", "kit-nobody"), "no frames under"),
        (("--from-s3", "kit-0051", "--epochs", "0"), "--epochs"),
    ]:
        try:
            code = main(["model", "retrain", *args, "--out", str(tmp_path)])
        except SystemExit as exc:  # argparse's own refusal
            code = exc.code
        err = capsys.readouterr().err
        assert code == 2 and words in err and len(err.strip().splitlines()) == 1, err

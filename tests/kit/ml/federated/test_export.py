"""Loop (c): FedAvg's global weights as a camera .tflite that the over-the-air pipeline delivers and canaries."""

import numpy as np
import pytest

from kit.ml.data import make_dataset
from kit.ml.federated.export import to_tflite
from kit.ml.federated.task import Net, features
from kit.ml.host import ModelHost
from kit.ml.ota.canary import CanaryPolicy
from kit.ml.ota.deploy import deploy
from kit.ml.ota.slots import sha256_file
from kit.ml.ota.updater import Updater, shadow_poller
from kit.ml.ota.verify import CandidateError, Signature, signature_of, verify_candidate


def test_the_federated_model_file_computes_what_the_network_does_and_is_delivered(cloud, tmp_path):
    net = Net(seed=3)
    net.b2 += np.array([0.0, 0.3, -0.3], np.float32)  # not the initial weights: the bias must reach the file
    path = to_tflite(net.get_weights(), tmp_path, name="fed")
    frames = make_dataset(6, seed=1, conditions="day").x
    host = ModelHost(path)
    assert host.output_names == ["queue"]
    assert np.allclose(host.predict(frames)["queue"], net.predict_proba(features(frames)), atol=1e-5)

    # a device whose app reads the pedestrian from the camera model refuses it, naming the missing output
    from kit.ml import shipped_model

    with pytest.raises(CandidateError, match="no output 'pedestrian'"):
        verify_candidate(path, signature_of(ModelHost(shipped_model())), sha256=sha256_file(path))
    # the app's default (fused early exit) reads only the queue: delivered through S3 + shadow, then canaried
    spec = deploy(path, "kit-0060", version="fedavg-1")
    up = Updater(tmp_path / "device", signature=Signature(), policy=CanaryPolicy(frames=4))
    up.start()
    poll = shadow_poller(up, "kit-0060")
    poll()
    up.step()
    assert up.phase == "canary" and up.status()["candidate"] == spec.version

"""The candidate's own process: the same checks and the same probabilities as in the app's process."""

import numpy as np
import pytest

from kit.ml.host import ModelHost
from kit.ml.ota.slots import sha256_file
from kit.ml.ota.verify import CandidateError, Signature
from kit.ml.ota.worker import CandidateProcess


def test_the_child_checks_refuses_and_predicts_like_the_parent(variants, day_frames, tmp_path):
    frames, _ = day_frames
    good = variants["good"]
    proc = CandidateProcess()
    try:
        assert proc.wait_ready()
        with pytest.raises(CandidateError, match="sha256 mismatch"):
            proc.verify(good, Signature(), sha256="0" * 64, card=None)
        with pytest.raises(CandidateError, match="no output 'nope'"):
            proc.verify(good, Signature(outputs={"nope": (3,)}), sha256=sha256_file(good), card=None)
        proc.verify(good, Signature(), sha256=sha256_file(good), card=good.with_suffix(".json").read_bytes())
        probs, ms = proc.predict(list(frames[:5]))
        assert np.allclose(probs, ModelHost(good).predict(frames[:5])["queue"], atol=1e-6) and len(ms) == 5
    finally:
        proc.close()
    assert not proc._proc.is_alive() and not proc.broken


def test_the_child_checks_and_runs_a_fused_bundle_with_the_sensor_vectors(fused_variants, fused_frames, tmp_path):
    from kit.ml.ota import bundle
    from kit.ml.ota.verify import queue_of

    frames, sensors, _ = fused_frames
    path = tmp_path / "fused.zip"
    path.write_bytes(bundle.pack(fused_variants["good"]))
    card = (fused_variants["good"] / "card.json").read_bytes()
    proc = CandidateProcess()
    try:
        with pytest.raises(CandidateError, match="feeds frames only"):
            proc.verify(path, Signature(sensors=()), sha256=sha256_file(path), card=card)
        proc.verify(path, Signature(), sha256=sha256_file(path), card=card)
        probs, _ = proc.predict(list(frames[:5]), list(sensors[:5]))
        here = bundle.load(path.read_bytes())
        assert np.allclose(probs, [queue_of(here, f, v) for f, v in zip(frames[:5], sensors[:5])], atol=1e-6)
    finally:
        proc.close()

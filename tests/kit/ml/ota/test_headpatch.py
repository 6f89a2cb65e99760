import numpy as np
import pytest

from kit.errors import UsageError
from kit.ml import shipped_model
from kit.ml.host import ModelHost
from kit.ml.ota.headpatch import features, patch_head, shipped_head


def test_patched_model_is_the_same_model_with_another_head(tmp_path, day_frames):
    frames, _ = day_frames
    kernel, bias = shipped_head()
    base = ModelHost(shipped_model())
    # the head applied in numpy to the pooled features is what the file computes
    feats = features(shipped_model(), frames[:8])
    logits = feats @ kernel + bias
    expected = np.exp(logits - logits.max(1, keepdims=True))
    expected /= expected.sum(1, keepdims=True)
    np.testing.assert_allclose(base.predict(frames[:8])["queue"], expected, atol=1e-4)
    # a new head written into the file gives the new head's answers, and the pedestrian head is untouched
    new_kernel = np.roll(kernel, 1, axis=1)
    path = tmp_path / "patched.tflite"
    path.write_bytes(patch_head(shipped_model().read_bytes(), kernel, bias, new_kernel, bias))
    patched = ModelHost(path, verify=False)
    logits = feats @ new_kernel + bias
    want = np.exp(logits - logits.max(1, keepdims=True))
    want /= want.sum(1, keepdims=True)
    out = patched.predict(frames[:8])
    np.testing.assert_allclose(out["queue"], want, atol=1e-4)
    np.testing.assert_allclose(out["pedestrian"], base.predict(frames[:8])["pedestrian"], atol=1e-6)


def test_patch_refuses_wrong_shapes_and_other_files():
    kernel, bias = shipped_head()
    with pytest.raises(UsageError, match="shapes"):
        patch_head(shipped_model().read_bytes(), kernel, bias, kernel[:3], bias)
    with pytest.raises(UsageError, match="float32"):
        patch_head(shipped_model("queue_int8").read_bytes(), kernel, bias, kernel, bias)
    with pytest.raises(UsageError, match="NaN"):
        patch_head(shipped_model().read_bytes(), kernel, bias, kernel * np.nan, bias)

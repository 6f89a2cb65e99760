"""TFLite conversion: four variants, named signature, int8 in/out, hosted by ModelHost."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from kit.ml.compress.quantize import VARIANTS, representative_frames, to_tflite  # noqa: E402
from kit.ml.host import ModelHost  # noqa: E402
from kit.ml.model import build_model  # noqa: E402


@pytest.fixture(scope="module")
def model():
    return build_model(32, width=2.0, seed=0)


@pytest.fixture(scope="module")
def frames():
    return np.random.default_rng(0).integers(0, 256, (12, 32, 32), dtype=np.uint8)


def test_representative_frames_are_float_inputs(frames):
    rep = representative_frames(frames, 5, seed=1)
    assert rep.shape == (5, 32, 32, 1) and rep.dtype == np.float32
    assert 0.0 <= rep.min() and rep.max() <= 1.0
    np.testing.assert_array_equal(rep, representative_frames(frames, 5, seed=1))


@pytest.mark.slow
def test_every_variant_is_hosted_by_name_and_agrees_with_keras(model, frames, tmp_path):
    keras_out = model(frames[..., None].astype(np.float32) / 255, training=False)
    sizes = {}
    for variant in VARIANTS:
        path = tmp_path / f"{variant}.tflite"
        to_tflite(model, variant, representative=representative_frames(frames), path=path)
        host = ModelHost(path)
        assert host.output_names == ["pedestrian", "queue"]
        assert host.input_name == "frame"
        assert host.quantized == (variant == "int8")
        out = host.predict(frames)
        tol = {"float32": 1e-4, "float16": 1e-2, "dynamic": 5e-2, "int8": 8e-2}[variant]
        np.testing.assert_allclose(out["queue"], keras_out["queue"], atol=tol, err_msg=variant)
        sizes[variant] = path.stat().st_size
    assert sizes["int8"] < sizes["float16"] < sizes["float32"]
    assert sizes["dynamic"] < sizes["float32"]
    per_tensor = to_tflite(model, "int8", representative=representative_frames(frames), per_channel=False)
    assert len(per_tensor) < sizes["int8"], "one scale per tensor: fewer quantization parameters in the file"


def test_int8_without_representative_data_is_explained(model):
    with pytest.raises(ValueError, match="representative dataset"):
        to_tflite(model, "int8")


def test_unknown_variant_is_explained(model):
    with pytest.raises(ValueError, match="unknown variant 'int4'"):
        to_tflite(model, "int4")

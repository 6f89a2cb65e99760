"""ModelHost on the shipped model (float32) and an int8 fixture: names, (de)quantization, batches, errors, timing."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from kit.ml import shipped_model
from kit.ml.data import make_dataset
from kit.ml.host import ModelFileError, ModelHost, ModelInputError, resize

pytestmark = pytest.mark.tflite  # numpy + a TFLite runtime only

INT8 = Path(__file__).with_name("fixtures") / "intersection_int8.tflite"


@pytest.fixture(scope="module")
def host():
    return ModelHost(shipped_model())


@pytest.fixture(scope="module")
def frames():
    return make_dataset(40, seed=123, conditions="day")


def test_inputs_and_outputs_are_named_from_the_signature(host):
    assert host.input_name == "frame"
    assert host.input.shape == (1, 64, 64, 1) and host.input.dtype == np.float32
    assert host.output_names == ["pedestrian", "queue"]
    # the file stores pedestrian first: names, not positions, must pick the heads
    assert host.outputs["queue"].shape[-1] == 3 and host.outputs["pedestrian"].shape[-1] == 1
    assert not host.quantized
    assert "intersection.tflite" in repr(host)


def test_predict_one_frame(host, frames):
    out = host.predict(frames.x[0])
    assert out["queue"].shape == (1, 3) and out["pedestrian"].shape == (1, 1)
    assert out["queue"].dtype == np.float32
    assert np.isclose(out["queue"].sum(), 1.0, atol=1e-4)
    assert 0.0 <= float(out["pedestrian"][0, 0]) <= 1.0


def test_uint8_and_float_frames_agree(host, frames):
    a = host.predict(frames.x[0])
    b = host.predict(frames.x[0].astype(np.float32) / 255)
    c = host.predict(frames.x[0][..., None])
    for name in a:
        assert np.allclose(a[name], b[name], atol=1e-5) and np.allclose(a[name], c[name], atol=1e-5)


def test_a_batch_gives_the_same_answers_as_one_frame_at_a_time(host, frames):
    batch = host.predict(frames.x[:8])
    single = [host.predict(f) for f in frames.x[:8]]
    assert batch["queue"].shape == (8, 3)
    for name in batch:
        assert np.allclose(batch[name], np.concatenate([s[name] for s in single]), atol=1e-5)
    chunked = host.predict_batches(frames.x, batch_size=16)
    assert chunked["queue"].shape == (40, 3)


def test_predictions_match_the_labels_on_daylight_frames(host, frames):
    out = host.predict(frames.x)
    assert (out["queue"].argmax(1) == frames.queue).mean() >= 0.9
    assert ((out["pedestrian"][:, 0] > 0.5) == frames.pedestrian.astype(bool)).mean() >= 0.9


def test_preprocess_turns_a_camera_frame_into_model_input(host, frames):
    big_rgb = np.repeat(np.repeat(frames.x[0], 2, axis=0), 2, axis=1)[..., None].repeat(3, axis=2)
    small = host.preprocess(big_rgb)
    assert small.shape == (64, 64) and small.dtype == np.uint8
    assert np.abs(small.astype(int) - frames.x[0]).max() <= 1
    odd = host.preprocess(np.zeros((48, 80), np.uint8))
    assert odd.shape == (64, 64)
    assert resize(np.arange(16.0).reshape(4, 4), 2, 2).tolist() == [[2.5, 4.5], [10.5, 12.5]]


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.zeros((48, 48), np.uint8), r"\(64, 64\).*preprocess"),
        (np.zeros((2, 3, 64, 64), np.uint8), r"got \(2, 3, 64, 64\)"),
        (np.zeros((64, 64), np.int32), "dtype int32"),
        (np.full((64, 64), 200.0), "0..1"),
        (np.full((64, 64), np.nan, np.float32), "0..1"),
        (np.zeros((0, 64, 64), np.uint8), "empty"),
    ],
)
def test_wrong_frames_are_explained(host, bad, match):
    with pytest.raises(ModelInputError, match=match):
        host.predict(bad)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="kit model train"):
        ModelHost(tmp_path / "nope.tflite")


def test_not_a_tflite_file(tmp_path):
    bad = tmp_path / "model.tflite"
    bad.write_bytes(b"PK\x03\x04 this is a zip, e.g. a .keras file")
    with pytest.raises(ModelFileError, match="not a TFLite model"):
        ModelHost(bad)


@pytest.mark.parametrize("keep", [0.3, 0.6, 0.95])
def test_truncated_file_is_refused_not_crashing(tmp_path, keep):
    data = shipped_model().read_bytes()
    cut = tmp_path / "cut.tflite"
    cut.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(ModelFileError, match="truncated|not a whole"):
        ModelHost(cut)


def test_threads_give_the_same_results_and_bad_counts_are_refused(host, frames):
    two = ModelHost(shipped_model(), num_threads=2)
    assert np.allclose(two.predict(frames.x[:4])["queue"], host.predict(frames.x[:4])["queue"], atol=1e-5)
    with pytest.raises(ValueError, match="num_threads"):
        ModelHost(shipped_model(), num_threads=0)


def test_predict_is_safe_from_several_threads(host, frames):
    expected = host.predict(frames.x[:4])["queue"]
    results, errors = [], []

    def work():
        try:
            for _ in range(20):
                results.append(host.predict(frames.x[:4])["queue"])
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 80
    assert all(np.allclose(r, expected, atol=1e-5) for r in results)


def test_latency_warms_up_and_reports_percentiles(host, frames):
    lat = host.latency(frames.x[:5], warmup=3, runs=30)
    assert lat["runs"] == 30 and lat["warmup"] == 3 and lat["batch_size"] == 1
    assert 0 < lat["min_ms"] <= lat["p50_ms"] <= lat["p95_ms"]
    assert lat["runtime"] == host.runtime
    batched = host.latency(frames.x[0], runs=5, warmup=1, batch_size=8)
    assert batched["per_frame_ms"] == pytest.approx(batched["p50_ms"] / 8)
    with pytest.raises(ValueError, match="runs"):
        host.latency(frames.x[0], runs=0)


def test_int8_model_is_quantized_in_and_dequantized_out(frames):
    q = ModelHost(INT8)
    assert q.quantized and q.input.dtype == np.int8 and q.input.scale > 0
    x = q._quantize(q.to_input(frames.x[:2]))
    assert x.dtype == np.int8
    out = q.predict(frames.x)
    assert out["queue"].dtype == np.float32
    assert out["queue"].min() >= 0 and out["queue"].max() <= 1.0 + 1e-6
    assert np.allclose(out["queue"].sum(1), 1.0, atol=0.05)
    ref = ModelHost(shipped_model()).predict(frames.x)
    agree = (out["queue"].argmax(1) == ref["queue"].argmax(1)).mean()
    assert agree >= 0.9, f"int8 and float32 agree on {agree:.0%} of frames"


def test_run_takes_arrays_shaped_like_the_input(host, frames):
    x = frames.x[:3].astype(np.float32)[..., None] / 255
    assert np.allclose(host.run(x)["queue"], host.predict(frames.x[:3])["queue"])
    with pytest.raises(ModelInputError, match=r"\(n, 64, 64, 1\)"):
        host.run(x[..., 0])
    with pytest.raises(ModelInputError, match="float"):
        host.run(frames.x[:3][..., None])


def test_every_shipped_model_is_checked_against_its_card():
    from kit.ml import MODELS_DIR

    for path in sorted(MODELS_DIR.rglob("*.tflite")):
        assert ModelHost(path).card_path is not None, f"{path} has no card that lists it"


def _flip_one_weight_byte(src: Path, dst: Path) -> bytes:
    data = bytearray(src.read_bytes())
    middle = len(data) // 2  # weights fill the middle of the flatbuffer: the file still parses
    data[middle] ^= 0xFF
    dst.write_bytes(bytes(data))
    return bytes(data)


def test_a_model_with_flipped_bytes_does_not_predict_silently(tmp_path):
    import shutil

    src = shipped_model()
    bad = tmp_path / src.name
    _flip_one_weight_byte(src, bad)
    shutil.copy(src.with_suffix(".json"), tmp_path / src.with_suffix(".json").name)
    with pytest.raises(ModelFileError, match=r"does not match its model card.*changed or damaged.*Reinstall"):
        ModelHost(bad)
    assert ModelHost(bad, verify=False).predict(np.zeros((64, 64), np.uint8))  # loads: only the card tells


def test_a_card_in_the_folder_checks_each_file_it_lists(tmp_path):
    import shutil

    from kit.ml import MODELS_DIR

    folder = tmp_path / "early_exit"
    shutil.copytree(MODELS_DIR / "early_exit", folder)
    _flip_one_weight_byte(MODELS_DIR / "early_exit" / "rest.tflite", folder / "rest.tflite")
    assert ModelHost(folder / "stem.tflite").card_path == folder / "card.json"
    with pytest.raises(ModelFileError, match="rest.tflite does not match its model card card.json"):
        ModelHost(folder / "rest.tflite")


def test_an_unreadable_card_is_named(tmp_path):
    import shutil

    shutil.copy(shipped_model(), tmp_path / "m.tflite")
    (tmp_path / "m.json").write_text("{not json")
    with pytest.raises(ModelFileError, match="m.json.*can't be read"):
        ModelHost(tmp_path / "m.tflite")
    (tmp_path / "m.json").unlink()
    assert ModelHost(tmp_path / "m.tflite").card_path is None  # no card: nothing to check against


def test_the_apps_early_exit_model_is_checked_too(tmp_path):
    import shutil

    from kit.ml import MODELS_DIR
    from kit.ml.early_exit import EarlyExitHost

    folder = tmp_path / "early_exit"
    shutil.copytree(MODELS_DIR / "early_exit", folder)
    assert EarlyExitHost.load(folder) is not None
    _flip_one_weight_byte(MODELS_DIR / "early_exit" / "stem.tflite", folder / "stem.tflite")
    with pytest.raises(ModelFileError, match="stem.tflite does not match its model card"):
        EarlyExitHost.load(folder)

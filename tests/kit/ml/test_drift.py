import numpy as np
import pytest

from kit.ml.data import make_dataset
from kit.ml.drift import (
    CONFIDENCE_DROP,
    DriftMonitor,
    PredictionLog,
    Reference,
    frame_layouts,
    intensity_histogram,
    ks_2samp,
    psi,
)
from kit.store import Store

SIZE = 32


@pytest.fixture(scope="module")
def monitor():
    return DriftMonitor(Reference.from_frames(make_dataset(400, seed=0, size=SIZE).x))


def test_histogram_is_a_distribution_over_16_bins():
    h = intensity_histogram(np.array([[0, 15, 16, 255]], dtype=np.uint8))
    assert h.shape == (16,) and h.sum() == pytest.approx(1.0)
    assert h[0] == pytest.approx(0.5) and h[1] == pytest.approx(0.25) and h[15] == pytest.approx(0.25)


def test_histogram_refuses_float_frames_with_a_hint():
    with pytest.raises(ValueError, match="uint8"):
        intensity_histogram(np.zeros((4, 4), np.float32))


def test_psi_is_zero_for_the_same_histogram_and_grows_with_the_shift():
    e = np.array([0.25, 0.25, 0.25, 0.25])
    assert psi(e, e) == pytest.approx(0.0)
    small, big = psi(e, [0.3, 0.25, 0.25, 0.2]), psi(e, [0.7, 0.1, 0.1, 0.1])
    assert 0 < small < 0.1 < big


def test_ks_statistic_and_p_value():
    d, p = ks_2samp([1, 2, 3, 4], [1, 2, 3, 4])
    assert d == 0.0 and p == 1.0
    d, p = ks_2samp([1, 2, 3, 4], [5, 6, 7, 8])
    assert d == 1.0
    rng = np.random.default_rng(0)
    _, p_same = ks_2samp(rng.normal(size=300), rng.normal(size=300))
    _, p_shift = ks_2samp(rng.normal(size=300), rng.normal(1.0, size=300))
    assert p_same > 0.01 and p_shift < 1e-10


def test_layouts_ignore_overall_brightness():
    frame = make_dataset(1, seed=3, size=SIZE).x
    darker = (frame // 2).astype(np.uint8)
    assert np.abs(frame_layouts(frame) - frame_layouts(darker)).max() < 0.5


@pytest.mark.parametrize("seed", [101, 102, 103, 104, 105])
def test_quiet_on_normal_days(monitor, seed):
    report = monitor.check(make_dataset(64, seed=seed, size=SIZE).x)
    assert not report.drift, str(report)


@pytest.mark.parametrize("scenario", ["leaves", "night", "road_works"])
@pytest.mark.parametrize("seed", [201, 202])
def test_fires_on_autumn_night_and_road_works(monitor, scenario, seed):
    report = monitor.check(make_dataset(64, seed=seed, conditions=scenario, size=SIZE).x)
    assert report.drift, str(report)


def test_road_works_show_in_the_layout_not_the_light(monitor):
    report = monitor.check(make_dataset(64, seed=7, conditions="road_works", size=SIZE).x)
    assert report.psi < 0.25 and any("layout" in r for r in report.reasons), str(report)


def test_confidence_drop_fires_alone():
    frames = make_dataset(200, seed=0, size=SIZE).x
    ref = Reference.from_frames(frames, confidences=np.full(200, 0.95))
    mon = DriftMonitor(ref)
    ok = mon.check(frames[:64], confidences=np.full(64, 0.93))
    unsure = mon.check(frames[:64], confidences=np.full(64, 0.95 - CONFIDENCE_DROP - 0.05))
    assert not ok.drift
    assert unsure.reasons == [f"confidence fell by {0.95 - 0.8:.2f} > {CONFIDENCE_DROP}"]


def test_confidences_may_be_full_probability_rows():
    frames = make_dataset(10, seed=0, size=SIZE).x
    probs = np.tile([0.7, 0.2, 0.1], (10, 1))
    assert Reference.from_frames(frames, confidences=probs).confidence == pytest.approx(0.7)


def test_reference_round_trips_through_json():
    ref = Reference.from_frames(make_dataset(20, seed=0, size=SIZE).x, confidences=np.full(20, 0.9))
    assert Reference.from_json(ref.to_json()) == ref


def test_check_needs_a_window_of_frames(monitor):
    with pytest.raises(ValueError, match=r"\(n, h, w\)"):
        monitor.check(np.zeros((SIZE, SIZE), np.uint8))


def test_prediction_log_in_the_store_gives_the_same_verdict(monitor, tmp_path):
    frames = make_dataset(64, seed=9, conditions="night", size=SIZE).x
    probs = np.tile([0.5, 0.3, 0.2], (64, 1))
    with Store(tmp_path / "kit.db") as store:
        log = PredictionLog(store)
        log.append_many(frames[:32], probs[:32], ts=1.0)
        for f, p in zip(frames[32:], probs[32:]):
            log.append(f, p, ts=2.0)
        assert log.count() == 64 and log.count("queue") == 64 and log.count("other") == 0
        from_log = monitor.check_log(log, last=64)
        direct = monitor.check(frames, confidences=probs)
        assert from_log.drift and direct.drift
        assert from_log.psi == pytest.approx(direct.psi, rel=1e-3)
        assert from_log.layout_z == pytest.approx(direct.layout_z, rel=1e-2)
        assert from_log.confidence == pytest.approx(0.5)
        row = next(store.db.query("select * from ml_predictions order by id limit 1"))
        assert set(row) == {"id", "ts", "model", "predicted", "confidence", "mean_intensity", "histogram", "layout"}
    # the table survives reopening the store, and opening by path works
    log = PredictionLog(tmp_path / "kit.db")
    assert log.count() == 64
    assert list(log.window(last=3)["predicted"]) == [0, 0, 0]


def test_empty_log_explains_itself(monitor):
    with pytest.raises(ValueError, match="no rows yet"):
        monitor.check_log(PredictionLog(Store(":memory:")))


def test_prediction_log_refuses_other_things():
    with pytest.raises(TypeError, match="kit.store.Store"):
        PredictionLog(42)

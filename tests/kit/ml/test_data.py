"""Datasets: seeded, labelled from the scene, conditions selectable, saved as .npz."""

from __future__ import annotations

import numpy as np
import pytest

from kit.ml import data
from kit.ml.data import QUEUE_CLASSES, Dataset, load, make_dataset, queue_class, save

pytestmark = pytest.mark.tflite  # numpy only: runs in the tflite-runtime environment too


def test_queue_classes():
    assert QUEUE_CLASSES == ("empty", "short", "long")
    assert [queue_class(n) for n in (0, 1, 3, 4, 12)] == [0, 1, 1, 2, 2]
    with pytest.raises(ValueError):
        queue_class(-1)


def test_make_dataset_shapes_labels_and_balance():
    d = make_dataset(300, seed=0)
    assert isinstance(d, Dataset) and len(d) == 300
    assert d.x.shape == (300, 64, 64) and d.x.dtype == np.uint8
    assert np.array_equal(d.queue, [queue_class(n) for n in d.meta["queue_length"]])
    assert np.array_equal(d.pedestrian, (d.meta["pedestrians_waiting"] > 0).astype(int))
    counts = np.bincount(d.queue, minlength=3)
    assert counts.min() > 70, f"classes drawn in about equal shares, got {counts}"
    assert 0.35 < d.pedestrian.mean() < 0.65
    assert d.inputs().shape == (300, 64, 64, 1) and d.inputs().dtype == np.float32
    assert float(d.inputs().max()) <= 1.0


def test_same_seed_same_data_other_seed_other_data():
    a, b, c = make_dataset(20, seed=1), make_dataset(20, seed=1), make_dataset(20, seed=2)
    assert np.array_equal(a.x, b.x) and np.array_equal(a.queue, b.queue)
    assert not np.array_equal(a.x, c.x)


def test_conditions_are_respected():
    night = make_dataset(50, seed=3, conditions="night")
    assert night.meta["daylight"].max() <= 0.15
    leafy = make_dataset(50, seed=3, conditions={"leaves": (0.3, 0.5), "road_works": True})
    assert leafy.meta["leaves"].min() >= 0.3 and leafy.meta["road_works"].all()
    day = make_dataset(50, seed=3, conditions="day")
    assert day.meta["daylight"].min() >= 0.6 and day.meta["leaves"].max() == 0
    assert night.x.mean() < day.x.mean()


def test_diverted_works_are_an_optional_condition_that_leaves_older_sets_unchanged():
    works = make_dataset(20, seed=3, conditions={"diverted": 1.0})
    assert works.meta["diverted"].all() and works.meta["road_works"].all()
    assert works.meta["conditions"]["diverted"] == 1.0
    plain = make_dataset(20, seed=3, conditions={"diverted": 0.0})
    before = make_dataset(20, seed=3)
    assert "diverted" not in before.meta["conditions"] and "diverted" not in before.meta
    assert np.array_equal(plain.x, before.x) and np.array_equal(plain.queue, before.queue)
    assert np.array_equal(works.queue, before.queue)  # the same scenes, the works' layout drawn
    with pytest.raises(ValueError, match="diverted is a probability"):
        make_dataset(2, seed=0, conditions={"diverted": 2})


def test_bad_conditions_name_the_problem():
    with pytest.raises(ValueError, match="unknown conditions preset 'nite'"):
        make_dataset(2, seed=0, conditions="nite")
    with pytest.raises(ValueError, match="fog"):
        make_dataset(2, seed=0, conditions={"fog": (0, 1)})
    with pytest.raises(ValueError, match="daylight"):
        make_dataset(2, seed=0, conditions={"daylight": (0.5, 2.0)})
    with pytest.raises(ValueError, match="number of frames"):
        make_dataset(-1, seed=0)


def test_save_and_load_roundtrip(tmp_path):
    d = make_dataset(12, seed=4, conditions="leaves", size=32)
    path = save(d, tmp_path / "frames.npz")
    back = load(path)
    assert np.array_equal(back.x, d.x) and np.array_equal(back.queue, d.queue)
    assert np.array_equal(back.pedestrian, d.pedestrian)
    assert np.allclose(back.meta["leaves"], d.meta["leaves"])
    assert back.meta["seed"] == 4 and back.meta["conditions"]["leaves"] == [0.25, 0.6]
    with pytest.raises(FileNotFoundError, match="make_dataset"):
        load(tmp_path / "missing.npz")


def test_subset_keeps_meta_aligned():
    d = make_dataset(30, seed=5)
    long_only = d.subset(d.queue == 2)
    assert (long_only.meta["queue_length"] >= data.LONG_QUEUE).all()
    assert len(long_only) == int((d.queue == 2).sum())


# -- the whole day: frames with the sensor vector of the same moment ---------------------------
from kit.ml.data import FUSED_PRESETS, make_fused_dataset, resolve_fused  # noqa: E402
from kit.ml.sensors import SENSORS  # noqa: E402


@pytest.fixture(scope="module")
def night():
    return make_fused_dataset(120, seed=3, conditions="night")


def test_fused_set_is_seeded_and_carries_the_moments_sensors(night, tmp_path):
    again = make_fused_dataset(120, seed=3, conditions="night")
    assert np.array_equal(night.x, again.x) and np.array_equal(night.sensors, again.sensors)
    assert night.sensors.shape == (120, len(SENSORS)) and night.sensors.dtype == np.float32
    assert float(night.meta["daylight"].max()) == 0.0, "night frames are taken when the world is dark"
    hours = night.meta["hour"]
    assert ((hours >= 18.8) | (hours <= 6.2)).all()
    # the light sensor reads the world's street light at night, scaled 0..1 (noise aside)
    assert np.abs(night.sensors[:, 2] - night.meta["light"]).max() < 0.1 and night.meta["light"].max() < 0.1
    # the distance sensor sees the queue's tail: long queues read nearer than empty lanes (dropouts aside)
    d = night.sensors[:, 0]
    assert np.median(d[night.queue == 2]) < np.median(d[night.queue == 1]) < np.median(d[night.queue == 0])
    # the PIR fires mostly when someone waits
    assert night.sensors[night.pedestrian == 1, 1].mean() > 0.8 > 0.2 > night.sensors[night.pedestrian == 0, 1].mean()
    path = night.save(tmp_path / "night.npz")
    assert np.array_equal(load(path).sensors, night.sensors)
    assert night.subset(night.queue == 2).sensors.shape[0] == int((night.queue == 2).sum())
    assert set(night.fused_inputs()) == {"frame", "sensors"}


def test_darker_frames_at_night_than_by_day(night):
    day = make_fused_dataset(60, seed=3, conditions="day")
    assert day.meta["daylight"].min() > 0.3
    assert day.x.mean() > night.x.mean() + 20
    assert day.sensors[:, 2].mean() > 0.3 > night.sensors[:, 2].mean()


def test_stuck_preset_sticks_one_sensor_unnoticed_and_flagged_masks_it():
    stuck = make_fused_dataset(60, seed=4, conditions="stuck")
    assert (stuck.meta["stuck"] > 0).all() and not stuck.meta["stuck_known"].any()
    assert (stuck.sensors[:, 4:] == 1).all(), "nobody noticed: the ok flags stay on"
    flagged = make_fused_dataset(60, seed=4, conditions="stuck_flagged")
    ok = flagged.sensors[:, 4:]
    assert (ok.sum(axis=1) == 1).all(), "exactly one sensor flagged per frame"


def test_fused_conditions_are_checked():
    assert "train" in FUSED_PRESETS and resolve_fused("leaves")["leaves"][0] == 1.0
    with pytest.raises(ValueError, match="preset"):
        make_fused_dataset(4, seed=0, conditions="snow")
    with pytest.raises(ValueError, match="unknown fused"):
        resolve_fused({"hail": (1, 0, 1)})
    with pytest.raises(ValueError, match="probability"):
        resolve_fused({"fog": (2, 0, 1)})
    with pytest.raises(ValueError, match="hours"):
        resolve_fused({"hours": "brunch"})

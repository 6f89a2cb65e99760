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

"""kit.ml.multitask: shared backbone with two heads vs two single-task models."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def models_and_data():
    pytest.importorskip("tensorflow")
    from kit.ml.data import make_dataset
    from kit.ml.multitask import train_models

    train = make_dataset(64, seed=0, size=32)
    return train_models(train, epochs=1, width=0.25, seed=0), make_dataset(24, seed=9, size=32)


def test_single_task_models_have_one_head_each(models_and_data):
    models, _ = models_and_data
    assert sorted(models["shared"].output_names) == ["pedestrian", "queue"]
    assert models["queue"].output_names == ["queue"] and models["pedestrian"].output_names == ["pedestrian"]


def test_compare_shared_vs_separate(models_and_data, tmp_path):
    from kit.ml.multitask import compare, count_params

    models, test = models_and_data
    report = compare(models, test, runs=10, folder=tmp_path)
    shared, separate = report["shared"], report["separate"]
    # the shared model holds one backbone, the separate pair two
    assert shared["params"] < separate["params"] < 2 * shared["params"]
    assert separate["params"] == count_params(models["queue"]) + count_params(models["pedestrian"])
    for side in (shared, separate):
        assert side["ms"] > 0 and 0 <= side["queue_accuracy"] <= 1 and 0 <= side["pedestrian_f1"] <= 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pedestrian.tflite", "queue.tflite", "shared.tflite"]


def test_unknown_head_and_missing_model_are_refused(models_and_data):
    from kit.ml.multitask import compare, single_task

    models, test = models_and_data
    with pytest.raises(ValueError, match="unknown head 'speed'"):
        single_task(models["shared"], "speed")
    with pytest.raises(ValueError, match="missing \\['pedestrian'\\]"):
        compare({"shared": models["shared"], "queue": models["queue"]}, test)

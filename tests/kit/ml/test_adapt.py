import numpy as np
import pytest

from kit.ml.adapt import Adapter, HeadStore, SoftmaxHead, export_feature_extractor
from kit.ml.data import make_dataset
from kit.store import Store


def _head(seed=0, d=8, k=3):
    rng = np.random.default_rng(seed)
    return SoftmaxHead(rng.normal(size=(d, k)), rng.normal(size=k))


def test_head_fit_learns_separable_data_and_is_seeded():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 90)
    x = np.eye(3)[y] * 3 + rng.normal(0, 0.3, (90, 3))
    head = SoftmaxHead(np.zeros((3, 3)), np.zeros(3))
    trained = head.fit(x, y, epochs=30, lr=0.1, l2=0.0, seed=1)
    assert np.mean(trained.predict_proba(x).argmax(1) == y) > 0.95
    again = head.fit(x, y, epochs=30, lr=0.1, l2=0.0, seed=1)
    assert np.array_equal(trained.weights, again.weights)
    assert np.array_equal(head.weights, np.zeros((3, 3)))  # fit returns a new head


def test_l2_keeps_the_head_near_where_it_started():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(30, 8)), rng.integers(0, 3, 30)
    start = _head()
    loose = start.fit(x, y, l2=0.0, seed=0)
    tight = start.fit(x, y, l2=5.0, seed=0)
    assert np.abs(tight.weights - start.weights).sum() < np.abs(loose.weights - start.weights).sum()


def test_head_errors_say_what_is_expected():
    with pytest.raises(ValueError, match=r"\(features, classes\)"):
        SoftmaxHead(np.zeros(3), np.zeros(3))
    with pytest.raises(ValueError, match=r"\(n, 8\)"):
        _head().predict_proba(np.zeros((2, 5)))
    with pytest.raises(ValueError, match="class indices 0..2"):
        _head().fit(np.zeros((2, 8)), np.array([0, 7]))


def test_head_round_trips_through_bytes_and_files(tmp_path):
    head = _head()
    back = SoftmaxHead.load(head.save(tmp_path / "h.npz"))
    assert np.array_equal(back.weights, head.weights) and np.array_equal(back.bias, head.bias)


def test_head_versions_in_the_store(tmp_path):
    with Store(tmp_path / "kit.db") as store:
        heads = HeadStore(store)
        v1 = heads.save(_head(0), note="factory")
        v2 = heads.save(_head(1), note="night, 30 frames", n_examples=30, metrics={"before": 0.6, "after": 0.7})
        assert (v1, v2) == (1, 2)
        assert np.array_equal(heads.load().weights, _head(1).weights)
        assert np.array_equal(heads.load(1).weights, _head(0).weights)  # roll back
        listed = heads.versions()
        assert [v["version"] for v in listed] == [1, 2]
        assert listed[1]["metrics"] == {"before": 0.6, "after": 0.7} and listed[1]["n_examples"] == 30
        assert "weights" not in listed[0]
        assert listed[0]["sha256"] != listed[1]["sha256"]
        # other models' heads are separate
        assert HeadStore(store, model="pedestrian").versions() == []
    assert len(HeadStore(tmp_path / "kit.db").versions()) == 2  # reopened by path


def test_missing_version_is_explained():
    heads = HeadStore(Store(":memory:"))
    with pytest.raises(LookupError, match="stored versions: none"):
        heads.load()
    heads.save(_head())
    with pytest.raises(LookupError, match=r"version 9; stored versions: \[1\]"):
        heads.load(9)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    pytest.importorskip("tensorflow")
    from kit.ml.model import load_keras

    path = tmp_path_factory.mktemp("adapt") / "features.tflite"
    head = export_feature_extractor(load_keras("intersection"), path)
    return path, head


@pytest.mark.slow
def test_exported_extractor_and_head_predict_what_the_shipped_model_does(exported):
    from kit.ml import shipped_model
    from kit.ml.host import ModelHost

    path, head = exported
    frames = make_dataset(32, seed=5).x
    adapter = Adapter(path, head)
    assert adapter.features(frames).shape == (32, head.n_features)
    full = ModelHost(shipped_model()).predict(frames)["queue"]
    assert np.allclose(adapter.predict_proba(frames), full, atol=1e-4)


@pytest.mark.slow
def test_a_few_night_frames_improve_night_accuracy_without_tensorflow_on_the_device(exported):
    path, head = exported
    adapter = Adapter(path, head)
    test = make_dataset(200, seed=61, conditions="night")
    before = adapter.accuracy(test.x, test.queue)
    after = []
    for seed in range(3):  # three operators label 30 frames each: the gain is the average
        few = make_dataset(30, seed=62 + seed, conditions="night")
        adapter.reset()
        adapter.adapt(few.x, few.queue, seed=seed)
        after.append(adapter.accuracy(test.x, test.queue))
    assert np.mean(after) > before + 0.03, (before, after)
    adapter.reset()
    assert adapter.accuracy(test.x, test.queue) == before


@pytest.mark.slow
def test_adapter_refuses_a_model_without_features():
    from kit.ml import shipped_model

    with pytest.raises(ValueError, match="export_feature_extractor"):
        Adapter(shipped_model(), _head(d=64))

import numpy as np
import pytest

from kit.ml.federated.task import PROFILES, Net, client_data, features, render_profile


def test_features_are_standardised_thumbnails():
    frames, _ = render_profile(PROFILES[0], 3, seed=0)
    x = features(frames)
    assert x.shape == (3, 256)
    assert np.allclose(x.mean(axis=1), 0, atol=1e-5)
    # halving the light barely changes what the network sees
    dim = features((frames // 2).astype(np.uint8))
    assert min(np.corrcoef(a, b)[0, 1] for a, b in zip(x, dim)) > 0.99
    with pytest.raises(ValueError, match="multiple of 16"):
        features(np.zeros((1, 20, 20), np.uint8))


def test_client_data_is_seeded_and_split():
    train, test = client_data(1, num_partitions=4, n=40, seed=0)
    again, _ = client_data(1, num_partitions=4, n=40, seed=0)
    assert len(train) == 28 and len(test) == 12
    assert np.array_equal(train.frames, again.frames)
    assert train.x.shape == (28, 256) and set(train.y) <= {0, 1, 2}


def test_intersections_are_not_alike():
    """Non-IID: the busy square sees far more long queues than the ring road, and darker frames at the ring road."""
    square, _ = client_data(0, num_partitions=4, n=200, seed=0)
    ring, _ = client_data(2, num_partitions=4, n=200, seed=0)
    assert (square.y == 2).mean() > 2 * (ring.y == 2).mean()
    assert square.frames.mean() > ring.frames.mean() + 30
    assert len({p.name for p in PROFILES}) == 4


def test_client_ids_are_checked():
    with pytest.raises(ValueError, match="partition_id must be in 0..2"):
        client_data(3, num_partitions=3)
    with pytest.raises(ValueError, match="4 intersection profiles"):
        client_data(0, num_partitions=5)


def test_net_learns_and_exchanges_weights():
    train, test = client_data(0, num_partitions=4, n=300, seed=0)
    net = Net(seed=0)
    before = net.evaluate(test.x, test.y)
    net.fit(train.x, train.y, epochs=10, lr=0.02, seed=0)
    after = net.evaluate(test.x, test.y)
    assert after["loss"] < before["loss"] and after["accuracy"] > before["accuracy"] + 0.1
    copy = Net(seed=5).set_weights(net.get_weights())
    assert np.allclose(copy.predict_proba(test.x), net.predict_proba(test.x))


def test_net_training_is_deterministic():
    train, _ = client_data(2, num_partitions=4, n=60, seed=0)
    a, b = Net(seed=1), Net(seed=1)
    a.fit(train.x, train.y, epochs=2, seed=3)
    b.fit(train.x, train.y, epochs=2, seed=3)
    assert all(np.array_equal(u, v) for u, v in zip(a.get_weights(), b.get_weights()))


def test_wrong_weights_are_explained():
    with pytest.raises(ValueError, match="do not fit this network"):
        Net().set_weights([np.zeros((3, 3))])

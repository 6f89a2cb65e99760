"""Grades lab 08 (learning at the edge): PSI, a debounced drift alarm, augmentation, GCE, a head step, FedAvg."""

import pytest

# The Flower simulation cell starts Ray: give it room on a busy machine.
pytestmark = pytest.mark.notebook("08_learning_at_the_edge", cell_timeout=240, notebook_timeout=600)


def _check_psi():
    import numpy as np

    from kit.ml.drift import psi as kit_psi

    rng = np.random.default_rng(80)
    for _ in range(5):
        e, a = rng.dirichlet(np.ones(16)), rng.dirichlet(np.ones(16))
        got = psi(e, a)
        assert isinstance(got, float), f"psi should return a float, got {type(got).__name__}"
        assert abs(got - kit_psi(e, a)) < 1e-9, (
            f"PSI of two random histograms: expected {kit_psi(e, a):.6f}, got {got:.6f}"
        )
    e = np.array([0.5, 0.5, 0.0])
    assert abs(psi(e, [0.0, 0.5, 0.5]) - kit_psi(e, [0.0, 0.5, 0.5])) < 1e-9, "clip empty bins to eps, then renormalise"
    assert abs(psi(e, [0.0, 0.5, 0.5], eps=1e-2) - kit_psi(e, [0.0, 0.5, 0.5], eps=1e-2)) < 1e-9, "use the eps argument"


@pytest.mark.points(2)
def test_psi(lab):
    lab.run(_check_psi)


def _check_first_alarm():
    assert first_alarm([0.3, 0.1, 0.3, 0.3, 0.3]) == 2, "the first run of two values above 0.25 starts at index 2"
    assert first_alarm([0.3, 0.1, 0.3, 0.3], patience=3) is None, "no run of three"
    assert first_alarm([0.26, 0.27, 0.28], patience=3) == 0
    assert first_alarm([0.25, 0.25]) is None, "a value equal to the threshold is not above it"
    assert first_alarm([0.5, 0.6, 0.1], threshold=0.55, patience=1) == 1
    assert first_alarm([]) is None


@pytest.mark.points(2)
def test_first_alarm(lab):
    lab.run(_check_first_alarm)
    # on the lab's own autumn, the alarm comes once the leaves really cover the lens, not before
    day = lab.eval("None if alarm is None else int(days[alarm])")
    assert day is not None and 10 < day < 48, f"expected the autumn alarm between day 10 and 48, got {day}"


def _check_augmented_training_set():
    import numpy as np

    from kit.ml.data import make_dataset

    d = make_dataset(12, seed=81, size=32)
    x, y = augmented_training_set(d.x, d.queue, seed=5)
    assert x.shape == (24, 32, 32) and x.dtype == np.uint8, f"expected (24, 32, 32) uint8, got {x.shape} {x.dtype}"
    assert np.array_equal(x[:12], d.x), "the original frames come first, unchanged"
    assert np.array_equal(np.asarray(y), np.concatenate([d.queue, d.queue])), "labels repeated to match"
    x2, _ = augmented_training_set(d.x, d.queue, seed=5)
    x3, _ = augmented_training_set(d.x, d.queue, seed=6)
    assert np.array_equal(x, x2), "the same seed must give the same augmented frames"
    assert not np.array_equal(x[12:], x3[12:]), "another seed gives other augmented frames"
    assert (x[12:] != d.x).any(axis=(1, 2)).sum() >= 6, "most copies should actually be augmented"


@pytest.mark.points(2)
def test_augmented_training_set(lab):
    lab.run(_check_augmented_training_set)
    rows = lab.eval("sorted(aug_table)")
    assert rows == ["augmented", "no augmentation"], f"the lab's augmentation table has rows {rows}"


def _check_gce():
    import numpy as np

    from kit.ml.robust import generalized_cross_entropy, softmax

    rng = np.random.default_rng(82)
    probs = softmax(rng.normal(size=(20, 3)) * 3)
    labels = rng.integers(0, 3, 20)
    for q in (0.7, 0.3, 1.0):
        got = gce(probs, labels, q=q)
        want = generalized_cross_entropy(probs, labels, q=q)
        assert abs(got - want) < 1e-6, f"q={q}: expected {want:.6f}, got {got:.6f}"
    tiny = np.array([[0.0, 1.0, 0.0]])
    assert np.isfinite(gce(tiny, np.array([0]))), "clip p_y to 1e-7"


@pytest.mark.points(2)
def test_gce(lab):
    lab.run(_check_gce)


def _check_head_step():
    import numpy as np

    from kit.ml.robust import logit_gradient

    rng = np.random.default_rng(83)
    W, b = rng.normal(size=(6, 3)), rng.normal(size=3)
    x, y = rng.normal(size=(5, 6)), rng.integers(0, 3, 5)
    W0, b0 = W.copy(), b.copy()
    W1, b1 = head_step(W, b, x, y, lr=0.1)
    g = logit_gradient(x @ W0 + b0, y, loss="ce")
    assert np.allclose(W1, W0 - 0.1 * x.T @ g), "W <- W - lr * x.T @ g, with g = (softmax - onehot) / n"
    assert np.allclose(b1, b0 - 0.1 * g.sum(axis=0)), "b <- b - lr * g summed over the rows"
    assert np.array_equal(W, W0) and np.array_equal(b, b0), "do not change W and b in place"
    big = head_step(W0, b0, x * 100, y, lr=0.1)[0]
    assert np.isfinite(big).all(), "subtract the row maximum before exp: large logits must not overflow"


@pytest.mark.points(2)
def test_head_step(lab):
    lab.run(_check_head_step)
    before, after = lab.eval("[before, after]")
    assert after > before, f"adapting on 30 night frames should raise night accuracy: {before:.3f} -> {after:.3f}"


def _check_fedavg():
    import numpy as np

    rng = np.random.default_rng(84)
    clients = [[rng.normal(size=(4, 3)), rng.normal(size=3)] for _ in range(3)]
    n = [10, 30, 60]
    got = fedavg(clients, n)
    assert len(got) == 2, f"one array per layer, got {len(got)}"
    for i in range(2):
        want = sum(k * c[i] for k, c in zip(n, clients)) / sum(n)
        assert np.allclose(got[i], want), f"layer {i}: the average weighted by examples"
    assert np.asarray(got[0]).shape == (4, 3)


@pytest.mark.points(2)
def test_fedavg(lab):
    lab.run(_check_fedavg)


def _check_federation_ran():
    import numpy as np

    mine = fedavg([history["weights"], history["weights"]], [1, 2])
    assert all(np.allclose(a, b) for a, b in zip(mine, history["weights"])), "your fedavg of a model with itself"
    assert history["accuracy"][-1] > history["accuracy"][0] + 0.05, f"FedAvg should improve: {history['accuracy']}"
    assert len(history["manifest"]) == 4 * settings["rounds"], "four intersections answered every round"
    assert all(set(m["content"]) == {"arrays", "metrics"} for m in history["manifest"]), "only weights and metrics"
    assert len(alone["own"]) == 4 and 0 < pooled["overall"] <= 1


@pytest.mark.points(1)
def test_federation_ran_with_flower(lab):
    lab.run(_check_federation_ran)

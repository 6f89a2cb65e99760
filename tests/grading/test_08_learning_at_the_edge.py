"""Grades lab 08 (learning at the edge): PSI, a debounced drift alarm, augmentation, GCE, a head step, FedAvg.

Each ``_observe_*`` function runs in the student's kernel and only gathers values; each test judges them here, in
the grader's process (against the kit's own functions or its own arithmetic), on inputs drawn from ``grading_rng``
(fresh for every grading run).
"""

import pytest

# The Flower simulation cell starts Ray: give it room on a busy machine.
pytestmark = pytest.mark.notebook("08_learning_at_the_edge", cell_timeout=240, notebook_timeout=600)


def _np_rng(grading_rng):
    """A numpy generator drawn from the test's stream (the student cannot know its seed)."""
    import numpy as np

    return np.random.default_rng(grading_rng.randrange(2**32))


def _observe_psi(cases):
    import numpy as np

    out = []
    for e, a, kwargs in cases:
        got = psi(np.array(e), np.array(a), **kwargs)
        out.append({"type": type(got).__name__, "value": float(got)})
    return out


@pytest.mark.points(2)
def test_psi(lab, grading_rng):
    import numpy as np

    from kit.ml.drift import psi as kit_psi

    rng = _np_rng(grading_rng)
    cases = []
    for _ in range(5):
        bins = int(rng.integers(4, 20))
        cases.append([rng.dirichlet(np.ones(bins)).tolist(), rng.dirichlet(np.ones(bins)).tolist(), {}])
    # empty bins: clip to eps, renormalise, and use the eps the caller gives
    e = rng.dirichlet(np.ones(6))
    e[int(rng.integers(0, 6))] = 0.0
    e /= e.sum()
    a = rng.dirichlet(np.ones(6))
    a[int(rng.integers(0, 6))] = 0.0
    a /= a.sum()
    cases += [[e.tolist(), a.tolist(), {}], [e.tolist(), a.tolist(), {"eps": float(rng.choice([1e-2, 1e-3]))}]]
    got = lab.observe(_observe_psi, cases)
    for (e, a, kwargs), answer in zip(cases, got, strict=True):
        want = kit_psi(np.array(e), np.array(a), **kwargs)
        assert answer["type"] == "float", f"psi should return a float, got {answer['type']}"
        assert abs(answer["value"] - want) < 1e-9, (
            f"PSI of two histograms {kwargs or ''}: expected {want:.6f}, got {answer['value']:.6f}"
            + (" (clip empty bins to eps, then renormalise; use the eps argument)" if 0.0 in e + a else "")
        )


def _observe_first_alarm(cases):
    return [first_alarm(values, **kwargs) for values, kwargs in cases]


def _first_alarm(values, threshold=0.25, patience=2):
    """The grader's own rule: start of the first run of ``patience`` values strictly above ``threshold``."""
    for i in range(len(values) - patience + 1):
        if all(v > threshold for v in values[i : i + patience]):
            return i
    return None


def _observe_lab_alarm():
    return {"psis": [float(v) for v in psis], "days": [int(d) for d in days], "alarm": alarm}


@pytest.mark.points(2)
def test_first_alarm(lab, grading_rng):
    cases = [[[0.25, 0.25], {}], [[], {}], [[0.3, 0.1, 0.3, 0.3], {"patience": 3}]]
    for _ in range(8):
        threshold = round(grading_rng.uniform(0.1, 0.5), 2)
        values = [round(grading_rng.uniform(0, 2 * threshold), 3) for _ in range(grading_rng.randint(3, 12))]
        if values and grading_rng.random() < 0.5:
            values[grading_rng.randrange(len(values))] = threshold  # equal to the threshold is not above it
        kwargs = {"threshold": threshold} if grading_rng.random() < 0.8 else {}
        if grading_rng.random() < 0.7:
            kwargs["patience"] = grading_rng.randint(1, 4)
        cases.append([values, kwargs])
    got = lab.observe(_observe_first_alarm, cases)
    for (values, kwargs), answer in zip(cases, got, strict=True):
        expected = _first_alarm(values, **kwargs)
        assert answer == expected, (
            f"first_alarm({values}, {kwargs}): the first run of values above the threshold starts at "
            f"{expected}, got {answer!r}"
        )
    # on the lab's own autumn, the alarm comes once the leaves really cover the lens, not before
    mine = lab.observe(_observe_lab_alarm)
    assert mine["alarm"] == _first_alarm(mine["psis"]), (
        f"alarm = first_alarm(psis) on the lab's PSIs should be {_first_alarm(mine['psis'])}, got {mine['alarm']!r}"
    )
    day = None if mine["alarm"] is None else mine["days"][mine["alarm"]]
    assert day is not None and 10 < day < 48, f"expected the autumn alarm between day 10 and 48, got {day}"


def _observe_augmented_training_set(n, data_seed, seed, other_seed):
    import numpy as np

    from kit.ml.data import make_dataset

    d = make_dataset(n, seed=data_seed, size=32)
    out = {}
    for key, s in (("x", seed), ("again", seed), ("other", other_seed)):
        x, y = augmented_training_set(d.x, d.queue, seed=s)
        x = np.asarray(x)
        out[key] = {"shape": list(x.shape), "dtype": str(x.dtype), "x": x.astype(np.int64).tolist()}
        out[key]["y"] = np.asarray(y).astype(np.int64).tolist()
    out["rows"] = sorted(aug_table)
    return out


@pytest.mark.points(2)
def test_augmented_training_set(lab, grading_rng):
    import numpy as np

    from kit.ml.data import make_dataset

    n, data_seed = grading_rng.randint(10, 16), grading_rng.randint(1, 100_000)
    seed = grading_rng.randint(0, 10_000)
    got = lab.observe(_observe_augmented_training_set, n, data_seed, seed, seed + grading_rng.randint(1, 1000))
    d = make_dataset(n, seed=data_seed, size=32)
    first = got["x"]
    assert first["shape"] == [2 * n, 32, 32] and first["dtype"] == "uint8", (
        f"{n} frames: expected ({2 * n}, 32, 32) uint8, got {tuple(first['shape'])} {first['dtype']}"
    )
    x = np.array(first["x"])
    assert np.array_equal(x[:n], d.x), "the original frames come first, unchanged"
    assert first["y"] == np.concatenate([d.queue, d.queue]).tolist(), "labels repeated to match"
    assert got["again"]["x"] == first["x"], "the same seed must give the same augmented frames"
    assert got["other"]["shape"] == first["shape"] and not np.array_equal(x[n:], np.array(got["other"]["x"])[n:]), (
        "another seed gives other augmented frames"
    )
    assert (x[n:] != d.x).any(axis=(1, 2)).sum() >= n // 2, "most copies should actually be augmented"
    assert got["rows"] == ["augmented", "no augmentation"], f"the lab's augmentation table has rows {got['rows']}"


def _observe_gce(cases):
    import numpy as np

    return [float(gce(np.array(p), np.array(y), **kwargs)) for p, y, kwargs in cases]


@pytest.mark.points(2)
def test_gce(lab, grading_rng):
    import numpy as np

    from kit.ml.robust import generalized_cross_entropy, softmax

    rng = _np_rng(grading_rng)
    cases = []
    for q in (round(float(rng.uniform(0.2, 0.9)), 3), 1.0, None):
        n = int(rng.integers(5, 30))
        probs = softmax(rng.normal(size=(n, 3)) * 3)
        cases.append([probs.tolist(), rng.integers(0, 3, n).tolist(), {} if q is None else {"q": q}])
    cases.append([[[0.0, 1.0, 0.0]], [0], {}])  # p_y = 0: clip it to 1e-7
    got = lab.observe(_observe_gce, cases)
    for (probs, labels, kwargs), answer in zip(cases, got, strict=True):
        want = generalized_cross_entropy(np.array(probs), np.array(labels), **kwargs)
        assert np.isfinite(answer), "clip p_y to 1e-7"
        assert abs(answer - want) < 1e-6, f"{kwargs or 'q=0.7 (the default)'}: expected {want:.6f}, got {answer:.6f}"


def _observe_head_step(W, b, x, y, lr):
    import numpy as np

    W, b, x, y = np.array(W), np.array(b), np.array(x), np.array(y)
    W1, b1 = head_step(W, b, x, y, lr=lr)
    big = head_step(W, b, x * 100, y, lr=lr)[0]
    return {
        "W1": np.asarray(W1, dtype=float).tolist(),
        "b1": np.asarray(b1, dtype=float).tolist(),
        "W_after": W.tolist(),
        "b_after": b.tolist(),
        "big_finite": bool(np.isfinite(np.asarray(big, dtype=float)).all()),
        "before_after": [float(before), float(after)],
    }


@pytest.mark.points(2)
def test_head_step(lab, grading_rng):
    import numpy as np

    from kit.ml.robust import logit_gradient

    rng = _np_rng(grading_rng)
    features, n = int(rng.integers(4, 9)), int(rng.integers(4, 9))
    W, b = rng.normal(size=(features, 3)), rng.normal(size=3)
    x, y = rng.normal(size=(n, features)), rng.integers(0, 3, n)
    lr = round(float(rng.uniform(0.01, 0.5)), 3)
    got = lab.observe(_observe_head_step, W.tolist(), b.tolist(), x.tolist(), y.tolist(), lr)
    g = logit_gradient(x @ W + b, y, loss="ce")
    assert np.shape(got["W1"]) == W.shape and np.shape(got["b1"]) == b.shape, "return new (W, b) of the same shapes"
    assert np.allclose(got["W1"], W - lr * x.T @ g), "W <- W - lr * x.T @ g, with g = (softmax - onehot) / n"
    assert np.allclose(got["b1"], b - lr * g.sum(axis=0)), "b <- b - lr * g summed over the rows"
    assert np.array_equal(got["W_after"], W) and np.array_equal(got["b_after"], b), "do not change W and b in place"
    assert got["big_finite"], "subtract the row maximum before exp: large logits must not overflow"
    before, after = got["before_after"]
    assert after > before, f"adapting on 30 night frames should raise night accuracy: {before:.3f} -> {after:.3f}"


def _observe_fedavg(clients, n):
    import numpy as np

    got = fedavg([[np.array(layer) for layer in c] for c in clients], n)
    return [np.asarray(layer, dtype=float).tolist() for layer in got]


@pytest.mark.points(2)
def test_fedavg(lab, grading_rng):
    import numpy as np

    rng = _np_rng(grading_rng)
    shapes = [(int(rng.integers(2, 6)), int(rng.integers(2, 5))), (int(rng.integers(2, 5)),)]
    clients = [[rng.normal(size=s) for s in shapes] for _ in range(int(rng.integers(2, 5)))]
    n = rng.integers(5, 100, len(clients)).tolist()
    got = lab.observe(_observe_fedavg, [[layer.tolist() for layer in c] for c in clients], n)
    assert len(got) == len(shapes), f"one array per layer, got {len(got)}"
    for i, shape in enumerate(shapes):
        want = sum(k * c[i] for k, c in zip(n, clients, strict=True)) / sum(n)
        assert np.shape(got[i]) == shape, f"layer {i}: expected shape {shape}, got {np.shape(got[i])}"
        assert np.allclose(got[i], want), f"layer {i}: the average weighted by examples ({n})"


def _observe_federation(a, b):
    import numpy as np

    weights = [np.asarray(w) for w in history["weights"]]
    return {
        "weights": [w.astype(float).tolist() for w in weights],
        "mine": [np.asarray(w, dtype=float).tolist() for w in fedavg([weights, weights], [a, b])],
        "accuracy": [float(v) for v in history["accuracy"]],
        "per_client": [[float(v) for v in row] for row in history["per_client"]],
        "manifest": [sorted(m["content"]) for m in history["manifest"]],
        "settings": {key: settings[key] for key in ("rounds", "samples_per_client", "seed")},
        "alone_own": len(alone["own"]),
        "pooled": float(pooled["overall"]),
    }


@pytest.mark.points(1)
def test_federation_ran_with_flower(lab, grading_rng):
    import numpy as np

    from kit.ml.federated.task import Net, client_data

    got = lab.observe(_observe_federation, grading_rng.randint(1, 9), grading_rng.randint(1, 9))
    shapes = [list(w.shape) for w in Net().get_weights()]
    assert [list(np.shape(w)) for w in got["weights"]] == shapes, f"the global model's weights have shapes {shapes}"
    assert len(got["mine"]) == len(got["weights"]) and all(
        np.allclose(a, b) for a, b in zip(got["mine"], got["weights"], strict=True)
    ), "your fedavg of a model with itself"
    assert got["accuracy"][-1] > got["accuracy"][0] + 0.05, f"FedAvg should improve: {got['accuracy']}"
    rounds = got["settings"]["rounds"]
    assert len(got["manifest"]) == 4 * rounds, "four intersections answered every round"
    assert all(m == ["arrays", "metrics"] for m in got["manifest"]), "only weights and metrics"
    assert got["alone_own"] == 4 and 0 < got["pooled"] <= 1
    # The accuracies are those of real weights on real frames: one intersection's benchmark, rendered here, scored
    # with the starting model (Net(seed)) and with the final global weights (equal-sized benchmarks: the overall
    # accuracy is the mean of the four).
    pid, seed = grading_rng.randrange(4), int(got["settings"]["seed"])
    n = int(got["settings"]["samples_per_client"]) // 2
    _, bench = client_data(pid, num_partitions=4, n=n, seed=seed + 7919, test_share=0.5)  # server_app's benchmark
    first = Net(seed=seed).evaluate(bench.x, bench.y)["accuracy"]
    last = Net().set_weights([np.asarray(w, dtype=np.float32) for w in got["weights"]]).evaluate(bench.x, bench.y)
    per_client = got["per_client"]
    assert len(per_client) == rounds + 1 and all(len(row) == 4 for row in per_client), (
        "one accuracy per intersection per round"
    )
    for row, overall in ((per_client[0], got["accuracy"][0]), (per_client[-1], got["accuracy"][-1])):
        assert abs(np.mean(row) - overall) < 1e-6, "the overall accuracy is the mean over the four intersections"
    assert abs(per_client[0][pid] - first) <= 0.0101 and abs(per_client[-1][pid] - last["accuracy"]) <= 0.0101, (
        f"intersection {pid}: the starting model and the final weights score {first:.2f} and {last['accuracy']:.2f} "
        f"on its benchmark, the history says {per_client[0][pid]:.2f} and {per_client[-1][pid]:.2f}"
    )

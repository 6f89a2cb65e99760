"""Grades lab 07 (edge techniques): early-exit rule and threshold, the split cost model, a single-task model, one capture per tick."""

import pytest

# the lab trains two small models and cuts one into 16 parts: ~30 s alone, more on a machine grading many at once
pytestmark = pytest.mark.notebook("07_edge_techniques", cell_timeout=180, notebook_timeout=600)


def _check_exit_mask():
    import numpy as np

    probs = np.array([[0.9, 0.05, 0.05], [0.34, 0.33, 0.33], [0.6, 0.4, 0.0], [0.1, 0.2, 0.7]])
    got = np.asarray(exit_mask(probs, 0.6))
    assert got.dtype == bool, f"exit_mask should return booleans, got dtype {got.dtype}"
    assert got.tolist() == [True, False, True, True], (
        f"threshold 0.6: expected [True, False, True, True], got {got.tolist()}"
    )
    assert np.asarray(exit_mask(probs, 0.95)).tolist() == [False] * 4, "threshold 0.95: no frame is that sure"


@pytest.mark.points(1)
def test_exit_mask(lab):
    lab.run(_check_exit_mask)


def _check_choose_threshold():
    import numpy as np

    from kit.ml.early_exit import sweep

    rng = np.random.default_rng(11)
    n = 500
    labels = rng.integers(0, 3, n)
    conf = rng.uniform(0.34, 1.0, n)
    # the surer the exit head, the likelier it is right
    right = rng.random(n) < conf
    guess = np.where(right, labels, (labels + rng.integers(1, 3, n)) % 3)
    exit_p = np.full((n, 3), 0.0)
    exit_p[np.arange(n), guess] = conf
    for j in range(3):
        exit_p[:, j] += np.where(np.arange(3)[j] == guess, 0.0, (1 - conf) / 2)
    full_p = np.full((n, 3), 0.1)
    full_p[np.arange(n), labels] = 0.8
    full_p[:25] = np.roll(full_p[:25], 1, axis=1)  # the full model is wrong on 5 %
    cands = np.round(np.arange(0.40, 1.0001, 0.01), 2)
    for max_loss in (0.01, 0.05, 0.2):
        t = choose_threshold(exit_p, full_p, labels, max_loss=max_loss, candidates=cands)
        rows = sweep(exit_p, full_p, labels, stem_ms=0, rest_ms=0, thresholds=cands)
        full_acc = (full_p.argmax(1) == labels).mean()
        ok = [r.threshold for r in rows if r.accuracy >= full_acc - max_loss - 1e-12]
        expected = min(ok) if ok else max(cands)
        assert abs(t - expected) < 1e-9, (
            f"max_loss={max_loss}: the lowest threshold within the budget is {expected}, got {t}"
        )
    sure_and_wrong = np.tile([1.0, 0.0, 0.0], (n, 1))  # exits at every threshold, right only a third of the time
    never = choose_threshold(sure_and_wrong, full_p, labels, max_loss=0.0, candidates=cands)
    assert abs(never - 1.0) < 1e-9, (
        f"when no threshold keeps the accuracy, return the highest candidate (1.0), got {never}"
    )


@pytest.mark.points(3)
def test_choose_threshold(lab):
    lab.run(_check_choose_threshold)
    assert 0.4 <= lab.eval("float(threshold)") <= 1.0


def _check_end_to_end_ms():
    import numpy as np

    from kit.ml.partition import Network, Profile

    p = Profile(
        device_ms=[0.0, 0.2, 0.5, 1.0],
        cloud_ms=[2.0, 1.8, 1.0, 0.0],
        up_bytes=[4096, 65536, 512, 0],
        down_bytes=100,
        overhead_ms=0.3,
        overhead_ms_per_kib=0.0,
        slowdown=10.0,
    )
    net = Network(bandwidth_mbps=8.0, rtt_ms=20.0)  # one byte per microsecond
    got = [float(v) for v in end_to_end_ms(p, net)]
    want = [0.3 + 20 + 2.0 + 4.196, 2 + 0.3 + 20 + 1.8 + 65.636, 5 + 0.3 + 20 + 1.0 + 0.612, 10.0]
    assert len(got) == 4, f"one prediction per split 0..3, got {len(got)}"
    assert np.allclose(got, want, atol=1e-6), f"expected {np.round(want, 3).tolist()}, got {np.round(got, 3).tolist()}"
    assert best_split(p, net) == 3, "at 8 Mbit/s and 20 ms RTT the all-device split (3) is fastest here"
    assert best_split(p, Network(bandwidth_mbps=1000, rtt_ms=0.1)) == 0, "on a very fast link all-cloud (0) wins here"


@pytest.mark.points(3)
def test_end_to_end_ms_and_best_split(lab):
    lab.run(_check_end_to_end_ms)


def _check_choices():
    from kit.ml.partition import NETWORKS, estimate_ms

    assert set(choices) == set(NETWORKS), f"one choice per network {sorted(NETWORKS)}, got {sorted(choices)}"
    for name, k in choices.items():
        est = estimate_ms(prof, NETWORKS[name])
        assert est[k] == min(est), f"{name}: split {k} is not the predicted best ({est.index(min(est))})"


@pytest.mark.points(2)
def test_best_split_for_three_networks(lab):
    lab.run(_check_choices)
    assert lab.eval("len(set(choices.values()))") >= 2, "the three networks should not all give the same split"


def _check_single_task():
    from kit.ml.model import build_model

    model = build_model(32, width=0.5, seed=1)
    for head in ("queue", "pedestrian"):
        m = single_task(model, head)
        assert list(m.output_names) == [head], (
            f"single_task(model, {head!r}) should output only {head!r}, got {m.output_names}"
        )
        assert m.count_params() < model.count_params(), "the other head's weights should be gone"
    assert single_task(model, "queue").get_layer("stem") is model.get_layer("stem"), "reuse the model's own layers"


@pytest.mark.points(2)
def test_single_task(lab):
    lab.run(_check_single_task)
    assert lab.eval("report['shared']['params'] < report['separate']['params']")


def _check_one_per_tick():
    import threading

    import numpy as np

    class Cam:
        def __init__(self):
            self.n = 0

        def capture(self):
            self.n += 1
            return np.full((4, 4), self.n, np.uint8)

    cam = Cam()
    p = OnePerTick(cam)
    p.tick()
    a = p.frame()
    assert p.frame() is a and cam.n == 1, "two calls in one tick: one capture, the same array"
    try:
        a[0, 0] = 99
        raise AssertionError("the shared frame must be read-only (frame.setflags(write=False))")
    except ValueError:
        pass
    p.tick()
    b = p.frame()
    assert b is not a and cam.n == 2 and p.captures == 2, "a new tick captures a new frame"
    p.tick()
    got = []
    barrier = threading.Barrier(8)

    def grab():
        barrier.wait()
        got.append(p.frame())

    threads = [threading.Thread(target=grab) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert cam.n == 3 and all(g is got[0] for g in got), f"8 threads in one tick: 1 capture expected, got {cam.n - 2}"


@pytest.mark.points(3)
def test_one_per_tick_provider(lab):
    lab.run(_check_one_per_tick)


@pytest.mark.points(1)
def test_provider_wired_into_the_tasks(lab):
    assert lab.eval("shared_stats['captures']") == lab.eval("TICKS"), (
        "with the provider the camera is read once per tick"
    )
    assert lab.eval("separate_stats['captures']") == 3 * lab.eval("TICKS")

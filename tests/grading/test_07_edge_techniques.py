"""Grades lab 07 (edge techniques): early-exit rule and threshold, the split cost model, a single-task model, one capture per tick.

Each ``_observe_*`` function runs in the student's kernel and only gathers values; each test judges them here, in
the grader's process (against the kit's own early-exit sweep and cost model, or its own arithmetic), on inputs
drawn from ``grading_rng`` (fresh for every grading run).
"""

import pytest

# the lab trains two small models and cuts one into 16 parts: ~30 s alone, more on a machine grading many at once
pytestmark = pytest.mark.notebook("07_edge_techniques", cell_timeout=180, notebook_timeout=600)


def _np_rng(grading_rng):
    """A numpy generator drawn from the test's stream (the student cannot know its seed)."""
    import numpy as np

    return np.random.default_rng(grading_rng.randrange(2**32))


def _observe_exit_mask(probs, thresholds):
    import numpy as np

    out = []
    for t in thresholds:
        got = np.asarray(exit_mask(np.array(probs), t))
        out.append({"dtype": str(got.dtype), "mask": got.tolist()})
    return out


@pytest.mark.points(1)
def test_exit_mask(lab, grading_rng):
    import numpy as np

    rng = _np_rng(grading_rng)
    probs = rng.dirichlet(np.ones(3), size=int(rng.integers(6, 12)))
    top = probs.max(axis=1)
    # one threshold exactly on a frame's top probability (it exits), one in between, one above every frame
    thresholds = [float(top[int(rng.integers(0, len(top)))]), float(rng.uniform(0.4, 0.9)), float(top.max()) + 0.01]
    got = lab.observe(_observe_exit_mask, probs.tolist(), thresholds)
    for t, answer in zip(thresholds, got, strict=True):
        assert answer["dtype"] == "bool", f"exit_mask should return booleans, got dtype {answer['dtype']}"
        expected = (top >= t).tolist()
        assert answer["mask"] == expected, (
            f"threshold {t:.4f} on top probabilities {np.round(top, 4).tolist()}: expected {expected}, "
            f"got {answer['mask']} (a probability equal to the threshold exits)"
        )


def _observe_choose_threshold(exit_p, full_p, labels, cases, candidates):
    import numpy as np

    exit_p, full_p, labels = np.array(exit_p), np.array(full_p), np.array(labels)
    out = [float(choose_threshold(exit_p, full_p, labels, max_loss=m, candidates=np.array(candidates))) for m in cases]
    sure_and_wrong = np.tile([1.0, 0.0, 0.0], (len(labels), 1))
    never = choose_threshold(sure_and_wrong, full_p, labels, max_loss=0.0, candidates=np.array(candidates))
    return {"chosen": out, "never": float(never), "lab": float(threshold)}


@pytest.mark.points(3)
def test_choose_threshold(lab, grading_rng):
    import numpy as np

    from kit.ml.early_exit import sweep

    rng = _np_rng(grading_rng)
    n = int(rng.integers(300, 500))
    labels = rng.integers(0, 3, n)
    conf = rng.uniform(0.34, 1.0, n)
    # the surer the exit head, the likelier it is right
    right = rng.random(n) < conf
    guess = np.where(right, labels, (labels + rng.integers(1, 3, n)) % 3)
    exit_p = np.tile(((1 - conf) / 2)[:, None], (1, 3))
    exit_p[np.arange(n), guess] = conf
    full_p = np.full((n, 3), 0.1)
    full_p[np.arange(n), labels] = 0.8
    wrong = rng.choice(n, int(rng.integers(n // 40, n // 10)), replace=False)
    full_p[wrong] = np.roll(full_p[wrong], 1, axis=1)  # the full model is wrong on a few frames
    candidates = np.round(np.arange(0.40, 1.0001, 0.01), 2)
    # budgets halfway between two accuracies a frame apart: never a tie that float rounding could decide
    cases = [(k + 0.5) / n for k in sorted(rng.choice(np.arange(1, n // 5), 3, replace=False).tolist())]
    got = lab.observe(
        _observe_choose_threshold, exit_p.tolist(), full_p.tolist(), labels.tolist(), cases, candidates.tolist()
    )
    rows = sweep(exit_p, full_p, labels, stem_ms=0, rest_ms=0, thresholds=candidates)
    full_acc = (full_p.argmax(1) == labels).mean()
    for max_loss, t in zip(cases, got["chosen"], strict=True):
        ok = [r.threshold for r in rows if r.accuracy >= full_acc - max_loss]
        expected = min(ok) if ok else max(candidates)
        assert abs(t - expected) < 1e-9, (
            f"max_loss={max_loss:.4f}: the lowest threshold within the budget is {expected}, got {t}"
        )
    assert abs(got["never"] - 1.0) < 1e-9, (
        f"when no threshold keeps the accuracy, return the highest candidate (1.0), got {got['never']}"
    )
    assert 0.4 <= got["lab"] <= 1.0, f"the lab's threshold should be one of the candidates, got {got['lab']}"


def _random_profile(rng):
    """A cost profile of 3..6 splits, as the grader draws it."""
    n = int(rng.integers(3, 7))
    device = sorted(float(round(v, 3)) for v in rng.uniform(0, 1.5, n + 1))
    device[0] = 0.0
    cloud = sorted((float(round(v, 3)) for v in rng.uniform(0, 3, n + 1)), reverse=True)
    cloud[-1] = 0.0
    up = [int(v) for v in rng.integers(100, 80_000, n + 1)]
    up[-1] = 0
    return {
        "device_ms": device,
        "cloud_ms": cloud,
        "up_bytes": up,
        "down_bytes": int(rng.integers(10, 500)),
        "overhead_ms": float(round(rng.uniform(0.1, 2), 3)),
        "overhead_ms_per_kib": 0.0,
        "slowdown": float(round(rng.uniform(2, 30), 1)),
    }


def _observe_end_to_end(profile, networks):
    from kit.ml.partition import Network, Profile

    prof = Profile(**profile)
    nets = [Network(bandwidth_mbps=b, rtt_ms=r) for b, r in networks]
    return {
        "ms": [[float(v) for v in end_to_end_ms(prof, net)] for net in nets],
        "best": [best_split(prof, net) for net in nets],
    }


@pytest.mark.points(3)
def test_end_to_end_ms_and_best_split(lab, grading_rng):
    import numpy as np

    from kit.ml.partition import Network, Profile, estimate_ms

    rng = _np_rng(grading_rng)
    profile = _random_profile(rng)
    networks = []
    while len(networks) < 4:
        bandwidth, rtt = float(round(10 ** rng.uniform(-1, 3), 3)), float(round(rng.uniform(0, 120), 1))
        est = sorted(estimate_ms(Profile(**profile), Network(bandwidth_mbps=bandwidth, rtt_ms=rtt)))
        if est[1] - est[0] > 1e-3:  # one clear best split, not a tie
            networks.append([bandwidth, rtt])
    got = lab.observe(_observe_end_to_end, profile, networks)
    for (bandwidth, rtt), ms, best in zip(networks, got["ms"], got["best"], strict=True):
        want = estimate_ms(Profile(**profile), Network(bandwidth_mbps=bandwidth, rtt_ms=rtt))
        assert len(ms) == len(want), f"one prediction per split 0..{len(want) - 1}, got {len(ms)}"
        assert np.allclose(ms, want, atol=1e-6), (
            f"{bandwidth} Mbit/s, RTT {rtt} ms, profile {profile}: expected {np.round(want, 3).tolist()}, "
            f"got {np.round(ms, 3).tolist()}"
        )
        assert best == int(np.argmin(want)), (
            f"{bandwidth} Mbit/s, RTT {rtt} ms: split {int(np.argmin(want))} is fastest, best_split said {best!r}"
        )


def _observe_choices():
    return {"choices": dict(choices), "profile": prof.to_dict()}


@pytest.mark.points(2)
def test_best_split_for_three_networks(lab):
    from kit.ml.partition import NETWORKS, Profile, estimate_ms

    got = lab.observe(_observe_choices)
    choices = got["choices"]
    assert set(choices) == set(NETWORKS), f"one choice per network {sorted(NETWORKS)}, got {sorted(choices)}"
    prof = Profile(**got["profile"])
    for name, k in choices.items():
        est = estimate_ms(prof, NETWORKS[name])
        assert isinstance(k, int) and 0 <= k < len(est), f"{name}: {k!r} is not a split 0..{len(est) - 1}"
        assert est[k] == min(est), f"{name}: split {k} is not the predicted best ({est.index(min(est))})"
    # Whether the three best splits differ depends on the machine's measured profile (a loaded machine makes the
    # device look slow), not on the student's code: not judged here.


def _observe_single_task(width, seed, frame):
    cut = single_task  # a notebook without it fails here, before TensorFlow is imported
    import numpy as np

    from kit.ml.model import build_model

    model = build_model(32, width=width, seed=seed)
    x = np.array(frame, dtype=np.float32).reshape(1, 32, 32, 1)
    full = model(x, training=False)
    out = {"full_params": int(model.count_params()), "heads": {}}
    for head in ("queue", "pedestrian"):
        m = cut(model, head)
        y = m(x, training=False)
        y = y[head] if isinstance(y, dict) else y[0] if isinstance(y, (list, tuple)) else y
        out["heads"][head] = {
            "names": [str(n) for n in m.output_names],
            "params": int(m.count_params()),
            "same_stem": m.get_layer("stem") is model.get_layer("stem"),
            "y": np.asarray(y, dtype=float).reshape(-1).tolist(),
            "want": np.asarray(full[head], dtype=float).reshape(-1).tolist(),
        }
    out["report"] = [report["shared"]["params"], report["separate"]["params"]]
    return out


@pytest.mark.points(2)
def test_single_task(lab, grading_rng):
    import numpy as np

    rng = _np_rng(grading_rng)
    width = float(rng.choice([0.25, 0.5, 0.75]))
    got = lab.observe(_observe_single_task, width, int(rng.integers(0, 10_000)), rng.uniform(0, 1, 32 * 32).tolist())
    full = got["full_params"]
    for head, h in got["heads"].items():
        assert h["names"] == [head], f"single_task(model, {head!r}) should output only {head!r}, got {h['names']}"
        assert h["same_stem"], "reuse the model's own layers"
        assert np.allclose(h["y"], h["want"], atol=1e-5), (
            f"{head}: the cut model must answer as the model's {head} head"
        )
    dropped = {head: full - h["params"] for head, h in got["heads"].items()}
    # the heads are Dense(3) and Dense(1) on the same pooled features: the queue head weighs 3x the other
    assert dropped["queue"] > 0 and dropped["pedestrian"] == 3 * dropped["queue"], (
        f"only the other head's weights should be gone: {full} parameters, dropped {dropped}"
    )
    shared, separate = got["report"]
    assert shared < separate, f"the shared model should have fewer parameters ({shared}) than two separate ({separate})"


def _observe_one_per_tick(calls, threads):
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
    out = {}
    p.tick()
    frames = [p.frame() for _ in range(calls)]
    out["first_tick"] = {"same": all(f is frames[0] for f in frames), "captures": cam.n}
    try:
        frames[0][0, 0] = 99
        out["read_only"] = False
    except ValueError:
        out["read_only"] = True
    p.tick()
    b = p.frame()
    out["second_tick"] = {"new": b is not frames[0], "value": int(np.asarray(b)[1, 1]), "captures": cam.n}
    out["counter"] = p.captures
    p.tick()
    got = []
    barrier = threading.Barrier(threads)

    def grab():
        barrier.wait()
        got.append(p.frame())

    workers = [threading.Thread(target=grab) for _ in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    out["threads"] = {"frames": len(got), "same": all(g is got[0] for g in got), "captures": cam.n}
    return out


@pytest.mark.points(3)
def test_one_per_tick_provider(lab, grading_rng):
    calls, threads = grading_rng.randint(2, 6), grading_rng.randint(4, 12)
    got = lab.observe(_observe_one_per_tick, calls, threads)
    first = got["first_tick"]
    assert first["same"] and first["captures"] == 1, (
        f"{calls} calls in one tick: one capture ({first['captures']} made), the same array every time"
    )
    assert got["read_only"], "the shared frame must be read-only (frame.setflags(write=False))"
    second = got["second_tick"]
    assert second["new"] and second["value"] == 2 and second["captures"] == 2, "a new tick captures a new frame"
    assert got["counter"] == 2, f"captures counts the camera reads: 2 after two ticks, got {got['counter']!r}"
    t = got["threads"]
    assert t["frames"] == threads and t["captures"] == 3 and t["same"], (
        f"{threads} threads in one tick: 1 capture and the same frame expected, got {t['captures'] - 2} captures"
    )


def _observe_wiring(ticks):
    # the lab's own run() with the student's OnePerTick, for a number of ticks the grader chose (TICKS is
    # set for these two calls only and put back); the kit's camera counts its own captures
    from kit.sim.camera import SimCamera

    names, real = run.__globals__, SimCamera.capture
    lab_ticks, counted = names["TICKS"], []

    def capture(self, *args, **kwargs):
        counted.append(1)
        return real(self, *args, **kwargs)

    names["TICKS"], SimCamera.capture = ticks, capture
    try:
        out = {}
        for key, shared in (("shared", True), ("separate", False)):
            counted.clear()
            out[key] = {"reported": run(shared=shared)["captures"], "camera": len(counted)}
        return out
    finally:
        names["TICKS"], SimCamera.capture = lab_ticks, real


@pytest.mark.points(1)
def test_provider_wired_into_the_tasks(lab, grading_rng):
    ticks = grading_rng.randint(5, 15)
    got = lab.observe(_observe_wiring, ticks)
    assert got["shared"]["camera"] == ticks, (
        f"with the provider the camera is read once per tick: {ticks} ticks, {got['shared']['camera']} reads"
    )
    assert got["separate"]["camera"] == 3 * ticks, (
        f"without it each of the 3 tasks reads the camera: {3 * ticks} reads expected, {got['separate']['camera']} made"
    )
    assert got["shared"]["reported"] == ticks and got["separate"]["reported"] == 3 * ticks, (
        f"the lab's counts should match the camera's: {got}"
    )

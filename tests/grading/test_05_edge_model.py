"""Grades lab 05 (a model on the edge): preprocessing, reading outputs by name, honest latency, green time, failures.

Each ``_observe_*`` function runs in the student's kernel and only gathers values; each test judges them here, in
the grader's process (which renders the same frames and runs the same model itself), on inputs drawn from
``grading_rng`` (fresh for every grading run).
"""

import pytest

pytestmark = pytest.mark.notebook("05_edge_model")


def _frame(queue, peds, daylight, seed, tint):
    """The 192x192 colour frame both sides build from the same numbers."""
    import numpy as np

    from kit.sim.camera import Scene, render

    gray = render(Scene(queue, peds, daylight, 0.0), seed=seed)
    rgb = np.repeat(np.repeat(gray, 3, axis=0), 3, axis=1)[..., None].repeat(3, axis=2)
    rgb[..., 0] = np.clip(rgb[..., 0].astype(int) + tint, 0, 255)  # a reddish tint: luma weights matter
    return gray, rgb


def _observe_to_model_input(queue, peds, daylight, seed, tint):
    import numpy as np

    from kit.sim.camera import Scene, render

    gray = render(Scene(queue, peds, daylight, 0.0), seed=seed)
    rgb = np.repeat(np.repeat(gray, 3, axis=0), 3, axis=1)[..., None].repeat(3, axis=2)
    rgb[..., 0] = np.clip(rgb[..., 0].astype(int) + tint, 0, 255)
    x = to_model_input(rgb)
    y = to_model_input(gray, size=32)
    return {
        "x_type": type(x).__name__,
        "x_shape": list(getattr(x, "shape", [])),
        "x_dtype": str(getattr(x, "dtype", "")),
        "x": np.asarray(x, dtype=np.float64).reshape(-1).tolist() if hasattr(x, "shape") else None,
        "y_shape": list(getattr(y, "shape", [])),
        "y_mean": float(np.asarray(y).mean()),
    }


@pytest.mark.points(2)
def test_to_model_input_makes_the_models_tensor(lab, grading_rng):
    import numpy as np

    args = (
        grading_rng.randint(0, 6),
        grading_rng.randint(0, 2),
        round(grading_rng.uniform(0.5, 1.0), 3),
        grading_rng.randint(1, 10_000),
        grading_rng.randint(20, 60),
    )
    got = lab.observe(_observe_to_model_input, *args)
    gray, rgb = _frame(*args)
    assert got["x_type"] == "ndarray" and got["x_shape"] == [1, 64, 64, 1], (
        f"expected (1, 64, 64, 1), got {got['x_shape']}"
    )
    assert got["x_dtype"] == "float32", f"expected float32, got {got['x_dtype']}"
    luma = (0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]).reshape(64, 3, 64, 3).mean(axis=(1, 3))
    err = float(np.abs(np.array(got["x"]).reshape(64, 64) - luma / 255).max())
    assert err < 0.01, f"gray = 0.299 R + 0.587 G + 0.114 B, block-averaged, / 255: off by up to {err:.3f}"
    assert got["y_shape"] == [1, 32, 32, 1], f"size=32 on a 64x64 gray frame gives (1, 32, 32, 1), got {got['y_shape']}"
    assert abs(got["y_mean"] - float(gray.mean()) / 255) < 0.01, "averaging keeps the mean brightness"


def _observe_interpret(cases):
    import numpy as np

    out = []
    for outputs, kwargs in cases:
        got = interpret({name: np.array(value, np.float32) for name, value in outputs.items()}, **kwargs)
        out.append(
            {
                "queue": got["queue"],
                "confidence": float(got["confidence"]),
                "pedestrian": bool(got["pedestrian"]),
                "pedestrian_p": float(got["pedestrian_p"]),
            }
        )
    return out


@pytest.mark.points(2)
def test_interpret_reads_outputs_by_name(lab, grading_rng):
    classes = ("empty", "short", "long")
    cases = []
    for _ in range(4):
        scores = [grading_rng.uniform(0.01, 1) for _ in classes]
        probs = [round(s / sum(scores), 4) for s in scores]
        outputs = [("pedestrian", [[round(grading_rng.uniform(0.05, 0.95), 3)]]), ("queue", [probs])]
        grading_rng.shuffle(outputs)  # read by name, whatever the order
        threshold = round(grading_rng.uniform(0.2, 0.8), 3)
        if abs(threshold - dict(outputs)["pedestrian"][0][0]) < 0.01:
            threshold = round(threshold + 0.05, 3)  # never on the boundary, where float32 rounding decides
        cases.append([dict(outputs), {"threshold": threshold} if grading_rng.random() < 0.5 else {}])
    got = lab.observe(_observe_interpret, cases)
    for (outputs, kwargs), answer in zip(cases, got, strict=True):
        probs, p = outputs["queue"][0], outputs["pedestrian"][0][0]
        best = max(range(3), key=probs.__getitem__)
        assert answer["queue"] == classes[best], (
            f"interpret({outputs}): class {best} is {classes[best]!r}, got {answer['queue']!r}"
        )
        assert abs(answer["confidence"] - probs[best]) < 1e-5, (
            f"confidence should be {probs[best]}, got {answer['confidence']!r}"
        )
        assert abs(answer["pedestrian_p"] - p) < 1e-5, f"pedestrian_p should be {p}, got {answer['pedestrian_p']!r}"
        threshold = kwargs.get("threshold", 0.5)
        assert answer["pedestrian"] == (p >= threshold), (
            f"p={p} against threshold {threshold}: someone waits iff p >= threshold"
        )


def _observe_measure_latency(warmup, runs, x):
    import time

    calls = []

    def fn(arg):
        calls.append(arg)
        if len(calls) <= warmup:
            time.sleep(0.15)  # cold start: must land in the warm-up
        else:
            time.sleep(0.002)

    res = measure_latency(fn, x, warmup=warmup, runs=runs)
    return {"calls": len(calls), "args": sorted(set(map(str, calls))), "res": dict(res)}


@pytest.mark.points(2)
def test_measure_latency_warms_up_and_reports_percentiles(lab, grading_rng):
    warmup, runs = grading_rng.randint(1, 3), grading_rng.randint(20, 30)
    x = f"frame-{grading_rng.randint(1, 999)}"
    got = lab.observe(_observe_measure_latency, warmup, runs, x)
    assert got["calls"] == warmup + runs, f"{warmup} warm-up + {runs} timed calls expected, fn ran {got['calls']} times"
    assert got["args"] == [x], "fn is called with x"
    res = got["res"]
    assert res["runs"] == runs
    assert 1.5 <= res["p50_ms"] <= res["p95_ms"], f"p50 of a 2 ms call is about 2 ms (milliseconds!), got {res}"
    assert res["p95_ms"] < 100, f"the 150 ms cold calls are warm-up, not timed: p95 {res['p95_ms']:.1f} ms"


def _observe_green_time(cases):
    return [float(green_time(pred, **kw)) for pred, kw in cases]


@pytest.mark.points(2)
def test_green_time_follows_the_rules(lab, grading_rng):
    base = {"queue": "short", "confidence": 0.9, "pedestrian": False, "pedestrian_p": 0.0}
    cases = [
        (base, {}, 20.0),
        ({**base, "queue": "long"}, {}, 60.0),
        ({**base, "queue": "empty"}, {}, 10.0),
        ({**base, "queue": "long", "pedestrian": True}, {}, 20.0),
        ({**base, "queue": "empty", "pedestrian": True}, {}, 10.0),
        ({**base, "queue": "long", "confidence": 0.5}, {}, 20.0),
        ({**base, "queue": "long"}, {"max_green": 45.0}, 45.0),
        ({**base, "queue": "empty", "confidence": 0.7}, {"min_confidence": 0.8, "base_green": 25.0}, 25.0),
    ]
    grading_rng.shuffle(cases)
    got = lab.observe(_observe_green_time, [[pred, kw] for pred, kw, _ in cases])
    for (pred, kw, want), answer in zip(cases, got, strict=True):
        assert abs(answer - want) < 1e-9, f"green_time({pred}, {kw}) should be {want}, got {answer}"


def _observe_accuracy_by_condition(n, seed):
    from kit.ml import shipped_model
    from kit.ml.host import ModelHost

    got = accuracy_by_condition(ModelHost(shipped_model()), conditions=("day", "night"), n=n, seed=seed)
    return {str(k): float(v) for k, v in got.items()}


@pytest.mark.points(2)
def test_accuracy_by_condition_finds_the_night_failure(lab, grading_rng):
    from kit.ml import shipped_model
    from kit.ml.data import make_dataset
    from kit.ml.host import ModelHost

    n, seed = grading_rng.randint(100, 140), grading_rng.randint(1, 10_000)
    got = lab.observe(_observe_accuracy_by_condition, n, seed)
    assert set(got) == {"day", "night"}, f"one entry per condition, got {sorted(got)}"
    h = ModelHost(shipped_model())
    for name in ("day", "night"):
        data = make_dataset(n, seed=seed, conditions=name)
        want = float((h.predict(data.x)["queue"].argmax(1) == data.queue).mean())
        assert abs(got[name] - want) < 1e-9, f"{name}: expected accuracy {want:.3f}, got {got[name]!r}"


def _observe_sensor_vector(seed, start, steps):
    import numpy as np

    from kit import Board, World

    b = Board(world=World(seed=seed, start=start))
    out = []
    try:
        b.car_light.red.on()
        b.ped_light.red.on()
        for _ in range(steps):
            b.world.advance(seconds=15)
            v = sensor_vector(b)
            out.append(
                {
                    "type": type(v).__name__,
                    "shape": list(getattr(v, "shape", [])),
                    "dtype": str(getattr(v, "dtype", "")),
                    "v": np.asarray(v, dtype=np.float64).reshape(-1).tolist() if hasattr(v, "shape") else None,
                }
            )
    finally:
        b.close()
    return out


@pytest.mark.points(2)
def test_sensor_vector_is_read_from_the_board(lab, grading_rng):
    import numpy as np

    from kit import Board, World
    from kit.ml.sensors import vector_from_board

    seed, start = grading_rng.randint(1, 10_000), f"2026-10-15T{grading_rng.randint(7, 17):02d}:30:00"
    got = lab.observe(_observe_sensor_vector, seed, start, 3)
    b = Board(world=World(seed=seed, start=start))  # the same seeded world, here in the grader
    try:
        b.car_light.red.on()
        b.ped_light.red.on()
        for step, answer in enumerate(got):
            b.world.advance(seconds=15)
            want = vector_from_board(b)
            assert answer["type"] == "ndarray" and answer["shape"] == [6], (
                f"expected an array of shape (6,), got {answer['shape']}"
            )
            assert answer["dtype"] == "float32", f"expected float32, got {answer['dtype']}"
            assert np.allclose(answer["v"], want, atol=0.02), (
                f"after {15 * (step + 1)} s of red: expected {np.round(want, 3)}, got {np.round(answer['v'], 3)}"
            )
    finally:
        b.close()
    assert len(got) == 3, f"one vector per step, got {len(got)}"

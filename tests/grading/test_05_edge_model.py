"""Grades lab 05 (a model on the edge): preprocessing, reading outputs by name, honest latency, green time, failures."""
import pytest

pytestmark = pytest.mark.notebook("05_edge_model")


def _check_to_model_input():
    import numpy as np

    from kit.sim.camera import Scene, render

    gray = render(Scene(3, 1, 0.9, 0.0), seed=41)
    rgb = np.repeat(np.repeat(gray, 3, axis=0), 3, axis=1)[..., None].repeat(3, axis=2)  # 192x192 colour
    rgb[..., 0] = np.clip(rgb[..., 0].astype(int) + 30, 0, 255)  # a reddish tint: luma weights matter
    x = to_model_input(rgb)
    assert isinstance(x, np.ndarray) and x.shape == (1, 64, 64, 1), f"expected (1, 64, 64, 1), got {getattr(x, 'shape', x)}"
    assert x.dtype == np.float32, f"expected float32, got {x.dtype}"
    luma = (0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]).reshape(64, 3, 64, 3).mean(axis=(1, 3))
    err = float(np.abs(x[0, :, :, 0] - luma / 255).max())
    assert err < 0.01, f"gray = 0.299 R + 0.587 G + 0.114 B, block-averaged, / 255: off by up to {err:.3f}"
    y = to_model_input(gray, size=32)
    assert y.shape == (1, 32, 32, 1), f"size=32 on a 64x64 gray frame gives (1, 32, 32, 1), got {y.shape}"
    assert abs(float(y.mean()) - float(gray.mean()) / 255) < 0.01, "averaging keeps the mean brightness"


@pytest.mark.points(2)
def test_to_model_input_makes_the_models_tensor(lab):
    lab.run(_check_to_model_input)


def _check_interpret():
    import numpy as np

    outs = {"pedestrian": np.array([[0.3]], np.float32), "queue": np.array([[0.05, 0.9, 0.05]], np.float32)}
    got = interpret(outs)
    assert got["queue"] == "short", f"class 1 is 'short', got {got.get('queue')!r}"
    assert abs(float(got["confidence"]) - 0.9) < 1e-6, f"confidence should be 0.9, got {got.get('confidence')!r}"
    assert not got["pedestrian"] and abs(float(got["pedestrian_p"]) - 0.3) < 1e-6
    assert bool(interpret(outs, threshold=0.25)["pedestrian"]), "0.3 >= threshold 0.25 means someone waits"
    reordered = {"queue": np.array([[0.6, 0.3, 0.1]], np.float32), "pedestrian": np.array([[0.97]], np.float32)}
    got = interpret(reordered)
    assert got["queue"] == "empty" and bool(got["pedestrian"]), "outputs are read by name, whatever their order"


@pytest.mark.points(2)
def test_interpret_reads_outputs_by_name(lab):
    lab.run(_check_interpret)


def _check_measure_latency():
    import time

    calls = []

    def fn(x):
        calls.append(x)
        if len(calls) <= 2:
            time.sleep(0.15)  # cold start: must land in the warm-up
        else:
            time.sleep(0.002)

    res = measure_latency(fn, "frame", warmup=2, runs=25)
    assert len(calls) == 27, f"2 warm-up + 25 timed calls expected, fn ran {len(calls)} times"
    assert set(calls) == {"frame"}, "fn is called with x"
    assert res["runs"] == 25
    assert 1.5 <= res["p50_ms"] <= res["p95_ms"], f"p50 of a 2 ms call is about 2 ms (milliseconds!), got {res}"
    assert res["p95_ms"] < 100, f"the 150 ms cold calls are warm-up, not timed: p95 {res['p95_ms']:.1f} ms"


@pytest.mark.points(2)
def test_measure_latency_warms_up_and_reports_percentiles(lab):
    lab.run(_check_measure_latency)


def _check_green_time():
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
    for pred, kw, want in cases:
        got = green_time(pred, **kw)
        assert abs(float(got) - want) < 1e-9, f"green_time({pred}, {kw}) should be {want}, got {got}"


@pytest.mark.points(2)
def test_green_time_follows_the_rules(lab):
    lab.run(_check_green_time)


def _check_accuracy_by_condition():
    from kit.ml import shipped_model
    from kit.ml.data import make_dataset
    from kit.ml.host import ModelHost

    h = ModelHost(shipped_model())
    got = accuracy_by_condition(h, conditions=("day", "night"), n=120, seed=77)
    assert set(got) == {"day", "night"}, f"one entry per condition, got {sorted(got)}"
    for name in ("day", "night"):
        data = make_dataset(120, seed=77, conditions=name)
        want = float((h.predict(data.x)["queue"].argmax(1) == data.queue).mean())
        assert abs(float(got[name]) - want) < 1e-9, f"{name}: expected accuracy {want:.3f}, got {got[name]!r}"
    assert got["day"] > got["night"]


@pytest.mark.points(2)
def test_accuracy_by_condition_finds_the_night_failure(lab):
    lab.run(_check_accuracy_by_condition)

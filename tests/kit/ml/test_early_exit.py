"""kit.ml.early_exit: confidence rules, threshold sweep and calibration, and a host that really skips the rest."""

from __future__ import annotations

import numpy as np
import pytest

from kit.ml.early_exit import calibrate, confidence, sweep


@pytest.mark.tflite
def test_confidence_rules():
    p = np.array([[1.0, 0.0, 0.0], [1 / 3, 1 / 3, 1 / 3], [0.5, 0.5, 0.0]])
    np.testing.assert_allclose(confidence(p, "max"), [1.0, 1 / 3, 0.5])
    ent = confidence(p, "entropy")
    assert ent[0] == pytest.approx(1.0) and ent[1] == pytest.approx(0.0, abs=1e-9)
    assert 0 < ent[2] < 1
    with pytest.raises(ValueError, match="unknown confidence rule 'margin'"):
        confidence(p, "margin")


def _synthetic(n=400, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    easy = rng.random(n) < 0.6
    # easy frames: the exit head is sure and right; hard ones: unsure and often wrong
    exit_p = np.where(easy[:, None], 0.02, 0.275) * np.ones((n, 3))
    exit_p[np.arange(n), np.where(easy, labels, rng.integers(0, 3, n))] = np.where(easy, 0.96, 0.45)
    full_p = np.full((n, 3), 0.05)
    full_p[np.arange(n), labels] = 0.9
    return exit_p, full_p, labels, easy


@pytest.mark.tflite
def test_sweep_ends_are_the_two_heads():
    exit_p, full_p, labels, easy = _synthetic()
    never, always = sweep(exit_p, full_p, labels, stem_ms=1.0, rest_ms=9.0, thresholds=[1.01, 0.0])
    assert never.exit_share == 0 and never.accuracy == 1.0 and never.mean_ms == pytest.approx(10.0)
    assert always.exit_share == 1 and always.mean_ms == pytest.approx(1.0)
    assert always.accuracy == pytest.approx(np.mean(exit_p.argmax(1) == labels))


@pytest.mark.tflite
def test_sweep_latency_falls_as_more_frames_exit():
    exit_p, full_p, labels, easy = _synthetic()
    rows = sweep(exit_p, full_p, labels, stem_ms=1.0, rest_ms=9.0)
    shares = [r.exit_share for r in rows]
    assert shares == sorted(shares, reverse=True)  # thresholds rise: fewer exits
    mid = [r for r in rows if 0.6 <= r.threshold <= 0.95][0]
    assert mid.exit_share == pytest.approx(easy.mean()) and mid.accuracy == 1.0


@pytest.mark.tflite
def test_calibrate_keeps_accuracy_within_the_budget():
    exit_p, full_p, labels, easy = _synthetic(seed=1)
    t = calibrate(exit_p, full_p, labels, max_loss=0.01)
    row = sweep(exit_p, full_p, labels, stem_ms=0, rest_ms=0, thresholds=[t])[0]
    assert row.accuracy >= 1.0 - 0.01 and row.exit_share >= 0.55
    # on other frames from the same source the calibrated threshold still holds
    exit2, full2, labels2, _ = _synthetic(seed=2)
    assert sweep(exit2, full2, labels2, stem_ms=0, rest_ms=0, thresholds=[t])[0].accuracy >= 0.98
    with pytest.raises(ValueError, match="max_loss"):
        calibrate(exit_p, full_p, labels, max_loss=5)


@pytest.mark.tflite
def test_learned_gate_predicts_when_the_exit_is_right():
    from kit.ml.early_exit import LearnedGate

    exit_p, full_p, labels, easy = _synthetic(seed=3)
    gate = LearnedGate.fit(exit_p, labels)
    score = gate(exit_p)
    assert score.shape == (len(labels),) and ((0 < score) & (score < 1)).all()
    assert score[easy].min() > score[~easy].max()  # sure-and-right frames rank above unsure ones
    t = calibrate(exit_p, full_p, labels, max_loss=0.01, rule=gate)
    row = sweep(exit_p, full_p, labels, stem_ms=0, rest_ms=0, thresholds=[t], rule=gate)[0]
    assert row.accuracy >= 0.99 and row.exit_share >= 0.55
    with pytest.raises(ValueError, match="one label per row"):
        LearnedGate.fit(exit_p, labels[:3])


@pytest.mark.tflite
def test_sweep_checks_lengths():
    exit_p, full_p, labels, _ = _synthetic()
    with pytest.raises(ValueError, match="one row per frame"):
        sweep(exit_p, full_p, labels[:-1], stem_ms=1, rest_ms=1)


@pytest.fixture(scope="module")
def host():
    pytest.importorskip("tensorflow")
    from kit.ml.data import make_dataset
    from kit.ml.early_exit import EarlyExitHost, build_early_exit, train_early_exit

    model = build_early_exit(32, width=8, seed=0)
    train_early_exit(model, make_dataset(96, seed=0, size=32), epochs=1, seed=0)
    return EarlyExitHost.from_model(model, threshold=0.9)


class _Counting:
    def __init__(self, part):
        self.part, self.calls = part, 0

    def __call__(self, x):
        self.calls += 1
        return self.part(x)


@pytest.mark.slow
def test_confident_frames_skip_the_rest_part(host):
    frame = np.full((32, 32), 120, np.uint8)
    rest = host.rest
    host.rest = _Counting(rest)
    try:
        host.threshold = 0.0  # every frame is confident enough
        r = host.predict(frame)
        assert r.exited and host.rest.calls == 0
        host.threshold = 1.01  # no frame is
        r = host.predict(frame)
        assert not r.exited and host.rest.calls == 1
        full = host.full(frame.astype(np.float32) / 255)["queue"][0]
        np.testing.assert_allclose(r.probs, full, atol=1e-5)
    finally:
        host.rest, host.threshold = rest, 0.9


@pytest.mark.slow
def test_save_load_and_mismatched_parts(host, tmp_path):
    from kit.ml.early_exit import EarlyExitHost

    host.save(tmp_path / "ee")
    again = EarlyExitHost.load(tmp_path / "ee")
    assert again.threshold == 0.9 and again.rule == "max"
    with pytest.raises(ValueError, match="stem and rest come from different models"):
        EarlyExitHost(host.stem.content, host.full.content)
    with pytest.raises(FileNotFoundError, match="EarlyExitHost.save"):
        EarlyExitHost.load(tmp_path / "nothing")
    with pytest.raises(ValueError, match="unknown confidence rule"):
        EarlyExitHost(host.stem.content, host.rest.content, rule="vote")


@pytest.mark.slow
def test_learned_gate_is_saved_with_the_host(host, tmp_path):
    from kit.ml.early_exit import EarlyExitHost, LearnedGate

    gate = LearnedGate([2.0, 1.0, 0.5], -1.0)
    ee = EarlyExitHost(host.stem.content, host.rest.content, rule=gate, threshold=0.7)
    again = EarlyExitHost.load(ee.save(tmp_path / "gate"))
    assert isinstance(again.rule, LearnedGate) and again.rule.weights.tolist() == [2.0, 1.0, 0.5]
    frame = np.full((32, 32), 90, np.uint8)
    assert again.predict(frame).confidence == pytest.approx(ee.predict(frame).confidence)


@pytest.mark.slow
def test_evaluate_reports_both_paths(host):
    from kit.ml.data import make_dataset
    from kit.ml.early_exit import evaluate

    data = make_dataset(12, seed=5, size=32)
    report = evaluate(host, data.x, data.queue)
    assert set(report) == {"accuracy", "full_accuracy", "exit_share", "mean_ms", "full_mean_ms", "exited"}
    assert report["exited"].shape == (12,) and report["exited"].mean() == report["exit_share"]
    assert 0 <= report["exit_share"] <= 1 and report["mean_ms"] > 0
    exit_p, full_p = host.both_heads(data.x)
    assert exit_p.shape == full_p.shape == (12, 3)

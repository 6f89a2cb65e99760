"""Grades lab 06b (compression in depth): fake-quant with a straight-through gradient, k-means weight sharing,
integer-only requantization and convolution, a greedy per-layer policy, an evolutionary policy search.

Every check runs the student's functions on inputs the notebook never shows (other shapes, seeds, scales,
synthetic objectives) and compares with the kit's reference or with a hand count.
"""

import pytest

# QAT, a sensitivity scan, a search and three fine-tunings: allow for a busy machine
pytestmark = pytest.mark.notebook("06b_compression_deeper", cell_timeout=300, notebook_timeout=900)


def _check_fake_quant():
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(11)
    x = tf.constant(rng.uniform(-2.0, 2.0, size=(4, 5)).astype(np.float32))
    scale, zero, lo, hi = 0.03, 3.0, -20, 17
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = fake_quant(x, scale, zero, lo, hi)
    q = np.clip(np.round(x.numpy() / scale) + zero, lo, hi)
    assert np.allclose(y.numpy(), (q - zero) * scale, atol=1e-6), "forward: (clip(round(x/scale)+zp) - zp) * scale"
    inside = ((np.round(x.numpy() / scale) + zero >= lo) & (np.round(x.numpy() / scale) + zero <= hi)).astype(
        np.float32
    )
    g = tape.gradient(y, x)
    assert g is not None, "no gradient reaches x: use tf.custom_gradient (round has no gradient of its own)"
    assert np.array_equal(g.numpy(), inside), (
        "straight-through: gradient 1 where the value was on the grid, 0 where clipped"
    )
    assert 0 < inside.sum() < inside.size, "the check needs values on both sides"
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(3.0 * fake_quant(x, scale, zero, lo, hi))
    assert np.array_equal(tape.gradient(loss, x).numpy(), 3.0 * inside), (
        "the upstream gradient is passed on, scaled by the mask"
    )


@pytest.mark.points(3)
def test_fake_quant_forward_and_straight_through_gradient(lab):
    lab.run(_check_fake_quant)


def _check_qat_beats_ptq_at_4_bits():
    worst_gap = min(rows["QAT 4-bit"][c] - rows["PTQ 4-bit"][c] for c in ("day", "leaves"))
    assert worst_gap > -0.02, f"QAT at 4 bits should not lose to PTQ at 4 bits; rows: {rows}"
    assert rows["QAT 4-bit"]["leaves"] >= rows["PTQ 4-bit"]["leaves"] + 0.02, (
        f"QAT should win back points on the hard leaf frames; rows: {rows}"
    )


@pytest.mark.points(1)
def test_qat_with_the_student_op_recovers_4_bit_accuracy(lab):
    lab.run(_check_qat_beats_ptq_at_4_bits)


def _check_kmeans():
    import numpy as np

    from kit.ml.compress import share

    rng = np.random.default_rng(5)
    w = np.concatenate([rng.normal(0, 0.05, 300), rng.normal(0.8, 0.02, 10), rng.normal(-0.6, 0.02, 7)]).reshape(-1, 1)
    for k in (3, 5):
        codebook, index = kmeans_codebook(w, k)
        ref_codebook, ref_index = share.kmeans(w, k, iters=30)
        assert np.shape(index) == w.shape, (
            f"one index per weight, shaped like the weights {w.shape}; got {np.shape(index)}"
        )
        assert len(codebook) == k, f"k={k} centroids, got {len(codebook)}"
        assert np.allclose(np.sort(codebook), np.sort(ref_codebook), atol=1e-4), (
            f"k={k}: centroids {np.round(np.sort(codebook), 4)}, expected {np.round(np.sort(ref_codebook), 4)}"
        )
        decoded = np.asarray(codebook)[np.asarray(index)]
        assert np.allclose(decoded, ref_codebook[ref_index], atol=1e-4), "each weight maps to its nearest centroid"
    codebook, _ = kmeans_codebook(w, 4)
    assert np.asarray(codebook).max() > 0.7 and np.asarray(codebook).min() < -0.5, (
        "linear initialisation keeps the rare large weights"
    )


@pytest.mark.points(3)
def test_kmeans_codebook_matches_linear_init_lloyd(lab):
    lab.run(_check_kmeans)


def _check_stored_bytes():
    import numpy as np

    cases = [
        ((100,), 2, 13 + 8),
        ((100,), 3, 25 + 12),
        ((7, 3), 16, 11 + 64),
        ((8,), 1, 1 + 4),
        ((1000,), 256, 1000 + 1024),
        ((10,), 5, 4 + 20),
    ]
    for shape, k, expected in cases:
        got = stored_bytes(np.zeros(shape, np.int64), np.zeros(k, np.float32))
        assert got == expected, f"{int(np.prod(shape))} weights, k={k}: expected {expected} bytes, got {got!r}"


@pytest.mark.points(1)
def test_stored_bytes_packs_indices(lab):
    lab.run(_check_stored_bytes)


def _check_quantize_multiplier():
    import numpy as np

    from kit.ml.compress.integer import quantize_multiplier as reference

    rng = np.random.default_rng(9)
    for real in list(rng.uniform(1e-5, 0.99, 40)) + [0.25, 0.999999999999, 1.5, 2.0**-20, 0.7071]:
        got = quantize_multiplier(float(real))
        assert tuple(int(v) for v in got) == reference(float(real)), (
            f"quantize_multiplier({real!r}): expected {reference(float(real))}, got {got}"
        )


@pytest.mark.points(2)
def test_quantize_multiplier_matches_tflite(lab):
    lab.run(_check_quantize_multiplier)


def _check_requantize():
    import numpy as np

    from kit.ml.compress.integer import quantize_multiplier as qm, requantize as reference

    rng = np.random.default_rng(21)
    acc = rng.integers(-200_000, 200_000, size=(6, 5, 4)).astype(np.int64)
    acc[0, 0] = [0, -1, 1, 2**20]
    pairs = [qm(r) for r in (0.00031, 0.0017, 0.25, 0.00093)]
    m, s = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
    for zero in (-128, 5):
        got = np.asarray(requantize(acc, m, s, zero))
        want = reference(acc, m, s, zero)
        assert got.dtype == np.int8, f"int8 outputs, got {got.dtype}"
        assert np.array_equal(got, want), (
            f"zero point {zero}: {int((got != want).sum())} of {want.size} values differ from TFLite's rounding"
        )
    # ties: exactly half a step must round away from zero, as gemmlowp does
    half = np.array([3, -3, 5, -5], np.int64) * 2**20
    assert np.array_equal(np.asarray(requantize(half, 2**30, -20, 0)), reference(half, 2**30, -20, 0))


@pytest.mark.points(3)
def test_requantize_is_bit_exact(lab):
    lab.run(_check_requantize)


def _check_conv_accumulate():
    import numpy as np

    from kit.ml.compress.integer import Int8Layer, accumulate

    rng = np.random.default_rng(4)
    for h, w, cin, cout, k, stride in ((9, 7, 3, 5, 3, 2), (6, 6, 4, 2, 1, 1), (5, 8, 2, 3, 3, 1)):
        x = rng.integers(-128, 128, size=(h, w, cin)).astype(np.int8)
        wq = rng.integers(-127, 128, size=(cout, k, k, cin)).astype(np.int8)
        bias = rng.integers(-5000, 5000, size=cout).astype(np.int32)
        layer = Int8Layer(
            "CONV_2D", "t", stride, x, 0.1, 7, wq, np.ones(cout, np.float32), bias, np.zeros(1), 0.1, 0, -128, 127
        )
        got = np.asarray(conv_accumulate(x, 7, wq, bias, stride))
        want = accumulate(layer)
        assert got.shape == want.shape, (
            f"{k}x{k} stride {stride} on {h}x{w}: shape {want.shape} expected, got {got.shape}"
        )
        assert np.array_equal(got, want), (
            f"{k}x{k} stride {stride}: accumulators differ (zero point subtracted before padding?)"
        )


@pytest.mark.points(2)
def test_conv_accumulate_int32(lab):
    lab.run(_check_conv_accumulate)


def _check_bit_exact_on_shipped_model():
    import numpy as np

    from kit.ml import shipped_model
    from kit.ml.compress.integer import trace
    from kit.ml.data import make_dataset

    frame = make_dataset(1, seed=4242, conditions="night").x[0]
    convs = [layer for layer in trace(shipped_model("queue_int8"), frame, n=5) if layer.op == "CONV_2D"]
    assert len(convs) >= 3
    for layer in convs:
        pairs = [
            quantize_multiplier(np.float64(layer.input_scale) * np.float64(s) / np.float64(layer.output_scale))
            for s in layer.weight_scales
        ]
        m, s = np.array([int(p[0]) for p in pairs]), np.array([int(p[1]) for p in pairs])
        acc = conv_accumulate(layer.input, layer.input_zero_point, layer.weights, layer.bias, layer.stride)
        out = np.asarray(requantize(acc, m, s, layer.output_zero_point))
        assert np.array_equal(out, layer.output), (
            f"{layer.name}: {int((out != layer.output).sum())} values differ from the interpreter"
        )


@pytest.mark.points(2)
def test_int8_layers_match_the_interpreter_bit_for_bit(lab):
    lab.run(_check_bit_exact_on_shipped_model)


def _check_greedy():
    from kit.ml.compress.sensitivity import greedy_policy as reference

    # four layers; MACs fall linearly with each ratio; the accuracy lost grows with the square of the ratio,
    # layers "a" and "d" being far more sensitive than "b" and "c" (only the function's source reaches the kernel)
    weight = {"a": 100, "b": 300, "c": 300, "d": 300}
    sens = {"a": 8.0, "b": 0.2, "c": 0.3, "d": 4.0}

    def macs_of(p):
        return int(round(1000 + sum(weight[n] * (1 - p[n]) for n in weight)))

    def drop(name, ratio):
        return sens[name] * ratio**2

    def score(p):
        return -sum(drop(n, r) for n, r in p.items())

    layers = list(weight)
    for budget in (1600, 1500, 1400, 1300, 1250):
        got = greedy_policy(drop, macs_of, budget, layers)
        want = reference(drop, macs_of, budget, layers)
        assert got == want, f"budget {budget}: expected {want}, got {got}"
    assert greedy_policy(drop, macs_of, 1200, layers) is None, "every layer at 75 % still costs 1250: None"
    assert greedy_policy(drop, macs_of, 2000, layers) == {n: 0.0 for n in layers}, (
        "already within budget: prune nothing"
    )
    fine = greedy_policy(drop, macs_of, 1500, layers, ratios=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9))
    assert fine is not None and macs_of(fine) <= 1500 and fine["b"] >= fine["a"] and fine["c"] >= fine["d"]


@pytest.mark.points(3)
def test_greedy_policy_spends_accuracy_where_it_is_cheapest(lab):
    lab.run(_check_greedy)


def _check_search():
    # four layers; MACs fall linearly with each ratio; the accuracy lost grows with the square of the ratio,
    # layers "a" and "d" being far more sensitive than "b" and "c" (only the function's source reaches the kernel)
    weight = {"a": 100, "b": 300, "c": 300, "d": 300}
    sens = {"a": 8.0, "b": 0.2, "c": 0.3, "d": 4.0}

    def macs_of(p):
        return int(round(1000 + sum(weight[n] * (1 - p[n]) for n in weight)))

    def drop(name, ratio):
        return sens[name] * ratio**2

    def score(p):
        return -sum(drop(n, r) for n, r in p.items())

    budget = 1500
    start = {n: 0.5 for n in weight}  # uniform: -(8 + 0.2 + 0.3 + 4) / 4 = -3.125
    calls = []

    def counted(p):
        calls.append(dict(p))
        return score(p)

    best, best_score = search_policy(counted, macs_of, budget, start, evaluations=150, seed=3)
    assert macs_of(best) <= budget, f"the policy {best} needs {macs_of(best)} MACs, over the budget {budget}"
    assert abs(best_score - score(best)) < 1e-9, "the score returned is the score of the policy returned"
    assert len(calls) <= 151, f"at most evaluations + 1 calls to score, got {len(calls)}"
    assert all(macs_of(p) <= budget for p in calls), "every policy scored is within the budget (repair before scoring)"
    # the best policy under this budget scores about -0.35; uniform -3.1: the search must get well past half-way
    assert best_score > -1.2, (
        f"150 evaluations should find a far better policy than uniform (-3.1); best {best_score:.2f}: {best}"
    )


@pytest.mark.points(3)
def test_search_policy_improves_on_uniform_within_the_budget(lab):
    lab.run(_check_search)


def _check_verdict_printed():
    assert set(verdict) == {"uniform", "greedy (sensitivity)", "search"}, (
        f"one verdict per policy, got {sorted(verdict)}"
    )
    for name, policy in policies.items():
        assert macs_of(policy) <= budget, f"{name} is over the MAC budget"


@pytest.mark.points(1)
def test_policies_fine_tuned_and_judged_on_held_out_frames(lab):
    lab.run(_check_verdict_printed)

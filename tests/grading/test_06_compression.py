"""Grades lab 06 (compression): counting MACs, int8 quantization, L1 filter choice, the trade-off table, choosing a model."""
import pytest

# fine-tuning two pruned models in the notebook: allow for a busy machine
pytestmark = pytest.mark.notebook(
    "06_compression", cell_timeout=180, notebook_timeout=600)


def _check_block_macs():
    cases = [
        ((32, 32, 16, 32), {"stride": 2}, 16 * 16 * 9 * 16 + 16 * 16 * 16 * 32),
        ((32, 32, 16, 16), {}, 32 * 32 * 9 * 16 + 32 * 32 * 16 * 16),
        ((8, 8, 64, 64), {"separable": False}, 8 * 8 * 9 * 64 * 64),
        ((15, 9, 4, 8), {"stride": 2, "separable": False}, 8 * 5 * 9 * 4 * 8),
        ((15, 9, 4, 8), {"stride": 2}, 8 * 5 * 9 * 4 + 8 * 5 * 4 * 8),
        ((10, 10, 3, 6), {"k": 5}, 10 * 10 * 25 * 3 + 10 * 10 * 3 * 6),
    ]
    for args, kwargs, expected in cases:
        got = block_macs(*args, **kwargs)
        assert got == expected, f"block_macs{args} {kwargs}: expected {expected:,}, got {got!r}"


@pytest.mark.points(2)
def test_block_macs_matches_hand_counts(lab):
    lab.run(_check_block_macs)


def _check_quantize_int8():
    import numpy as np

    x = np.array([[-1.0, 0.0, 0.26], [0.74, 3.0, -0.51]], dtype=np.float32)
    q = quantize_int8(x, 0.5, 3)
    assert isinstance(q, np.ndarray) and q.dtype == np.int8, f"expected an int8 array, got {getattr(q, 'dtype', type(q))}"
    assert q.shape == x.shape, f"the shape is kept: expected {x.shape}, got {q.shape}"
    assert q.tolist() == [[1, 3, 4], [4, 9, 2]], f"round(x / 0.5) + 3: expected [[1, 3, 4], [4, 9, 2]], got {q.tolist()}"
    big = quantize_int8(np.array([1000.0, -1000.0]), 1.0, 0)
    assert big.tolist() == [127, -128], f"values outside int8 are clipped to 127 / -128, got {big.tolist()}"
    pix = quantize_int8(np.arange(256) / 255, 1 / 255, -128)
    assert pix.tolist() == list(range(-128, 128)), "pixels 0..255 with scale 1/255 and zero point -128 map to -128..127"


@pytest.mark.points(2)
def test_quantize_int8_rounds_shifts_and_clips(lab):
    lab.run(_check_quantize_int8)


def _check_filters_to_keep():
    import numpy as np

    rng = np.random.default_rng(3)
    kernel = rng.normal(size=(3, 3, 4, 10))
    norms = np.abs(kernel).sum(axis=(0, 1, 2))
    keep = np.asarray(filters_to_keep(kernel, 0.5))
    assert keep.tolist() == sorted(np.argsort(norms)[5:].tolist()), \
        f"keep the 5 filters with the largest L1 norm (sum of |w| over all but the last axis), in order; got {keep.tolist()}"
    dense = np.zeros((6, 4))
    dense[:, 2] = 5.0
    dense[0, 0] = -3.0       # L1 counts magnitudes: -3 is as strong as 3
    dense[:, 3] = 0.1
    assert np.asarray(filters_to_keep(dense, 0.5)).tolist() == [0, 2], "a (C_in, C_out) dense kernel: filters are columns"
    assert np.asarray(filters_to_keep(dense, 0.75)).tolist() == [2], "round(4 * 0.25) = 1 filter kept"
    assert np.asarray(filters_to_keep(dense, 0.99)).tolist() == [2], "at least one filter is always kept"
    assert np.asarray(filters_to_keep(dense, 0.0)).tolist() == [0, 1, 2, 3], "fraction 0 keeps every filter"


@pytest.mark.points(2)
def test_filters_to_keep_ranks_by_l1_norm(lab):
    lab.run(_check_filters_to_keep)


def _check_measure_variants():
    t = measure_variants({"base": (paths["float32"], model), "pruned": (paths["filters50"], small)}, runs=5)
    assert isinstance(t, Table), f"return a kit.ml.compress.evaluate.Table, got {type(t).__name__}"
    assert t.names() == ["base", "pruned"], f"one row per variant, named and in order; got {t.names()}"
    assert t["base"].macs == count_macs(model).macs and t["base"].params == count_macs(model).params, \
        "MACs and parameters come from count_macs of the variant's Keras model"
    assert t["pruned"].macs == count_macs(small).macs, "the pruned variant's MACs come from the pruned model"
    expected = evaluate(paths["filters50"], held_out)["queue_accuracy"]
    assert abs(t["pruned"].queue_accuracy - expected) < 1e-9, "every variant is scored on held_out"
    assert t["pruned"].p50_ms > 0 and t["pruned"].size_bytes > 0


@pytest.mark.points(2)
def test_measure_variants_builds_the_table(lab):
    lab.run(_check_measure_variants)


def _check_choose_model():
    def row(name, acc, p50, kb):
        return Row(name=name, path=name, size_bytes=int(kb * 1024), gzip_bytes=0, weight_bytes=0, params=1,
                   macs=1, queue_accuracy=acc, pedestrian_f1=0.9, p50_ms=p50, p95_ms=p50)

    t = Table([row("float32", 0.99, 10.0, 50), row("int8", 0.985, 4.0, 32), row("pruned", 0.97, 3.0, 24),
               row("pruned_int8", 0.97, 3.5, 21), row("tiny", 0.80, 1.0, 8)])
    cases = [((20, 100), "float32"), ((5, 100), "int8"), ((5, 30), "pruned"), ((3.2, 100), "pruned"),
             ((3.4, 22), "tiny"), ((5, 22), "pruned_int8"), ((0.5, 100), None), ((20, 5), None), ((10, 50), "float32")]
    for (latency, memory), expected in cases:
        got = choose_model(t, latency_ms=latency, memory_kb=memory)
        assert got == expected, f"latency <= {latency} ms and size <= {memory} KB: expected {expected!r}, got {got!r}"


@pytest.mark.points(3)
def test_choose_model_respects_both_budgets(lab):
    lab.run(_check_choose_model)


def _check_table_floors():
    assert table["filters50"].macs * 1.8 <= table["float32"].macs, "50 % of the filters pruned: at least 1.8x fewer MACs"
    assert table["filters50"].queue_accuracy >= 0.9, \
        f"after fine-tuning the pruned model keeps >= 90 % accuracy, got {table['filters50'].queue_accuracy:.3f}"
    assert abs(table["int8"].queue_accuracy - table["float32"].queue_accuracy) <= 0.01, "int8 within 1 point of float32"
    assert table["magnitude50"].gzip_bytes < table["float32"].gzip_bytes, "magnitude pruning shrinks the gzipped file"


@pytest.mark.points(1)
def test_trade_off_table_shows_the_compression(lab):
    lab.run(_check_table_floors)

"""Grades lab 06 (compression): counting MACs, int8 quantization, L1 filter choice, the trade-off table, choosing a model."""

import pytest

# fine-tuning two pruned models in the notebook: allow for a busy machine
pytestmark = pytest.mark.notebook("06_compression", cell_timeout=180, notebook_timeout=600)


def _observe_block_macs(cases):
    return [block_macs(*args, **kwargs) for args, kwargs in cases]


def _macs(h, w, c_in, c_out, k=3, stride=1, separable=True):
    """The grader's own count: output positions x (depthwise + pointwise, or a standard convolution)."""
    oh, ow = -(-h // stride), -(-w // stride)
    return oh * ow * (k * k * c_in + c_in * c_out) if separable else oh * ow * k * k * c_in * c_out


@pytest.mark.points(2)
def test_block_macs_matches_hand_counts(lab, grading_rng):
    cases = [
        [[32, 32, 16, 32], {"stride": 2}],
        [[8, 8, 64, 64], {"separable": False}],
        [[15, 9, 4, 8], {"stride": 2}],
        [[10, 10, 3, 6], {"k": 5}],
    ]
    for _ in range(4):
        kwargs = {
            key: value
            for key, value in (
                ("stride", grading_rng.choice([1, 2])),
                ("separable", grading_rng.choice([True, False])),
                ("k", grading_rng.choice([1, 3, 5])),
            )
            if grading_rng.random() < 0.7
        }
        cases.append(
            [
                [
                    grading_rng.randint(3, 40),
                    grading_rng.randint(3, 40),
                    grading_rng.randint(1, 64),
                    grading_rng.randint(1, 64),
                ],
                kwargs,
            ]
        )
    got = lab.observe(_observe_block_macs, cases)
    for (args, kwargs), answer in zip(cases, got, strict=True):
        expected = _macs(*args, **kwargs)
        assert answer == expected, f"block_macs{tuple(args)} {kwargs}: expected {expected:,}, got {answer!r}"


def _observe_quantize_int8(x, scale, zero_point):
    import numpy as np

    q = quantize_int8(np.array(x, dtype=np.float32), scale, zero_point)
    big = quantize_int8(np.array([1000.0, -1000.0]), 1.0, 0)
    pix = quantize_int8(np.arange(256) / 255, 1 / 255, -128)
    return {
        "type": type(q).__name__,
        "dtype": str(getattr(q, "dtype", "")),
        "shape": list(getattr(q, "shape", [])),
        "q": np.asarray(q).tolist(),
        "big": np.asarray(big).tolist(),
        "pix": np.asarray(pix).tolist(),
    }


@pytest.mark.points(2)
def test_quantize_int8_rounds_shifts_and_clips(lab, grading_rng):
    import numpy as np

    scale, zero_point = grading_rng.choice([0.25, 0.5, 0.1, 0.05]), grading_rng.randint(-20, 20)
    # values a little off the rounding midpoints, so float32 cannot tip a rounding either way
    x = [
        [round((grading_rng.randint(-60, 60) + grading_rng.choice([-0.3, 0.0, 0.3])) * scale, 6) for _ in range(4)]
        for _ in range(2)
    ]
    got = lab.observe(_observe_quantize_int8, x, scale, zero_point)
    assert got["type"] == "ndarray" and got["dtype"] == "int8", (
        f"expected an int8 array, got {got['type']} {got['dtype']}"
    )
    assert got["shape"] == [2, 4], f"the shape is kept: expected (2, 4), got {got['shape']}"
    expected = (
        np.clip(np.round(np.array(x, dtype=np.float32) / np.float32(scale)) + zero_point, -128, 127)
        .astype(int)
        .tolist()
    )
    assert got["q"] == expected, f"round(x / {scale}) + {zero_point} for {x}: expected {expected}, got {got['q']}"
    assert got["big"] == [127, -128], f"values outside int8 are clipped to 127 / -128, got {got['big']}"
    assert got["pix"] == list(range(-128, 128)), "pixels 0..255 with scale 1/255 and zero point -128 map to -128..127"


def _observe_filters_to_keep(kernel, dense):
    import numpy as np

    return {
        "kernel": np.asarray(filters_to_keep(np.array(kernel), 0.5)).tolist(),
        "dense": [np.asarray(filters_to_keep(np.array(dense), f)).tolist() for f in (0.5, 0.75, 0.99, 0.0)],
    }


@pytest.mark.points(2)
def test_filters_to_keep_ranks_by_l1_norm(lab, grading_rng):
    import numpy as np

    rng = np.random.default_rng(grading_rng.randint(0, 2**31))
    kernel = rng.normal(size=(3, 3, 4, 10))
    dense = np.zeros((6, 4))
    dense[:, 2] = 5.0
    dense[0, 0] = -3.0  # L1 counts magnitudes: -3 is as strong as 3
    dense[:, 3] = 0.1
    got = lab.observe(_observe_filters_to_keep, kernel.tolist(), dense.tolist())
    norms = np.abs(kernel).sum(axis=(0, 1, 2))
    assert got["kernel"] == sorted(np.argsort(norms)[5:].tolist()), (
        f"keep the 5 filters with the largest L1 norm (sum of |w| over all but the last axis), in order; got {got['kernel']}"
    )
    half, quarter, almost, none = got["dense"]
    assert half == [0, 2], "a (C_in, C_out) dense kernel: filters are columns"
    assert quarter == [2], "round(4 * 0.25) = 1 filter kept"
    assert almost == [2], "at least one filter is always kept"
    assert none == [0, 1, 2, 3], "fraction 0 keeps every filter"


def _observe_measure_variants():
    t = measure_variants({"base": (paths["float32"], model), "pruned": (paths["filters50"], small)}, runs=5)
    out = {"is_table": isinstance(t, Table), "type": type(t).__name__}
    if not out["is_table"]:
        return out
    out["names"] = list(t.names())
    out["rows"] = {
        name: {
            "macs": t[name].macs,
            "params": t[name].params,
            "queue_accuracy": t[name].queue_accuracy,
            "p50_ms": t[name].p50_ms,
            "size_bytes": t[name].size_bytes,
        }
        for name in out["names"]
    }
    out["count_macs"] = {"base": [count_macs(model).macs, count_macs(model).params], "pruned": count_macs(small).macs}
    out["evaluated"] = evaluate(paths["filters50"], held_out)["queue_accuracy"]
    return out


@pytest.mark.points(2)
def test_measure_variants_builds_the_table(lab):
    got = lab.observe(_observe_measure_variants)
    assert got["is_table"], f"return a kit.ml.compress.evaluate.Table, got {got['type']}"
    assert got["names"] == ["base", "pruned"], f"one row per variant, named and in order; got {got['names']}"
    base, pruned = got["rows"]["base"], got["rows"]["pruned"]
    assert [base["macs"], base["params"]] == got["count_macs"]["base"], (
        "MACs and parameters come from count_macs of the variant's Keras model"
    )
    assert pruned["macs"] == got["count_macs"]["pruned"], "the pruned variant's MACs come from the pruned model"
    assert abs(pruned["queue_accuracy"] - got["evaluated"]) < 1e-9, "every variant is scored on held_out"
    assert pruned["p50_ms"] > 0 and pruned["size_bytes"] > 0


def _observe_choose_model(rows, cases):
    table = Table(
        [
            Row(
                name=name,
                path=name,
                size_bytes=int(kb * 1024),
                gzip_bytes=0,
                weight_bytes=0,
                params=1,
                macs=1,
                queue_accuracy=acc,
                pedestrian_f1=0.9,
                p50_ms=p50,
                p95_ms=p50,
            )
            for name, acc, p50, kb in rows
        ]
    )
    return [choose_model(table, latency_ms=latency, memory_kb=memory) for latency, memory in cases]


def _choose(rows, latency, memory):
    """The grader's own rule: within both budgets, most accurate, ties by latency then size."""
    fits = [r for r in rows if r[2] <= latency and int(r[3] * 1024) <= memory * 1024]
    return min(fits, key=lambda r: (-r[1], r[2], r[3]))[0] if fits else None


@pytest.mark.points(3)
def test_choose_model_respects_both_budgets(lab, grading_rng):
    rows = [
        ["float32", 0.99, 10.0, 50],
        ["int8", 0.985, 4.0, 32],
        ["pruned", 0.97, 3.0, 24],
        ["pruned_int8", 0.97, 3.5, 21],
        ["tiny", 0.80, 1.0, 8],
    ]
    for i in range(3):
        rows.append(
            [
                f"variant{i}",
                round(grading_rng.uniform(0.7, 0.995), 3),
                round(grading_rng.uniform(0.5, 12), 1),
                grading_rng.randint(6, 60),
            ]
        )
    grading_rng.shuffle(rows)
    cases = [[20, 100], [5, 100], [5, 30], [3.2, 100], [3.4, 22], [5, 22], [0.4, 100], [20, 5], [10, 50]]
    cases += [[round(grading_rng.uniform(0.5, 12), 1), grading_rng.randint(5, 60)] for _ in range(6)]
    got = lab.observe(_observe_choose_model, rows, cases)
    for (latency, memory), answer in zip(cases, got, strict=True):
        expected = _choose(rows, latency, memory)
        assert answer == expected, (
            f"latency <= {latency} ms and size <= {memory} KB: expected {expected!r}, got {answer!r}"
        )


def _observe_table():
    return {
        name: {
            "macs": table[name].macs,
            "queue_accuracy": table[name].queue_accuracy,
            "gzip_bytes": table[name].gzip_bytes,
        }
        for name in ("float32", "int8", "filters50", "magnitude50")
    }


@pytest.mark.points(1)
def test_trade_off_table_shows_the_compression(lab):
    table = lab.observe(_observe_table)
    assert table["filters50"]["macs"] * 1.8 <= table["float32"]["macs"], (
        "50 % of the filters pruned: at least 1.8x fewer MACs"
    )
    assert table["filters50"]["queue_accuracy"] >= 0.9, (
        f"after fine-tuning the pruned model keeps >= 90 % accuracy, got {table['filters50']['queue_accuracy']:.3f}"
    )
    assert abs(table["int8"]["queue_accuracy"] - table["float32"]["queue_accuracy"]) <= 0.01, (
        "int8 within 1 point of float32"
    )
    assert table["magnitude50"]["gzip_bytes"] < table["float32"]["gzip_bytes"], (
        "magnitude pruning shrinks the gzipped file"
    )

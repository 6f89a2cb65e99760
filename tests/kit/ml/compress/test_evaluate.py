"""The trade-off table: Pareto front, choosing under budgets, printing."""

from __future__ import annotations

import pytest

from kit.ml.compress.evaluate import Row, Table


def _row(name, acc, p50, kb, macs=1_000_000):
    return Row(
        name=name,
        path=f"{name}.tflite",
        size_bytes=int(kb * 1024),
        gzip_bytes=int(kb * 800),
        weight_bytes=int(kb * 700),
        params=1000,
        macs=macs,
        queue_accuracy=acc,
        pedestrian_f1=0.9,
        p50_ms=p50,
        p95_ms=p50 * 1.2,
    )


TABLE = Table(
    [
        _row("float32", 0.99, 10.0, 50),
        _row("int8", 0.985, 4.0, 20),
        _row("slow_bad", 0.9, 12.0, 60),
        _row("filters50", 0.97, 3.0, 25, macs=400_000),
    ]
)


def test_pareto_drops_dominated_rows_only():
    assert [r.name for r in TABLE.pareto()] == ["float32", "int8", "filters50"]


def test_choose_takes_most_accurate_within_both_budgets():
    assert TABLE.choose(latency_ms=20, memory_kb=100).name == "float32"
    assert TABLE.choose(latency_ms=5, memory_kb=100).name == "int8"
    assert TABLE.choose(latency_ms=5, memory_kb=22).name == "int8"
    assert TABLE.choose(latency_ms=3.5, memory_kb=100).name == "filters50"
    assert TABLE.choose(latency_ms=1, memory_kb=100) is None


def test_lookup_and_text():
    assert TABLE["int8"].size_kb == 20
    with pytest.raises(KeyError, match="no variant named 'int4'"):
        TABLE["int4"]
    text = str(TABLE)
    assert text.splitlines()[0].startswith("variant")
    assert "2.50" in text.splitlines()[2]  # int8 is 2.5x smaller than the float32 baseline
    assert len(TABLE.records()) == 4


def test_plot_has_one_point_per_row_and_lists_outliers():
    pytest.importorskip("matplotlib")
    ax = TABLE.plot()
    assert len(ax.collections) == 4  # slow_bad is 9 points below the best: within the default span of 10
    ax = TABLE.plot(span=5)
    assert len(ax.collections) == 3 and "slow_bad 90 %" in ax.get_title()


def _timed(name, acc, p25, p50, p75, kb=50):
    return Row(
        name=name,
        path=f"{name}.tflite",
        size_bytes=int(kb * 1024),
        gzip_bytes=0,
        weight_bytes=0,
        params=1,
        macs=1,
        queue_accuracy=acc,
        pedestrian_f1=0.9,
        p50_ms=p50,
        p95_ms=p75,
        p25_ms=p25,
        p75_ms=p75,
    )


def test_latencies_inside_each_others_spread_rank_nothing():
    base = _timed("float32", 0.99, 0.030, 0.034, 0.040)
    jitter = _timed("magnitude50", 0.99, 0.028, 0.031, 0.036)  # a lower median, inside the noise
    assert not jitter.faster_than(base) and not base.faster_than(jitter)
    assert {r.name for r in Table([base, jitter]).pareto()} == {"float32", "magnitude50"}
    clear = _timed("int8", 0.99, 0.010, 0.012, 0.014)
    assert clear.faster_than(base)
    assert [r.name for r in Table([base, jitter, clear]).pareto()] == ["int8"]


def test_the_table_prints_the_spread_and_the_plot_draws_it():
    pytest.importorskip("matplotlib")
    table = Table([_timed("float32", 0.99, 0.030, 0.034, 0.040), _timed("int8", 0.98, 0.010, 0.012, 0.014, kb=20)])
    assert "0.030–0.040" in str(table)
    ax = table.plot()
    assert len(ax.collections) == 4  # two markers, two interquartile bars

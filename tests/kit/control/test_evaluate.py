from __future__ import annotations

import pytest

pytest.importorskip("libsumo", reason="SUMO is the optional [sumo] extra")

from kit.control.evaluate import baselines, evaluate, format_table, pool, table  # noqa: E402
from kit.errors import UsageError  # noqa: E402


def test_every_baseline_runs_and_one_seed_gives_one_answer():
    rows = table(baselines(), seeds=[1000], start="2026-10-15T07:45:00", hours=0.5)
    assert [r.name for r in rows] == ["fixed", "adaptive", "actuated", "max_pressure"]
    for row in rows:
        assert row.results.vehicles > 300 and row.results.finished > 0.8 * row.results.vehicles
    again = evaluate(baselines()["actuated"], seeds=[1000], start="2026-10-15T07:45:00", hours=0.5)
    assert again == rows[2].results
    text = format_table(rows)
    assert text.count("\n") == 4 and "max_pressure" in text


def test_control_matters_on_the_same_demand():
    # A green that never ends starves the side road and the crossing: far worse than the fixed plan.
    never = evaluate(lambda view: False, seeds=[1000], start="2026-10-15T07:45:00", hours=0.5)
    fixed = evaluate(baselines()["fixed"], seeds=[1000], start="2026-10-15T07:45:00", hours=0.5)
    assert never.p95_delay_s > 2 * fixed.p95_delay_s
    assert never.p95_ped_wait_s > 5 * fixed.p95_ped_wait_s


def test_pooling_weights_by_counts_and_no_seed_is_refused():
    a = evaluate(baselines()["fixed"], seeds=[1000], start="2026-10-15T03:00:00", hours=0.25)
    both = pool([a, a])
    assert both.vehicles == 2 * a.vehicles and both.mean_delay_s == pytest.approx(a.mean_delay_s)
    with pytest.raises(UsageError, match="seeds"):
        evaluate(baselines()["fixed"], seeds=[])

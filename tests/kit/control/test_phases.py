from __future__ import annotations

import pytest

from kit.control.phases import PLAN, Minimums, PhaseMachine
from kit.errors import UsageError


def run(machine: PhaseMachine, seconds: int, advance: bool) -> list[str]:
    shown = []
    for _ in range(seconds):
        machine.tick(advance=advance, dt=1.0)
        shown.append(machine.phase)
    return shown


def test_a_policy_that_always_asks_still_gets_every_minimum_and_clearance():
    m = Minimums()
    shown = run(PhaseMachine(m), 200, advance=True)
    for name, _, _ in PLAN:
        runs, count, prev = [], 0, None
        for phase in shown:
            if phase == name:
                count += 1
            elif prev == name:
                runs.append(count)
                count = 0
            prev = phase
        assert runs and min(runs) == m.of(name), name


def test_keep_rests_in_green_and_order_never_changes():
    machine = PhaseMachine()
    assert set(run(machine, 100, advance=False)) == {"car_green"}
    shown = run(machine, 60, advance=True)
    order = [p for i, p in enumerate(shown) if i == 0 or shown[i - 1] != p]
    names = [p for p, _, _ in PLAN]
    start = names.index(order[0])
    assert order == [names[(start + i) % len(names)] for i in range(len(order))]


def test_minimums_must_be_positive():
    with pytest.raises(UsageError, match="ped_clear_s"):
        Minimums(ped_clear_s=0)

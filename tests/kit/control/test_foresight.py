from __future__ import annotations

import os

import pytest

pytest.importorskip("libsumo", reason="SUMO is the optional [sumo] extra")

from kit.control.actuated import actuated  # noqa: E402
from kit.control.classic import fixed_time  # noqa: E402
from kit.control.evaluate import Sensors, evaluate, step  # noqa: E402
from kit.control.foresight import _forked_cost, foresight  # noqa: E402
from kit.control.phases import PhaseMachine  # noqa: E402
from kit.errors import UsageError  # noqa: E402
from kit.sim.sumo.junction import SumoJunction  # noqa: E402


def _demand_file_offset(junction) -> int:
    for fd in os.listdir("/proc/self/fd"):
        if os.path.realpath(f"/proc/self/fd/{fd}").endswith("demand.rou.xml"):
            return os.lseek(int(fd), 0, os.SEEK_CUR)
    raise AssertionError("SUMO has no demand file open")


def _fixed_run(fork_at: int | None):
    # A day of demand from 07:00: SUMO reads its route file in 1 MB pieces, the first lasts about ten hours.
    policy = fixed_time()
    costs = []
    with SumoJunction(990, start="2026-10-15T07:00:00", hours=24) as junction:
        machine, sensors = PhaseMachine(), Sensors(junction)
        for t in range(1200):
            if t == fork_at:  # a child plays twelve hours ahead: past the first piece of the route file
                place = _demand_file_offset(junction)
                costs.append(_forked_cost(junction, machine, sensors, policy, 0.0, 12 * 3600.0, 1.0))
                assert _demand_file_offset(junction) == place
            advance = machine.can_advance and policy(sensors.view(machine))
            step(junction, machine, sensors, advance)
        queues = junction.queues()
    return junction.results(), queues, costs


def test_a_rollout_child_leaves_the_parent_run_exactly_as_it_was():
    # Were the file offsets shared, the child's reading ahead would move the parent's place in the demand file
    # (later SUMO fails on a broken route file or loads no more vehicles) and its trips would land in the parent's
    # output.
    quiet, quiet_queues, _ = _fixed_run(None)
    forked, forked_queues, costs = _fixed_run(300)
    assert forked == quiet and forked_queues == quiet_queues
    assert len(costs) == 1 and costs[0] > 0


def test_foresight_beats_the_policy_it_improves_on_the_same_demand():
    kwargs = dict(start="2026-10-15T08:00:00", hours=0.25)
    base = evaluate(actuated(), seeds=[990], **kwargs)
    better = foresight(seed=990, **kwargs)
    assert better.vehicles == base.vehicles
    assert better.mean_delay_s < 0.97 * base.mean_delay_s
    assert better.mean_ped_wait_s <= base.mean_ped_wait_s * 1.1


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(hours=0),
        dict(horizon_s=-1),
        dict(pedestrian_weight=-0.5),
        dict(holds_s=()),
        dict(holds_s=(0,)),
        dict(future="psychic"),
        dict(future="sampled", samples=0),
        dict(future="sampled", samples=2.5),
    ],
)
def test_bad_settings_are_refused_before_any_simulation(kwargs):
    with pytest.raises(UsageError):
        foresight(seed=990, **kwargs)


def test_a_sampled_future_replaces_the_coming_arrivals_the_same_way_for_every_choice():
    from kit.control.foresight import SampledFuture

    with SumoJunction(990, start="2026-10-15T08:00:00", hours=0.1) as junction:
        for _ in range(120):
            junction.step()
        sumo = junction._sumo
        present = set(sumo.vehicle.getIDList()) | set(sumo.simulation.getPendingVehicles())
        draw, again, other = (SampledFuture(junction, d, 90.0) for d in (0, 0, 1))
        # one draw is the same draw whichever choice asks (common random numbers); another draw differs
        assert (draw.vehicles, draw.people) == (again.vehicles, again.people)
        assert draw.vehicles != other.vehicles
        sampled = len(draw.vehicles)
        assert sampled > 20  # a minute and a half of the morning peak
        for t in range(90):
            draw.before_step(float(t))
            junction.step()
            draw.after_step()
        now = set(sumo.vehicle.getIDList()) | set(sumo.simulation.getPendingVehicles())
        assert not {v for v in now - present if not v.startswith("sampled.")}  # no real arrival got in
        assert sum(v.startswith("sampled.") for v in now) > 0.5 * sampled
        for v in now:  # the run's own results count only the day's vehicles
            if v.startswith("sampled."):
                sumo.vehicle.remove(v)
        for p in sumo.person.getIDList():
            if p.startswith("sampled."):
                sumo.person.remove(p)
        junction.step()


def test_foresight_with_a_sampled_future_serves_the_same_demand_and_repeats_itself():
    kwargs = dict(seed=990, start="2026-10-15T08:00:00", hours=0.03, future="sampled", samples=2)
    first, second = foresight(**kwargs), foresight(**kwargs)
    base = evaluate(actuated(), seeds=[990], start="2026-10-15T08:00:00", hours=0.03)
    assert first == second
    assert first.vehicles == base.vehicles and first.mean_delay_s > 0

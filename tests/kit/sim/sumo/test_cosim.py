from __future__ import annotations

import pytest

from kit.board import Board
from kit.control.adaptive import AdaptiveController
from kit.pins import SimFactory
from kit.sim.sumo.cosim import SumoWorld
from kit.sim.world import World

START = "2026-10-15T08:00:00"


def run_hour(world):
    with Board(world, pin_factory=SimFactory()) as board:
        controller = AdaptiveController(board)
        samples = []

        def sample(w):
            samples.append(
                (
                    w.queue_length,
                    board.distance.distance,
                    w.car_light_state(),
                    getattr(w, "junction", None) and w.junction._state,
                )
            )

        world.add_listener(sample, each_step=False)
        for _ in range(60):
            controller.run(minutes=1)
        return controller, samples


@pytest.mark.slow
def test_a_simulated_hour_both_ways_through_the_same_pins():
    kit_world = World(seed=1000, start=START)
    _, _ = run_hour(kit_world)
    sumo_world = SumoWorld(seed=1000, start=START, hours=1)
    controller, samples = run_hour(sumo_world)
    results = sumo_world.close()

    # The same seeded cars arrive on the kit's approach in both worlds; both serve nearly all of them.
    assert sumo_world.stats.arrived_vehicles == kit_world.stats.arrived_vehicles > 400
    for w in (kit_world, sumo_world):
        assert w.stats.served_vehicles > 0.95 * w.stats.arrived_vehicles
        assert w.stats.button_presses > 20 and w.stats.served_pedestrians > 20
    # The pins' lamps are SUMO's signals: main-road links green exactly when the car light is green.
    main = [i for i, (g, _) in enumerate(sumo_world.junction._groups) if g == "main"]
    for _, _, car, state in samples:
        assert (car == "green") == all(state[i] in "Gg" for i in main)
    # The ultrasonic sensor sees SUMO's queue: a long queue reads nearer than an empty lane.
    near = [d for q, d, _, _ in samples if q >= 4]
    empty = [d for q, d, _, _ in samples if q == 0]
    assert near and empty and max(near) < min(empty)
    assert "car_green" in {p for p, _ in controller.phase_log} and "ped_green" in {p for p, _ in controller.phase_log}
    assert results.vehicles > 1000

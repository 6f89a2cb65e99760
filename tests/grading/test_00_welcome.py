"""Grades lab 00 (welcome): the wiring table, a snapshot of the world, a reproducible experiment.

Each ``_observe_*`` function runs in the student's kernel and only gathers values; each test judges them here, in
the grader's process, against the kit run here on the same seeds, with inputs drawn from ``grading_rng``.
"""

import pytest

pytestmark = pytest.mark.notebook("00_welcome")


def _observe_part_on_pin(pins):
    return [part_on_pin(pin) for pin in pins]


@pytest.mark.points(2)
def test_part_on_pin(lab, grading_rng):
    from kit import PINS

    free = [pin for pin in range(100) if pin not in PINS.values()]
    pins = list(PINS.values()) + grading_rng.sample(free, 6)
    grading_rng.shuffle(pins)
    got = lab.observe(_observe_part_on_pin, pins)
    parts = {pin: part for part, pin in PINS.items()}
    for pin, part in zip(pins, got, strict=True):
        if pin in parts:
            assert part == parts[pin], f"part_on_pin({pin}) should be {parts[pin]!r}, got {part!r}"
        else:
            assert part is None, f"no part of the kit is on GPIO {pin}: expected None, got {part!r}"


def _observe_snapshot(seed, minutes):
    from kit import Board

    with Board(seed=seed) as b:
        b.car_light.green.on()
        b.world.advance(minutes=minutes)
        snap = snapshot(b)
        return {"type": type(snap).__name__, "snapshot": snap if isinstance(snap, dict) else None}


@pytest.mark.points(2)
def test_snapshot(lab, grading_rng):
    from kit import Board

    seed, minutes = grading_rng.randint(1, 10_000), grading_rng.randint(30, 300)
    got = lab.observe(_observe_snapshot, seed, minutes)
    assert got["type"] == "dict", f"snapshot() should return a dict, got {got['type']}"
    with Board(seed=seed) as b:  # the same world, run here
        b.car_light.green.on()
        b.world.advance(minutes=minutes)
        world = b.world
        expected = {
            "time": world.now.isoformat(),
            "car_light": "green",
            "queue_length": world.queue_length,
            "pedestrians_waiting": world.pedestrians_waiting,
            "daylight": world.daylight,
        }
    snap = got["snapshot"]
    assert set(snap) == set(expected), f"keys should be {sorted(expected)}, got {sorted(snap)}"
    for key, value in expected.items():
        assert snap[key] == value, f"snapshot()[{key!r}] should be {value!r}, got {snap[key]!r}"


def _observe_queue_after(cases):
    return [queue_after(seed, minutes) for seed, minutes in cases]


@pytest.mark.points(2)
def test_queue_after_is_reproducible(lab, grading_rng):
    from kit.sim.world import World

    cases = [[grading_rng.randint(1, 10_000), grading_rng.randint(1, 12)] for _ in range(3)]
    got = lab.observe(_observe_queue_after, cases)
    for (seed, minutes), queue in zip(cases, got, strict=True):
        world = World(seed=seed)
        world.set_lights(car="red", ped="off")
        world.advance(minutes=minutes)
        assert queue == world.queue_length, (
            f"queue_after({seed}, {minutes}) should be {world.queue_length} (a fresh board, red only), got {queue!r}"
        )


def _observe_closes(seed):
    from gpiozero import LED, Device
    from gpiozero.exc import GPIOPinInUse

    queue = queue_after(seed, 1)
    # A board left open stays gpiozero's default factory and keeps its pins.
    if Device.pin_factory is not None:
        try:
            LED(17).close()
        except GPIOPinInUse:
            return {"queue": queue, "closed": False}
    return {"queue": queue, "closed": True}


@pytest.mark.points(1)
def test_queue_after_closes_its_board(lab, grading_rng):
    from kit.sim.world import World

    seed = grading_rng.randint(1, 10_000)
    got = lab.observe(_observe_closes, seed)
    world = World(seed=seed)  # the value ties the answer to this run's seed: a constant reply cannot pass
    world.set_lights(car="red", ped="off")
    world.advance(minutes=1)
    assert got["queue"] == world.queue_length, (
        f"queue_after({seed}, 1) should be {world.queue_length}, got {got['queue']!r}"
    )
    assert got["closed"] is True, (
        "queue_after() left its board open (GPIO 17 is still in use): "
        "use `with Board(seed=seed) as b:` so the board is closed"
    )

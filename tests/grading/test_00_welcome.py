"""Grades lab 00 (welcome): the wiring table, a snapshot of the world, a reproducible experiment."""
import pytest

pytestmark = pytest.mark.notebook("00_welcome")


def _check_part_on_pin():
    from kit import PINS

    for part, pin in PINS.items():
        assert part_on_pin(pin) == part, f"part_on_pin({pin}) should be {part!r}, got {part_on_pin(pin)!r}"
    for pin in (0, 2, 3, 7, 12, 99):
        assert part_on_pin(pin) is None, f"no part of the kit is on GPIO {pin}: expected None, got {part_on_pin(pin)!r}"


@pytest.mark.points(2)
def test_part_on_pin(lab):
    lab.run(_check_part_on_pin)


def _check_snapshot():
    from kit import Board

    with Board(seed=4) as b:
        b.car_light.green.on()
        b.world.advance(minutes=95)
        snap = snapshot(b)
        world = b.world
        assert isinstance(snap, dict), f"snapshot() should return a dict, got {type(snap).__name__}"
        expected = {
            "time": world.now.isoformat(), "car_light": "green", "queue_length": world.queue_length,
            "pedestrians_waiting": world.pedestrians_waiting, "daylight": world.daylight,
        }
        assert set(snap) == set(expected), f"keys should be {sorted(expected)}, got {sorted(snap)}"
        for key, value in expected.items():
            assert snap[key] == value, f"snapshot()[{key!r}] should be {value!r}, got {snap[key]!r}"


@pytest.mark.points(2)
def test_snapshot(lab):
    lab.run(_check_snapshot)


def _check_queue_after():
    from kit.sim.world import World

    for seed, minutes in [(3, 4), (7, 10), (11, 1)]:
        world = World(seed=seed)
        world.set_lights(car="red", ped="off")
        world.advance(minutes=minutes)
        got = queue_after(seed, minutes)
        assert got == world.queue_length, (
            f"queue_after({seed}, {minutes}) should be {world.queue_length} (a fresh board, red only), got {got!r}")


@pytest.mark.points(2)
def test_queue_after_is_reproducible(lab):
    lab.run(_check_queue_after)


def _check_closes():
    from gpiozero import LED, Device
    from gpiozero.exc import GPIOPinInUse

    queue_after(5, 1)
    # A board left open stays gpiozero's default factory and keeps its pins.
    if Device.pin_factory is not None:
        try:
            LED(17).close()
        except GPIOPinInUse:
            raise AssertionError(
                "queue_after() left its board open (GPIO 17 is still in use): "
                "use `with Board(seed=seed) as b:` so the board is closed") from None


@pytest.mark.points(1)
def test_queue_after_closes_its_board(lab):
    lab.run(_check_closes)

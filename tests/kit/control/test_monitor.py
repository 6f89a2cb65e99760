"""The conflict monitor: whatever a controller, a parameter change or a student's policy asks, the lamps never
show conflicting greens, a short amber or a missing all-red (property-based, with hypothesis)."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kit.board import Board
from kit.clock import clock_for
from kit.control.adaptive import AdaptiveController
from kit.control.monitor import CAR_STATES, MIN_ALL_RED_S, MIN_AMBER_S, PED_STATES, ConflictMonitor
from kit.sim.world import World
from kit.store import Store

# derandomize: the same examples every run (a property test must not pass or fail by the draw of the day)
PROPERTY = settings(
    max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


class Lamps:
    """Watches the world's view of the lamps after every step and checks the rules on what was shown."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.shown: list[tuple[float, str, str]] = []
        #: where in ``shown`` a refusal lands: the monitor drops to all red at once (a CMU's fail-safe), amber or
        #: not, and the world reports it at its next step as the next entry
        self.faults: set[int] = set()
        world.add_listener(self._see)
        self._see(world)

    def _see(self, world: World) -> None:
        car, ped = world.car_light_state(), world.ped_light_state()
        if not self.shown or self.shown[-1][1:] != (car, ped):
            self.shown.append((world.elapsed, car, ped))

    def check(self) -> None:
        prev = None
        all_red_since = None
        amber_since = None
        for index, (t, car, ped) in enumerate(self.shown):
            assert car != "invalid" and ped != "invalid", f"invalid lamp combination at {t}: {car}/{ped}"
            if ped == "green":
                assert car == "red", f"conflicting greens at t={t}: cars {car} while pedestrians walk"
            if prev is not None:
                _, car0, ped0 = prev
                failsafe = (car, ped) == ("red", "red") and index in self.faults
                if car0 == "green" and not failsafe:
                    assert car in ("green", "amber", "off"), f"green went straight to {car} at t={t}"
                if car0 == "amber" and car == "red" and amber_since is not None and not failsafe:
                    assert t - amber_since >= MIN_AMBER_S - 1e-6, f"amber of {t - amber_since} s at t={t}"
                entering = (car in ("green", "red_amber") and car0 == "red") or (ped == "green" and ped0 != "green")
                if entering:
                    assert all_red_since is not None and t - all_red_since >= MIN_ALL_RED_S - 1e-6, (
                        f"{car}/{ped} at t={t} without {MIN_ALL_RED_S} s all red"
                    )
            if car == "amber" and (prev is None or prev[1] != "amber"):
                amber_since = t
            if car == "red" and ped != "green":
                if all_red_since is None:
                    all_red_since = t
            else:
                all_red_since = None
            prev = (t, car, ped)


requests = st.lists(
    st.tuples(
        st.sampled_from(CAR_STATES), st.sampled_from(PED_STATES), st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.0, 7.0])
    ),
    max_size=40,
)


@PROPERTY
@given(requests)
def test_random_requests_never_show_a_conflict(mock_factory, asks):
    world = World(seed=0, start="2026-10-15T08:00:00")
    with Board(world, pin_factory=mock_factory) as board:
        lamps = Lamps(world)
        monitor = ConflictMonitor(board, clock_for(board))
        for car, ped, wait in asks:
            ok = monitor.request(car, ped)
            assert ok or monitor.safe_state
            if not ok:
                lamps.faults.add(len(lamps.shown))
            assert (world.car_light_state(), world.ped_light_state()) != ("green", "green")
            world.advance(wait)
            monitor.tick()
        lamps.check()


decisions = st.lists(st.booleans(), min_size=50, max_size=400)
changes = st.lists(
    st.tuples(
        st.integers(0, 400),
        st.sampled_from(
            [
                ("car_amber_s", 3),
                ("car_amber_s", 6),
                ("all_red_s", 1),
                ("all_red_s", 5),
                ("ped_green_s", 4),
                ("ped_clear_s", 2),
                ("car_red_amber_s", 1),
                ("min_green_s", 5),
                ("night_mode", "flashing_amber"),
                ("night_mode", "normal"),
                ("control_mode", "fixed"),
                ("control_mode", "adaptive"),
                ("night_daylight", 1.0),
                ("night_daylight", 0.0),
                ("car_green_s", 5),
            ]
        ),
    ),
    max_size=12,
)
presses = st.sets(st.integers(0, 400), max_size=30)


@PROPERTY
@given(decisions, changes, presses)
def test_a_random_policy_parameter_changes_and_presses_never_show_a_conflict(mock_factory, says, edits, pressed):
    world = World(seed=1, start="2026-10-15T05:30:00")
    with Board(world, pin_factory=mock_factory) as board:
        lamps = Lamps(world)
        store = Store(":memory:")
        answers = iter(says)
        controller = AdaptiveController.from_params(board, store.params, policy=lambda obs, t: next(answers, True))
        edits_at = {}
        for at, change in edits:
            edits_at.setdefault(at, []).append(change)
        for tick in range(len(says)):
            for name, value in edits_at.get(tick, []):
                store.params.set(name, value)
            if tick in pressed:
                controller._requested()
            controller.step()
        lamps.check()
        assert controller.monitor.fault is None, controller.monitor.fault


def test_a_stalled_control_loop_drops_to_all_red_and_says_so(mock_factory):
    world = World(seed=0, start="2026-10-15T08:00:00")
    with Board(world, pin_factory=mock_factory) as board:
        controller = AdaptiveController(board)
        controller.run(seconds=20)
        assert world.car_light_state() == "green"
        monitor = controller.monitor
        monitor.stall_s = 0.2
        monitor.watch()
        try:
            deadline = time.monotonic() + 10
            while not monitor.stalled and time.monotonic() < deadline:
                time.sleep(0.05)  # the control loop "hangs": no tick
            assert monitor.stalled and "STALLED" in monitor.status()
            assert (world.car_light_state(), world.ped_light_state()) == ("red", "red")
        finally:
            monitor.close()
        # the loop comes back: from all red it restarts its cycle without a fault
        controller.run(seconds=60)
        assert not monitor.stalled and monitor.fault is None


def test_unknown_states_are_refused_with_the_reason(mock_factory):
    with Board(pin_factory=mock_factory) as board:
        monitor = ConflictMonitor(board, clock_for(board))
        assert monitor.request("blue", "red") is False
        assert "unknown car state 'blue'" in monitor.fault
        monitor.reset()
        assert monitor.fault is None and monitor.shown == ("red", "red")


@pytest.mark.parametrize("amber, allowed", [(2.5, False), (MIN_AMBER_S, True)])
def test_the_monitor_enforces_the_table_minimum_amber(mock_factory, amber, allowed):
    with Board(pin_factory=mock_factory) as board:
        monitor = ConflictMonitor(board, clock_for(board))
        board.world.advance(2)
        assert monitor.request("green", "red")
        assert monitor.request("amber", "red")
        board.world.advance(amber)
        assert monitor.request("red", "red") is allowed
        assert (monitor.fault is None) is allowed


def test_a_flashing_amber_ends_in_a_steady_amber_not_straight_in_red(mock_factory):
    with Board(pin_factory=mock_factory) as board:
        monitor = ConflictMonitor(board, clock_for(board))
        board.world.advance(2)
        assert monitor.request("flashing_amber", "off")
        board.world.advance(10)
        assert not monitor.request("red", "red")
        assert "flashing_amber->red (amber skipped)" in monitor.fault
        monitor.reset()
        board.world.advance(2)
        assert monitor.request("flashing_amber", "off")
        board.world.advance(10)
        assert monitor.request("amber", "red")
        board.world.advance(MIN_AMBER_S)
        assert monitor.request("red", "red") and monitor.fault is None


def test_the_night_plan_ends_through_amber_and_all_red(mock_factory):
    world = World(seed=1, start="2026-10-15T02:00:00")
    with Board(world, pin_factory=mock_factory) as board:
        store = Store(":memory:")
        store.params.set("night_mode", "flashing_amber")
        controller = AdaptiveController.from_params(board, store.params)
        lamps = Lamps(world)
        while controller.phase.name != "night_flash":
            controller.step()
        store.params.set("night_mode", "normal")
        while controller.phase.name != "car_green":
            controller.step()
        assert controller.monitor.fault is None
        lamps.check()
        names = [name for name, _ in controller.phase_log]
        after = names[names.index("night_flash") :]
        assert after[:4] == ["night_flash", "car_amber", "startup", "car_red_amber"], after


@pytest.mark.parametrize(
    "start, ask, ticks, shown",
    [
        ("2026-10-15T08:00:00", {}, 7, "car_green"),  # before the green's minimum
        ("2026-10-15T08:00:00", {}, 12, "car_green"),  # past it
        ("2026-10-15T08:00:00", {"press": 1}, 0, "ped_green"),
        ("2026-10-15T02:00:00", {"night_mode": "flashing_amber"}, 0, "night_flash"),
    ],
)
def test_finish_ends_through_amber_in_a_held_all_red_whatever_is_shown(mock_factory, start, ask, ticks, shown):
    world = World(seed=2, start=start)
    with Board(world, pin_factory=mock_factory) as board:
        store = Store(":memory:")
        if "night_mode" in ask:
            store.params.set("night_mode", ask["night_mode"])
        controller = AdaptiveController.from_params(board, store.params)
        lamps = Lamps(world)
        if "press" in ask:
            board.button.pin.drive_low()
            board.button.pin.drive_high()
            while controller.phase.name != "ped_green":
                controller.step()
            controller.step()
        elif "night_mode" in ask:
            while controller.phase.name != "night_flash":
                controller.step()
        else:
            while controller.phase.name != "car_green":
                controller.step()
        for _ in range(ticks):
            controller.step()
        assert controller.phase.name == shown
        controller.finish()
        for _ in range(200):
            if controller.finished:
                break
            controller.step()
        assert controller.finished, f"still {controller.phase.name} after 200 s from {shown}"
        for _ in range(30):  # and it holds
            controller.step()
        assert (world.car_light_state(), world.ped_light_state()) == ("red", "red")
        assert controller.monitor.fault is None
        lamps.check()

"""``kit demo``: the simulated intersection under a fixed-time plan, an hour in a few seconds.

>>> from kit.apps.demo import run_demo
>>> summary = run_demo(seed=0, minutes=10)
>>> summary["vehicles_served"] > 0
True
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from kit.argtypes import float_range, int_range, iso_datetime


def run_demo(
    *,
    seed: int = 0,
    minutes: float = 60.0,
    start: str = "2026-10-15T08:00:00",
    leaves: float = 0.0,
    road_works: bool = False,
    read_sensors: bool = False,
) -> dict[str, Any]:
    """Run the fixed-time controller on a simulated board; return the world's summary (plus sensor readings)."""
    from kit.board import Board
    from kit.control.fixed import FixedTimeController
    from kit.pins import SimFactory
    from kit.sim.world import World

    if minutes <= 0:
        raise ValueError(f"minutes={minutes!r}: the demo needs a positive simulated duration, e.g. 60")
    world = World(seed=seed, start=start, leaves=leaves, road_works=road_works)
    # The demo is always the simulation, even on a Pi: it must never drive real lamps by surprise.
    with Board(world, pin_factory=SimFactory()) as board:
        started = time.perf_counter()
        controller = FixedTimeController(board)
        controller.run(minutes=minutes)
        summary: dict[str, Any] = dict(world.stats.summary())
        summary["simulated_s"] = round(world.elapsed, 1)
        summary["wall_s"] = round(time.perf_counter() - started, 2)
        summary["cycles"] = sum(1 for name, _ in controller.phase_log if name == "car_green")
        if read_sensors:
            summary["sensors"] = {
                "queue_length": world.queue_length,
                "distance_m": round(board.distance.distance, 2),
                "light": round(board.light_sensor.value, 2),
                "road_temperature_c": round(board.road_temperature_c, 1),
                "cpu_temperature_c": round(board.cpu.temperature, 1),
            }
    return summary


def format_summary(summary: dict[str, Any], *, seed: int, start: str) -> str:
    """The summary as the lines ``kit demo`` prints."""
    lines = [
        f"Simulated intersection, fixed-time plan (seed {seed}, from {start})",
        f"  simulated {summary['simulated_s'] / 60:.0f} min in {summary['wall_s']} s of wall time, "
        f"{summary['cycles']} signal cycles",
        f"  vehicles   arrived {summary['vehicles_arrived']}, served {summary['vehicles_served']}, "
        f"diverted {summary['vehicles_diverted']}",
        f"             wait mean {summary['mean_vehicle_wait_s']} s, p95 {summary['p95_vehicle_wait_s']} s",
        f"  pedestrians arrived {summary['pedestrians_arrived']}, crossed {summary['pedestrians_served']}, "
        f"gave up {summary['pedestrians_gave_up']}, button presses {summary['button_presses']}",
        f"             wait mean {summary['mean_pedestrian_wait_s']} s, p95 {summary['p95_pedestrian_wait_s']} s",
    ]
    sensors = summary.get("sensors")
    if sensors:
        lines.append(
            f"  sensors at the end: queue {sensors['queue_length']} cars, distance {sensors['distance_m']} m, "
            f"light {sensors['light']}, road {sensors['road_temperature_c']} °C, CPU {sensors['cpu_temperature_c']} °C"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    summary = run_demo(
        seed=args.seed,
        minutes=args.minutes,
        start=args.start,
        leaves=args.leaves,
        road_works=args.road_works,
        read_sensors=not args.no_sensors,
    )
    print(format_summary(summary, seed=args.seed, start=args.start))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("demo", help="run the simulated intersection for an hour and print a summary")
    parser.add_argument(
        "--seed", type=int_range(0, 2**32 - 1), default=0, help="seed of the simulated world (default 0)"
    )
    parser.add_argument(
        "--minutes",
        type=float_range(0, 7 * 24 * 60, low_open=True),
        default=60.0,
        help="simulated minutes (default 60)",
    )
    parser.add_argument(
        "--start", type=iso_datetime(), default="2026-10-15T08:00:00", help="simulated start, ISO date and time"
    )
    parser.add_argument("--leaves", type=float_range(0, 1), default=0.0, help="leaf cover on the sensors, 0..1")
    parser.add_argument("--road-works", action="store_true", help="road works narrow the lane")
    parser.add_argument("--no-sensors", action="store_true", help="skip the final sensor readings")
    parser.set_defaults(func=run)

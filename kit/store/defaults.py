"""The kit's parameters: THE one place where each is declared (type, unit, limits, default, meaning).

Everything else reads from here: ``Store.params`` validates against it, ``kit params list`` prints it,
and the table in ``docs/storage.md`` is generated from it (a test keeps the two identical):

    >>> from kit.store.defaults import PARAMETERS
    >>> PARAMETERS["car_amber_s"].default
    3.0
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kit.store.parameter import Parameter

_DECLARED = [
    # signal timings
    Parameter("car_green_s", "float", 20.0, "Car green time in fixed-time mode", unit="s", minimum=5, maximum=120),
    Parameter("car_amber_s", "float", 3.0, "Car amber (yellow) time before red", unit="s", minimum=3, maximum=6),
    Parameter("car_red_amber_s", "float", 2.0, "Red+amber time before green", unit="s", minimum=1, maximum=3),
    Parameter(
        "all_red_s", "float", 2.0, "All-red clearance between car and pedestrian phases", unit="s", minimum=1, maximum=5
    ),
    Parameter("ped_green_s", "float", 7.0, "Pedestrian green (walk) time", unit="s", minimum=4, maximum=30),
    Parameter(
        "ped_clear_s",
        "float",
        5.0,
        "Pedestrian clearance (flashing/red) time before cars move",
        unit="s",
        minimum=2,
        maximum=20,
    ),
    Parameter("min_green_s", "float", 10.0, "Shortest car green in adaptive mode", unit="s", minimum=5, maximum=60),
    Parameter("max_green_s", "float", 60.0, "Longest car green in adaptive mode", unit="s", minimum=10, maximum=180),
    Parameter(
        "ped_max_wait_s",
        "float",
        20.0,
        "Longest a crossing request waits for a gap in the queue before the cars are stopped (adaptive mode)",
        unit="s",
        minimum=5,
        maximum=120,
    ),
    Parameter(
        "night_min_green_s",
        "float",
        5.0,
        "Shortest car green at night in adaptive mode",
        unit="s",
        minimum=3,
        maximum=60,
    ),
    # detection
    Parameter(
        "queue_threshold_m",
        "float",
        1.3,
        "Distance to the queue's tail below which a queue is detected (1.6 m = empty lane, 0.2 m per car)",
        unit="m",
        minimum=0.05,
        maximum=2.0,
    ),
    Parameter(
        "queue_hysteresis_m",
        "float",
        0.1,
        "Extra distance beyond the threshold before a queue counts as gone",
        unit="m",
        minimum=0.0,
        maximum=1.0,
    ),
    Parameter(
        "night_daylight",
        "float",
        0.2,
        "Daylight level (0 night .. 1 noon) below which night mode starts",
        minimum=0.0,
        maximum=1.0,
    ),
    Parameter(
        "control_mode",
        "str",
        "adaptive",
        "Signal plan: 'adaptive' (car green until someone needs it) or 'fixed' (car_green_s every cycle)",
        choices=("adaptive", "fixed"),
    ),
    Parameter(
        "night_mode",
        "str",
        "normal",
        "What the lights do at night: the day plan, or flashing amber for cars with dark pedestrian lamps",
        choices=("normal", "flashing_amber"),
    ),
    Parameter("buzzer_enabled", "bool", True, "The buzzer ticks while pedestrians may walk (accessible crossing)"),
    # sampling, storage and upload
    Parameter("sample_period_s", "float", 1.0, "Time between sensor readings", unit="s", minimum=0.1, maximum=3600),
    Parameter(
        "retention_days",
        "int",
        30,
        "Keep raw readings this many days; older ones are merged into one row per sensor per minute",
        unit="d",
        minimum=1,
        maximum=3650,
    ),
    Parameter(
        "store_max_mb",
        "float",
        512.0,
        "Size budget of the store: beyond it the oldest sent readings go first, then unsent ones are merged per minute",
        unit="MB",
        minimum=1,
        maximum=100000,
    ),
    Parameter("upload_batch_size", "int", 1000, "Outbox items sent to the cloud per request", minimum=1, maximum=10000),
    Parameter(
        "upload_max_age_s",
        "float",
        3600.0,
        "Upload a batch once its oldest reading is this old, even when the batch is not full",
        unit="s",
        minimum=10,
        maximum=86400,
    ),
    Parameter(
        "outbox_max_attempts",
        "int",
        5,
        "Failed deliveries before an outbox item is dead-lettered",
        minimum=1,
        maximum=100,
    ),
    Parameter(
        "device_id",
        "str",
        "kit-0001",
        "Name of this kit in the cloud (letters, digits, '-', '_')",
        pattern=r"[A-Za-z0-9_-]{1,64}",
    ),
]

PARAMETERS: dict[str, Parameter] = {p.name: p for p in _DECLARED}

# Rules that involve more than one parameter: (names, test on the full set of values, what is wrong).
RULES: list[tuple[tuple[str, ...], Callable[[dict[str, Any]], bool], str]] = [
    (
        ("min_green_s", "max_green_s"),
        lambda v: v["min_green_s"] <= v["max_green_s"],
        "min_green_s must not exceed max_green_s",
    ),
    (
        ("queue_hysteresis_m", "queue_threshold_m"),
        lambda v: v["queue_hysteresis_m"] < v["queue_threshold_m"],
        "queue_hysteresis_m must be smaller than queue_threshold_m",
    ),
]


def defaults() -> dict[str, Any]:
    """Every parameter's default value, by name."""
    return {name: p.default for name, p in PARAMETERS.items()}


def markdown_table() -> str:
    """The parameter table for ``docs/storage.md`` (generated, never edited by hand)."""
    lines = ["| name | type | unit | default | allowed | description |", "|---|---|---|---|---|---|"]
    for p in PARAMETERS.values():
        default = ("true" if p.default else "false") if p.type == "bool" else p.default
        lines.append(f"| `{p.name}` | {p.type} | {p.unit} | `{default}` | {p.allowed()} | {p.description} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown_table(), end="")

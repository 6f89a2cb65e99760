"""A picture of a day at the intersection, from the store alone (what any SQLite tool could draw)."""

from __future__ import annotations

from datetime import UTC
from pathlib import Path
from typing import Any

BIN_S = 600  # ten-minute means: a day of per-second readings is too dense to read


def _binned(store: Any, sensor: str) -> tuple[list[Any], list[float]]:
    from datetime import datetime

    sums: dict[int, list[float]] = {}
    for row in store.readings.per_minute(sensor):
        slot = int(row["minute"] // BIN_S * BIN_S)
        acc = sums.setdefault(slot, [0.0, 0.0])
        acc[0] += row["mean"] * row["count"]
        acc[1] += row["count"]
    slots = sorted(sums)
    return ([datetime.fromtimestamp(s, UTC) for s in slots], [sums[s][0] / sums[s][1] for s in slots])


def plot_day(store: Any, path: str | Path) -> Path:
    """Queue, light, the camera model's view and the drift alarm in ten-minute means; returns the PNG's path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    series = [
        ("queue_distance_m", "ultrasonic: distance\nto the queue (m)"),
        ("light", "light sensor\n(0 dark .. 1)"),
        ("model_queue_class", "camera model: queue\n(0 empty, 1 short, 2 long)"),
        ("drift_alarm", "drift alarm\n(share of windows)"),
    ]
    fig, axes = plt.subplots(len(series), 1, figsize=(9, 7), sharex=True)
    for ax, (sensor, label) in zip(axes, series):
        times, values = _binned(store, sensor)
        if times:
            if sensor == "drift_alarm":
                ax.fill_between(times, values, step="post", alpha=0.5, color="tab:red")
                ax.set_ylim(0, 1.05)
            else:
                ax.plot(times, values, lw=1)
        else:
            ax.text(0.5, 0.5, "no readings", transform=ax.transAxes, ha="center", color="grey")
        ax.set_ylabel(label, fontsize=8)
    axes[-1].set_xlabel("intersection time (UTC)")
    fig.suptitle("A day at the intersection (ten-minute means from the store)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path

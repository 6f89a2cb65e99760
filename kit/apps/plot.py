"""A picture of a day at the intersection, from the store alone (what any SQLite tool could draw)."""
from __future__ import annotations

from pathlib import Path
from typing import Any


def plot_day(store: Any, path: str | Path) -> Path:
    """Queue distance, light and model-predicted queue per minute; returns the PNG's path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from datetime import datetime, timezone

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    series = [("queue_distance_m", "distance to the queue (m)"), ("light", "light (0 dark .. 1)"),
              ("model_queue_class", "camera model: queue class")]
    fig, axes = plt.subplots(len(series), 1, figsize=(9, 6), sharex=True)
    for ax, (sensor, label) in zip(axes, series):
        rows = store.readings.per_minute(sensor)
        if rows:
            times = [datetime.fromtimestamp(r["minute"], timezone.utc) for r in rows]
            ax.plot(times, [r["mean"] for r in rows], lw=0.8)
        ax.set_ylabel(label, fontsize=8)
    axes[-1].set_xlabel("intersection time (UTC)")
    fig.suptitle("A day at the intersection (per-minute means from the store)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path

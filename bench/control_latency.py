"""Phase-change lateness of the intersection app on the real clock: cloud healthy, hung and refused, side by side.

The app runs in real time (simulated pins, wall-clock ticks) three times, each for ``--seconds``:

* healthy: a local AWS endpoint (moto server on loopback) that answers;
* hung: a loopback port that accepts connections and never answers (and an MQTT broker port that does the same);
* refused: a loopback port nobody listens on.

It prints how late (ms) each one-second tick and each phase change came, p50/p99/max. Goal: p99 <= 50 ms in
every column (before the cloud moved to its own worker, a hung endpoint held the lights for minutes).

    .venv/bin/python bench/control_latency.py [--seconds 60]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path

from kit.apps.latency import HungEndpoint, measure, refused_port
from kit.cloud import config
from kit.cloud.emulator import LocalCloud
from kit.store import Store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="wall seconds per column (default 60)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        with LocalCloud(0, activate=False) as healthy, HungEndpoint() as hung, HungEndpoint() as hung_broker:
            base = healthy.config.with_(bucket="kit-latency", mqtt_port=refused_port())
            setups = {
                "healthy": base,
                "hung": base.with_(endpoint_url=hung.url, mqtt_port=hung_broker.port),
                "refused": base.with_(endpoint_url=f"http://127.0.0.1:{refused_port()}"),
            }
            for name, cfg in setups.items():
                config.use(cfg)
                store = Store(Path(tmp) / f"{name}.db")
                result = measure(store, args.seconds, cloud=True, mqtt=name == "hung", final_sync_s=2.0)
                row = result.row()
                row["uploaded"] = result.summary.get("uploaded", 0)
                rows[name] = row
                store.close()
            config.use(None)
    print(f"Phase-change lateness on the real clock, {args.seconds:g} s per column (ms; goal p99 <= 50)")
    keys = [
        "ticks",
        "tick_p50_ms",
        "tick_p99_ms",
        "phase_changes",
        "phase_p50_ms",
        "phase_p99_ms",
        "max_ms",
        "uploaded",
    ]
    print(f"{'':16}" + "".join(f"{name:>12}" for name in rows))
    for key in keys:
        cells = []
        for name in rows:
            v = rows[name][key]
            cells.append(f"{v:>12.1f}" if isinstance(v, float) else f"{v!s:>12}")
        print(f"{key:16}" + "".join(cells))


if __name__ == "__main__":
    main()

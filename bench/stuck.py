"""Stuck sensors in the running app: how soon the kit flags one, and how often it flags a working one.

Runs ``kit run intersection`` (the app, its fused model and its stuck-sensor watch, ``kit.ml.stuck``)
on the simulated intersection:

- a normal day (``--days`` of them, seeds 0, 1, ...): every flag is a false one; reported per day
  and as the share of the day's sensor samples a working sensor spent flagged;
- faults (``kit.sim.world.World.stick``) from the start of a run at night (02:00) and by day (12:00):
  the PIR stuck at "nobody" and at "someone", the distance sensor stuck at a queue of four cars and
  at the empty lane. Reported: minutes until the flag (the detection delay: the time the model runs on
  the stuck reading unnoticed, the bench/fusion.py "stuck" figures), or "not within" the run's hours.

    .venv/bin/python bench/stuck.py [--days 2] [--fault-hours 4]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kit.apps.intersection import AppOptions, IntersectionApp  # noqa: E402
from kit.ml.stuck import StuckRules  # noqa: E402
from kit.sim.world import CAR_SPACING_M, LANE_M  # noqa: E402
from kit.store import Store  # noqa: E402

FAULTS = {
    "pir stuck at nobody": ("pir", False),
    "pir stuck at someone": ("pir", True),
    "distance stuck at 4 cars": ("distance", LANE_M - 4 * CAR_SPACING_M),
    "distance stuck at the empty lane": ("distance", LANE_M),
}
STARTS = {"night (02:00)": "2026-10-15T02:00:00", "day (12:00)": "2026-10-15T12:00:00"}


def run(*, seed: int, start: str, hours: float, fault: tuple[str, object] | None) -> tuple[dict, list]:
    with tempfile.TemporaryDirectory(prefix="kit-stuck-") as tmp:
        store = Store(str(Path(tmp) / "kit.db"))
        app = IntersectionApp(
            store,
            AppOptions(seed=seed, start=start, hours=hours, resume=False, status_path=str(Path(tmp) / "status.json")),
        )
        try:
            if fault is not None:
                app.board.world.stick(*fault)
            summary = app.run()
            return summary, list(app.model_loop.flag_log)
        finally:
            app.close()
            store.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--days", type=int, default=2, help="normal days (seeds 0..days-1) for the false flags")
    ap.add_argument("--fault-hours", type=float, default=4.0, help="length of each run with a fault")
    args = ap.parse_args()
    logging.getLogger("kit").setLevel(logging.WARNING)
    t0 = time.perf_counter()
    r = StuckRules()
    print(
        f"rules: distance unchanged (<= {1000 * r.distance_tolerance_m:.0f} mm) for {r.distance_hold_s / 60:.0f} min "
        f"while >= {r.distance_events} frames showed another queue class; PIR unchanged for "
        f"{r.pir_hold_s / 60:.0f} min while >= {r.pir_events} crossings were served"
    )
    print("\nnormal days (every flag is false):")
    total_flags = 0
    for seed in range(args.days):
        summary, flags = run(seed=seed, start="2026-10-15T00:00:00", hours=24.0, fault=None)
        total_flags += len(flags)
        what = ", ".join(f"{s} at {t / 3600:.1f} h" for s, t in flags) or "none"
        print(
            f"  seed {seed}: {len(flags)} false flag(s) ({what}); {summary['crossings']} crossings, "
            f"{summary['frames']} frames"
        )
    print(f"  false flags per normal day: {total_flags / max(args.days, 1):.2f}")
    print(f"\nfaults from the start of a {args.fault_hours:g} h run (seed 0): minutes until flagged")
    print(f"{'fault':36s}" + "".join(f"{k:>16s}" for k in STARTS))
    for name, fault in FAULTS.items():
        row = f"{name:36s}"
        for start in STARTS.values():
            _summary, flags = run(seed=0, start=start, hours=args.fault_hours, fault=fault)
            mine = [t for s, t in flags if s == fault[0]]
            other = [s for s, _t in flags if s != fault[0]]
            cell = f"{mine[0] / 60:.0f}" if mine else f"not in {args.fault_hours:g} h"
            row += f"{cell + (' (+' + ','.join(other) + ')' if other else ''):>16s}"
        print(row)
    print(f"\ndone in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

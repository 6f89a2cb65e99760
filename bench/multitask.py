"""Multi-task and one data provider: shared backbone vs two single-task models; one capture per tick vs one per task.

One run, figures side by side:

1. ``kit.ml.multitask``: the kit's two-headed model (``build_model``) against two single-task models
   of the same architecture, trained on the same frames for the same epochs: parameters, file size,
   TFLite latency per frame (one call vs two), queue accuracy and pedestrian F1 on held-out frames.
2. ``kit.ml.provider``: three concurrent tasks (queue detector, pedestrian detector, logger) for a
   number of ticks of the simulated world, sharing one capture per tick vs each capturing its own
   frame: captures per tick, captures per second, CPU time per tick.

    .venv/bin/python bench/multitask.py [--train 3000] [--epochs 6] [--ticks 300]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from kit import progress
from kit.ml.data import make_dataset  # noqa: E402
from kit.ml.host import ModelHost  # noqa: E402
from kit.ml.multitask import compare, train_models  # noqa: E402
from kit.ml.provider import run_tasks, standard_tasks  # noqa: E402
from kit.sim.camera import SimCamera  # noqa: E402
from kit.sim.world import World  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--train", type=int, default=3000)
    ap.add_argument("--test", type=int, default=1000)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--ticks", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    t0 = time.perf_counter()
    train = make_dataset(args.train, seed=args.seed + 1)
    test = make_dataset(args.test, seed=args.seed + 2, conditions="day")
    models = train_models(train, epochs=args.epochs, width=args.width, seed=args.seed)
    folder = tempfile.mkdtemp(prefix="bench-multitask-")
    report = compare(models, test, runs=300, folder=folder)
    s, p = report["shared"], report["separate"]
    print(
        f"multi-task: {args.train} training frames x {args.epochs} epochs, width {args.width}, "
        f"{args.test} held-out daylight frames ({time.perf_counter() - t0:.0f} s)"
    )
    print(f"{'':>22} {'shared':>10} {'separate':>10} {'separate/shared':>16}")
    for key, label, fmt in [
        ("params", "parameters", "{:>10,}"),
        ("bytes", "tflite bytes", "{:>10,}"),
        ("ms", "ms per frame (p50)", "{:>10.3f}"),
        ("queue_accuracy", "queue accuracy", "{:>10.3f}"),
        ("pedestrian_f1", "pedestrian F1", "{:>10.3f}"),
    ]:
        ratio = p[key] / s[key] if s[key] else float("nan")
        print(f"{label:>22} {fmt.format(s[key])} {fmt.format(p[key])} {ratio:>15.2f}x")

    host = ModelHost(os.path.join(folder, "shared.tflite"))
    rows = {}
    for shared in (True, False):
        world = World(seed=args.seed)
        stats = run_tasks(
            SimCamera(world, seed=args.seed),
            standard_tasks(host),
            ticks=args.ticks,
            shared=shared,
            world=world,
            seconds_per_tick=1.0,
        )
        rows[shared] = stats
    a, b = rows[True], rows[False]
    print(f"\ndata provider: 3 concurrent tasks (queue, pedestrian, logger), {args.ticks} ticks of the simulated world")
    print(f"{'':>22} {'shared':>10} {'own frame':>10} {'own/shared':>16}")
    for label, fa, fb, fmt in [
        ("captures per tick", a.captures_per_tick, b.captures_per_tick, "{:>10.2f}"),
        ("captures per second", a.captures_per_s, b.captures_per_s, "{:>10.0f}"),
        ("CPU ms per tick", a.cpu_ms_per_tick, b.cpu_ms_per_tick, "{:>10.3f}"),
        ("wall ms per tick", 1e3 * a.wall_s / a.ticks, 1e3 * b.wall_s / b.ticks, "{:>10.3f}"),
        ("ticks tasks agreed", a.same_frame_ticks, b.same_frame_ticks, "{:>10d}"),
    ]:
        ratio = fb / fa if fa else float("nan")
        print(f"{label:>22} {fmt.format(fa)} {fmt.format(fb)} {ratio:>15.2f}x")
    return 0


if __name__ == "__main__":
    progress.show_bars()  # training, rounds and sweeps show a bar in a terminal
    raise SystemExit(main())

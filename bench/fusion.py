"""Fusion ablation: sensors only, camera only, fused (float32) and the shipped fused int8 early exit, per condition.

Trains the three variants of ``kit.ml.fusion.build_fused`` on the same whole-day frames (seed
``--seed``; validation ``--seed`` + 1), then measures every variant on frames of the seeds in
``kit.ml.fusion.EVAL_SEEDS`` (never used for training) in each condition: day, dusk, night, leaves,
road works, one sensor stuck (unnoticed), and, below the line, a stuck sensor the kit has flagged,
glare, shake, fog, rain and a dirty lens. Each cell is "mean [lowest, highest seed]".

Goals (issue 18): fused queue accuracy >= 0.95 and pedestrian F1 >= 0.90 in every condition; the
int8 early-exit version within 1 point of float32.

    .venv/bin/python bench/fusion.py [--n-train 6000] [--epochs 16] [--n-eval 300] [--ship] [--only-fused]
    .venv/bin/python bench/fusion.py --breakdown kit/models/fusion   # stuck-sensor figures per sensor and light

``--ship`` writes the fused model's float32 and int8 parts, its trained Keras weights (``weights.npz``, what a
retrain starts from: ``kit.ml.fusion.load_fused_keras``) and its card (``kit.ml.card.ModelCard``, figures of the
int8 early exit over the evaluation seeds) to ``kit/models/fusion``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from kit import progress
from kit.ml import MODELS_DIR  # noqa: E402
from kit.ml.card import ModelCard, file_sha256  # noqa: E402
from kit.ml.data import make_fused_dataset  # noqa: E402
from kit.ml.fusion import (  # noqa: E402
    CONDITIONS,
    EVAL_SEEDS,
    MORE_CONDITIONS,
    FusedHost,
    calibration_data,
    exit_share,
    figures,
    make,
    predictor,
)
from kit.ml.sensors import SENSORS  # noqa: E402

GOALS = {"queue_accuracy": 0.95, "pedestrian_f1": 0.90}


def table(results: dict[str, dict], conditions: tuple[str, ...]) -> None:
    names = list(results)
    print(f"{'condition':14s}" + "".join(f"{n:>46s}" for n in names))
    print(f"{'':14s}" + "".join(f"{'queue acc':>23s}{'pedestrian F1':>23s}" for _ in names))
    for c in conditions:
        row = f"{c:14s}"
        for n in names:
            f = results[n][c]
            row += f"{str(f['queue_accuracy']):>23s}{str(f['pedestrian_f1']):>23s}"
        print(row)


LIGHTS = (("day", 0.5, 1.01), ("dusk", 0.05, 0.5), ("night", -0.01, 0.05))


def breakdown(host: FusedHost, n: int, cache: dict | None = None) -> None:
    """Pedestrian F1 and queue accuracy of `host` (early exit) with one sensor stuck, per sensor and per light."""
    from kit.ml.card import scores

    cache = {} if cache is None else cache
    print(f"\n{'stuck sensor, by light':34s}{'frames':>8s}{'queue acc':>11s}{'pedestrian F1':>15s}")
    for cond in ("stuck", "stuck_flagged"):
        for sensor, code in (("distance", 1), ("pir", 2)):
            for light, lo, hi in LIGHTS:
                q, p, tq, tp = [], [], [], []
                for seed in EVAL_SEEDS:
                    key = (cond, seed, n, 64)
                    if key not in cache:
                        cache[key] = make_fused_dataset(n, seed=seed, conditions=cond)
                    data = cache[key]
                    daylight = data.meta["daylight"]
                    pick = (data.meta["stuck"] == code) & (daylight >= lo) & (daylight < hi)
                    if pick.any():
                        out = host.predict_batch(data.x[pick], data.sensors[pick])
                        q.append(out["queue"]), p.append(out["pedestrian"])
                        tq.append(data.queue[pick]), tp.append(data.pedestrian[pick])
                if q:
                    f = scores(np.concatenate(q), np.concatenate(p), np.concatenate(tq), np.concatenate(tp))
                    label = f"{cond} {sensor} {light}"
                    print(f"{label:34s}{sum(map(len, tq)):8d}{f['queue_accuracy']:11.3f}{f['pedestrian_f1']:15.3f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n-train", type=int, default=6000)
    ap.add_argument("--epochs", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-eval", type=int, default=300, help="frames per condition and evaluation seed")
    ap.add_argument("--only-fused", action="store_true", help="skip training the sensors-only and camera-only variants")
    ap.add_argument("--ship", action="store_true", help="write the fused model and its card to kit/models/fusion")
    ap.add_argument(
        "--breakdown",
        metavar="FOLDER",
        help="only print the stuck-sensor figures per sensor and light of a saved model (e.g. kit/models/fusion)",
    )
    args = ap.parse_args()
    if args.breakdown:
        breakdown(FusedHost.load(args.breakdown), args.n_eval)
        return 0

    t0 = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="fusion-bench-"))
    folder = MODELS_DIR / "fusion" if args.ship else work / "fused"
    data = (
        make_fused_dataset(args.n_train, seed=args.seed, conditions="train"),
        make_fused_dataset(1000, seed=args.seed + 1, conditions="train"),
    )
    calibration_sets = calibration_data(args.seed + 1)
    print(
        f"made {args.n_train} training, 1000 validation and {sum(map(len, calibration_sets.values()))} calibration frames "
        f"in {time.perf_counter() - t0:.0f} s"
    )
    made = {}
    for variant in ("fused",) if args.only_fused else ("sensors_only", "camera_only", "fused"):
        made[variant] = make(
            folder if variant == "fused" else work / variant,
            seed=args.seed,
            n_train=args.n_train,
            epochs=args.epochs if variant != "sensors_only" else max(4, args.epochs // 4),
            variant=variant,
            progress=None,
            data=data,
            calibration_sets=calibration_sets,
        )
        print(
            f"trained {variant} in {made[variant]['train_seconds']:.0f} s; exit threshold {made[variant]['threshold']}"
        )
    cache: dict = {}
    conds = CONDITIONS + MORE_CONDITIONS
    results = {}
    for variant, m in made.items():
        host = FusedHost(*m["paths"]["float32"], threshold=m["threshold"])
        results[variant if variant != "fused" else "fused float32"] = figures(
            predictor(host, early_exit=False), conditions=conds, n=args.n_eval, cache=cache
        )
    fused = made["fused"]
    int8 = FusedHost(*fused["paths"]["int8"], threshold=fused["threshold"])
    results["fused int8 early exit"] = figures(predictor(int8), conditions=conds, n=args.n_eval, cache=cache)

    print(f"\nper condition, {args.n_eval} frames x {len(EVAL_SEEDS)} seeds {EVAL_SEEDS}: mean [lowest, highest seed]")
    table(results, CONDITIONS)
    print("-" * 14)
    table(results, MORE_CONDITIONS)

    shipped = results["fused int8 early exit"]
    missed = [
        f"{c} {m} {shipped[c][m].mean:.3f} < {g}"
        for c in CONDITIONS
        for m, g in GOALS.items()
        if shipped[c][m].mean < g
    ]
    print(
        "\ngoals (fused int8 early exit, every condition): " + ("met" if not missed else "MISSED: " + "; ".join(missed))
    )
    f32 = results["fused float32"]
    gap = max(f32[c][m].mean - shipped[c][m].mean for c in CONDITIONS for m in GOALS)
    print(
        f"int8 early exit vs float32: largest loss over conditions and metrics {100 * gap:+.1f} points "
        f"({'within' if gap <= 0.01 else 'MORE than'} 1 point)"
    )
    for cond in ("stuck", "stuck_flagged"):
        drops = {m: shipped["day"][m].mean - shipped[cond][m].mean for m in GOALS}
        print(
            f"graceful degradation, {cond:13s}: queue acc {shipped[cond]['queue_accuracy'].mean:.3f} "
            f"(day {drops['queue_accuracy']:+.3f} lower), pedestrian F1 {shipped[cond]['pedestrian_f1'].mean:.3f} "
            f"(day {drops['pedestrian_f1']:+.3f} lower)"
        )
    normal = cache.get(("day", EVAL_SEEDS[0], args.n_eval, 64))
    shares = {c: np.mean([exit_share(int8, cache[(c, s, args.n_eval, 64)]) for s in EVAL_SEEDS]) for c in CONDITIONS}
    print("share of frames the int8 stem answers alone: " + ", ".join(f"{c} {v:.2f}" for c, v in shares.items()))
    if normal is not None:
        f, v = normal.x[0], normal.sensors[0]
        ee = [int8.predict(f, v).ms for _ in range(200)]
        full = FusedHost(*fused["paths"]["float32"], threshold=1.01)
        fl = [full.predict(f, v).ms for _ in range(200)]
        print(
            f"latency of one frame (p50, 1 thread): int8 early exit {np.median(ee):.2f} ms, "
            f"float32 full {np.median(fl):.2f} ms; sizes int8 {int8.size_bytes} B, float32 {full.size_bytes} B"
        )

    breakdown(int8, args.n_eval, cache)

    if args.ship:
        files = [p.name for p in fused["paths"]["int8"] + fused["paths"]["float32"]]
        card = ModelCard(
            name="fusion",
            task="queue class (empty, 1-3, 4+ cars) and pedestrian waiting, from the camera frame and the sensor vector",
            files=files,
            sha256={n: file_sha256(folder / n) for n in files},
            size_bytes=sum((folder / n).stat().st_size for n in files[:2]),
            precision="int8",
            inputs={
                "frame": {"shape": [1, 64, 64, 1], "meaning": "grayscale camera frame, uint8 or pixel / 255"},
                "sensors": {"shape": [1, len(SENSORS)], "names": list(SENSORS), "meaning": "kit.ml.sensors.vector"},
            },
            outputs={
                "queue": {"shape": [1, 3], "classes": ["empty", "short", "long"]},
                "pedestrian": {"shape": [1, 1], "threshold": 0.5},
            },
            conditions={c: dict(f) for c, f in shipped.items()},
            reproduce=f"python bench/fusion.py --n-train {args.n_train} --epochs {args.epochs} --seed {args.seed} "
            f"--n-eval {args.n_eval} --ship",
            limitations="Mid fusion (frame features and sensor features joined before the heads), trained on simulated "
            "frames of October days. A sensor stuck at a wrong value without the kit flagging it costs "
            "the figures in 'stuck'; a flagged (masked) one those of 'stuck_flagged' (the app flags a sensor "
            "from its history, kit.ml.stuck; bench/stuck.py measures how long that takes). A dirty lens was never "
            "in training: the stream drift monitor is there to notice it.",
            details={
                "fusion": "mid",
                "threshold": fused["threshold"],
                "params": fused["params"],
                "macs": fused["macs"],
                "eval_seeds": list(EVAL_SEEDS),
                "frames_per_seed": args.n_eval,
                "float32": {c: {m: str(i) for m, i in f.items()} for c, f in f32.items()},
                "exit_share": {c: round(float(v), 3) for c, v in shares.items()},
                "training": {
                    k: fused[k]
                    for k in ("seed", "n_train", "n_val", "epochs", "data_seconds", "train_seconds", "tensorflow")
                },
                "builder": "kit.ml.fusion.build_fused",
                "host": "kit.ml.fusion.FusedHost",
                # the trained network itself, for retraining (kit.ml.fusion.load_fused_keras; not sent to devices)
                "keras_weights": fused["keras_weights"],
                "architecture": fused["architecture"],
            },
            folder=folder,
        )
        card.save(folder / "card.json")
        print(f"wrote {folder} ({', '.join(files)}) and card.json")
    print(f"done in {time.perf_counter() - t0:.0f} s")
    return 1 if missed else 0


if __name__ == "__main__":
    progress.show_bars()  # training, rounds and sweeps show a bar in a terminal
    raise SystemExit(main())

"""The cloud retrain of the app's default fused model on a realistic upload: diverted road works, with sensors.

    python bench/fused_retrain.py               # ~3 min on 2 shared cores; every figure is printed here
    python bench/fused_retrain.py --upload 512 --epochs 8 --replay 250

The scenario of ``bench/lifecycle.py`` (``--layout diverted``): road works close the lane and the queue waits in
the other lane behind a temporary stop line, a layout no model has seen. The device uploads ``--upload`` frames
of the works (daylight), each with the sensor vector of its moment (the distance to the queue's tail and the PIR
with the kit's sensor noise, ``kit.ml.sensors.SensorNoise``; the light level as the daylight; 14 C) and labelled
as the app labels them (``ModelLoop``: the queue class the distance implies, ``queue_class_from_distance``, and
the PIR), through ``FrameUploader`` to a local S3 (moto, in this process). ``retrain_from_s3(base="fusion")``
(the code behind ``kit model retrain --from-s3 DEVICE --base fusion``) fine-tunes the fused model on them and
writes its folder. Printed: the card's figures on the newest held-out uploads, new vs old; the same 400
held-out works and 400 day frames as ``bench/lifecycle.py`` (seeds + 50, + 51; true classes); the fused
conditions (day, dusk, night, leaves, road works, a stuck sensor) on ``--n-eval`` fresh frames of seed 20001,
so that what the replay keeps is seen; the seconds to train and in all.
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

from kit.ml.data import make_dataset  # noqa: E402


def works_conditions() -> dict:
    """The camera's conditions once the diverted works have begun (as bench/lifecycle.py --layout diverted)."""
    return {"daylight": (0.6, 1.0), "diverted": 1.0}


def with_sensors(data, seed: int):
    """(sensor vectors, queue labels from the distance reading, pedestrian labels from the PIR) of a camera set."""
    from kit.ml import sensors as S
    from kit.sim import world as W

    rng = np.random.default_rng([seed, 19])
    queue_len = data.meta["queue_length"].astype(float)
    readings = S.SensorNoise().apply(
        rng,
        distance_m=np.maximum(W.MIN_ECHO_M, W.LANE_M - W.CAR_SPACING_M * queue_len),
        waiting=data.meta["pedestrians_waiting"],
        light=data.meta["daylight"].astype(float),
        road_temp_c=np.full(len(data), 14.0),
    )
    vec = S.vectors(readings)
    queue = np.array([S.queue_class_from_distance(float(d)) for d in readings["distance_m"]])
    return vec, queue, np.asarray(readings["pir"], int)


def accuracy(host, data, vec) -> float:
    return float((host.predict_batch(data.x, vec)["queue"].argmax(1) == data.queue).mean())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--upload", type=int, default=1024, help="works frames the device uploads")
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--learning-rate", type=float, default=3e-3)
    p.add_argument("--replay", type=int, default=500, help="frames of the fused training distribution")
    p.add_argument("--n-eval", type=int, default=200, help="fresh frames per fused condition (seed 20001)")
    p.add_argument(
        "--pedestrian-labels",
        choices=("base", "pir"),
        default="base",
        help="what the uploads teach the pedestrian heads (kit.ml.ota.retrain_fused.PEDESTRIAN_LABELS)",
    )
    args = p.parse_args(argv)
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    from kit.cloud.emulator import LocalCloud
    from kit.ml.card import scores
    from kit.ml.fusion import CONDITIONS, FusedHost, figures, predictor
    from kit.ml.ota.retrain import FrameUploader, retrain_from_s3

    t0 = time.perf_counter()
    uploads = make_dataset(args.upload, seed=args.seed + 1, conditions=works_conditions())
    vec, queue, pir = with_sensors(uploads, args.seed + 1)
    print(
        f"{args.upload} works frames to upload; the distance sensor's queue class agrees with the true one on "
        f"{(queue == uploads.queue).mean():.3f}, the PIR with the pedestrian on {(pir == uploads.pedestrian).mean():.3f}"
    )
    with tempfile.TemporaryDirectory() as tmp, LocalCloud():
        up = FrameUploader("kit-bench-fused", chunk=64, limit=args.upload)
        for f, q, ped, v in zip(uploads.x, queue, pir, vec):
            if up.add(f, int(q), int(ped), sensors=v):
                up.flush()
        up.flush()
        t1 = time.perf_counter()
        card = retrain_from_s3(
            "kit-bench-fused",
            base="fusion",
            out=tmp,
            seed=args.seed,
            epochs=args.epochs,
            replay=args.replay,
            learning_rate=args.learning_rate,
            progress=None,
            pedestrian_labels=args.pedestrian_labels,
        )
        retrain_s = time.perf_counter() - t1
        d = card["details"]
        new = FusedHost.load(card["_path"])
        old = FusedHost.load("fusion")
        m, mb = d["metrics"], d["metrics_base"]
        print(
            f"retrain_from_s3(base='fusion'): {card['data']['uploaded']['trained_on']} uploads + {args.replay} replayed "
            f"frames, {args.epochs} epochs at {args.learning_rate:g}, pedestrian labels: {args.pedestrian_labels}; training {d['training']['train_seconds']:.0f} s, "
            f"the whole call {retrain_s:.0f} s (download, replay frames, training, int8 export, scoring)"
        )
        print(
            f"newest {m['n']} held-out uploads (sensor labels), int8 early exit: queue accuracy "
            f"{m['queue_accuracy']:.3f} (old {mb['queue_accuracy']:.3f}), pedestrian F1 {m['pedestrian_f1']:.3f} "
            f"(old {mb['pedestrian_f1']:.3f}); the stem answers {d['early_exit']['exit_share']:.2f} of them alone "
            f"at the base's threshold {d['threshold']}"
        )
        for what, seed, cond in (("works", args.seed + 50, works_conditions()), ("day", args.seed + 51, "day")):
            data = make_dataset(400, seed=seed, conditions=cond)
            v, _, _ = with_sensors(data, args.seed)
            got = {name: host.predict_batch(data.x, v) for name, host in (("old", old), ("new", new))}
            s = {k: scores(g["queue"], g["pedestrian"], data.queue, data.pedestrian) for k, g in got.items()}
            print(
                f"400 held-out {what} frames (true classes): queue accuracy old {s['old']['queue_accuracy']:.3f}, "
                f"new {s['new']['queue_accuracy']:.3f}; pedestrian F1 old {s['old']['pedestrian_f1']:.3f}, "
                f"new {s['new']['pedestrian_f1']:.3f}"
            )
        cache: dict = {}
        figs = {
            name: figures(predictor(host), conditions=CONDITIONS, seeds=(20_001,), n=args.n_eval, cache=cache)
            for name, host in (("old", old), ("new", new))
        }
        print(f"fused conditions, {args.n_eval} fresh frames of seed 20001 (queue accuracy / pedestrian F1):")
        for c in CONDITIONS:
            o, n = figs["old"][c], figs["new"][c]
            print(
                f"  {c:<11} old {o['queue_accuracy'].mean:.3f} / {o['pedestrian_f1'].mean:.3f}   "
                f"new {n['queue_accuracy'].mean:.3f} / {n['pedestrian_f1'].mean:.3f}"
            )
    print(f"done in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

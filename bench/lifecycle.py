"""Models in the field, end to end: road works start at a known hour; drift, a candidate, canary, swap, rollback.

    python bench/lifecycle.py                 # ~6 min on 2 shared cores; every figure is printed here
    python bench/lifecycle.py --realtime-only # part 2 only (under a minute)
    python bench/lifecycle.py --fused         # part 1 with the app's default fused model (camera + sensors)
    python bench/lifecycle.py --layout cones --leaves 0.4 --frame-min 0.25 --upload 768 --retrain-epochs 6 \\
        --retrain-lr 0.001                    # the earlier scenario: leaves hide the cars (no recovery)

Part 1 runs on simulated time (deterministic for a seed; the updater is stepped after each frame):
a camera frame every ``--frame-min`` simulated minutes from 06:00 (the app's 10 s), the app's drift monitor
(scene layout and confidence, windows of 64 frames), road works from ``--works-hour``: by default works that
close the lane and divert the queue into the other one behind a temporary stop line (``--layout diverted``,
kit.sim.camera.Scene.diverted: a layout the shipped model never saw), or cones and a barrier beside the usual
queue (``--layout cones``), optionally with leaves on the lens from the same hour (``--leaves``).
When drift alarms, the device labels the next frames with a sensor queue class (the simulation's true class
stands in for the one the distance sensor implies, which the app uses), adapts the head on them
(kit.ml.ota.headpatch, loop (a)) and offers the result: canary, then swap or refusal. It also uploads
those frames to S3 (``--upload`` of them, loop (b)); the operator retrains on them (``retrain_from_s3``, the
code behind ``kit model retrain --from-s3``) and deploys the result, which the device canaries and swaps.
Held-out works frames score the old, adapted and retrained models and the app's default fused model (camera +
sensors; not delivered over the air); with leaves, ``why`` says where the accuracy goes (the same scenes
without leaves; frames grouped by how much of the queue the leaves hide). Then the operator deploys over the
air (a real moto endpoint, S3 + shadow) a deliberately bad model (every class shifted by one): it must be
refused, and the queue classes used for control must be the very ones of a run without it.

Part 2 runs on the wall clock (see ``part2``): one control loop on the app's absolute schedule
(kit.clock.RealClock) ticks every ``--tick-ms``, a model frame each tick, through alternating windows of
``--window`` ticks: nothing to do, an update with the candidate in its own low-priority process
(kit.ml.ota.worker, the app's way), nothing to do, an update with the candidate on the updater's thread. It
counts missed ticks (started after the next tick was due) per kind of window, side by side. The operator
deploys from a process of its own, and the local AWS endpoint runs as a process of its own (``kit cloud
serve``), as both are other machines for a real device.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kit import progress
from kit.ml import shipped_model  # noqa: E402
from kit.ml.card import load_card  # noqa: E402
from kit.ml.data import make_dataset  # noqa: E402
from kit.ml.host import ModelHost  # noqa: E402
from kit.ml.ota.canary import CanaryPolicy  # noqa: E402
from kit.ml.ota.field import FieldModel  # noqa: E402
from kit.ml.ota.headpatch import adapted_model, patch_head, shipped_head, write_candidate  # noqa: E402

WINDOW = 64  # the app's drift window (frames)


def drift_monitor(host: ModelHost):
    """The drift monitor as the app builds it: reference frames of the trained conditions, layout + confidence."""
    from kit.ml.drift import DriftMonitor, Reference

    reference = make_dataset(256, seed=9_001, conditions="day")
    probs = host.predict_batches(reference.x)["queue"]
    return DriftMonitor(Reference.from_frames(reference.x, probs), psi_threshold=float("inf"), ks_p_threshold=0.0)


def works_conditions(layout: str, leaves: float) -> dict:
    """The camera's conditions once the works have begun (kit.ml.data conditions)."""
    cond = {"daylight": (0.6, 1.0), "road_works": 1.0}
    if layout == "diverted":
        cond = {"daylight": (0.6, 1.0), "diverted": 1.0}
    if leaves > 0:
        cond["leaves"] = (leaves * 0.5, leaves)
    return cond


def stream(seed: int, start_h: float, end_h: float, frame_min: float, works_h: float, leaves: float, layout: str):
    """(hour, frames (n, 64, 64), queue classes) in slots of one frame each, the scene changing at works_h."""
    hours = np.arange(start_h, end_h, frame_min / 60.0)
    before = hours < works_h
    normal = make_dataset(int(before.sum()), seed=seed, conditions="day")
    works = make_dataset(int((~before).sum()), seed=seed + 1, conditions=works_conditions(layout, leaves))
    return hours, np.concatenate([normal.x, works.x]), np.concatenate([normal.queue, works.queue])


def retrain_and_deploy(args, device: str, models: Path, base: str, name: str, poll) -> tuple[dict, dict]:
    """The operator's step: retrain ``base`` on the device's uploads (timed), send the result over the air, and let
    the device read its shadow (the retrained model then goes through verify and canary). Returns (card, spec)."""
    from kit.ml.ota.deploy import deploy
    from kit.ml.ota.retrain import retrain_from_s3

    t0 = time.perf_counter()
    card = retrain_from_s3(
        device,
        base=base,
        out=models,
        name=name,
        seed=args.seed,
        epochs=args.retrain_epochs,
        learning_rate=args.retrain_lr,
        replay=args.replay,
        progress=None,
    )
    card["wall_s"] = round(time.perf_counter() - t0, 1)
    spec = deploy(card["_path"], device, version="retrained-1")
    poll()
    return card, spec


def part1(args, folder: Path, models: Path, cloud=None) -> dict:
    factory = ModelHost(shipped_model())
    field = FieldModel(factory, folder / "device", policy=CanaryPolicy(frames=48, probation_frames=32)).start(
        thread=False
    )
    monitor = drift_monitor(factory)
    from kit.ml.ota.retrain import FrameUploader
    from kit.ml.ota.updater import shadow_poller

    device = "kit-bench-field"
    uploader = FrameUploader(device, chunk=64, limit=args.upload)
    poll = shadow_poller(field.updater, device)
    retrained_at = None
    retrain_card = None
    polled_phase = None
    hours, frames, labels = stream(
        args.seed, 6.0, args.end_hour, args.frame_min, args.works_hour, args.leaves, args.layout
    )
    used, correct, versions = [], [], []
    window_f, window_p = [], []
    first_alarm = candidate_at = swapped_at = retrained_swap_at = None
    labelled_f, labelled_y = [], []
    log = []
    last_phase = "idle"
    for _i, (hour, frame, label) in enumerate(zip(hours, frames, labels)):
        probs, _, _, _ = field.predict(frame, sensor_class=int(label))
        field.updater.step()
        if retrained_at is not None and field.status()["phase"] != polled_phase:
            polled_phase = field.status()["phase"]
            poll()  # the device reports each new phase of the retrained model to its shadow
        used.append(int(np.argmax(probs)))
        correct.append(int(np.argmax(probs)) == int(label))
        versions.append(field.status()["version"])
        if field.swaps_taken and swapped_at is None:
            swapped_at = hour
        if retrained_swap_at is None and versions[-1] == "retrained-1":
            retrained_swap_at = hour
        window_f.append(frame)
        window_p.append(probs)
        if len(window_f) == WINDOW:
            report = monitor.check(np.stack(window_f), np.stack(window_p))
            field.note_drift(report.drift)
            window_f, window_p = [], []
            if report.drift and first_alarm is None and hour >= args.works_hour:
                first_alarm = hour
                log.append(f"{hour:05.2f} h  drift alarm: {'; '.join(report.reasons)[:120]}")
        if first_alarm is not None and retrained_at is None:
            # loop (b): the drift window's frames go to S3 with the sensors' labels (queue: ultrasonic; the
            # bench's stream has no pedestrian sensor reading, so the flag is 0 and only the queue head learns)
            if uploader.add(frame, int(label)) or uploader.full:
                uploader.flush()
            if uploader.full and not uploader.buffer:
                # the camera model this simulated device runs (its uploads have no sensors)
                retrain_card, _ = retrain_and_deploy(args, device, models, "intersection", "retrained", poll)
                retrained_at = hour
                m, mb = retrain_card["metrics"], retrain_card["metrics_base"]
                log.append(
                    f"{hour:05.2f} h  retrained in the cloud on {uploader.sent} uploaded frames "
                    f"({retrain_card['wall_s']:.0f} s): on its newest held-out uploads {m['queue_accuracy']:.3f} "
                    f"vs old {mb['queue_accuracy']:.3f}; deployed"
                )
        if first_alarm is not None and candidate_at is None:
            labelled_f.append(frame)
            labelled_y.append(int(label))  # the ultrasonic sensor's queue class of the same moment
            if len(labelled_f) == args.labelled:
                data = adapted_model(shipped_model(), np.stack(labelled_f), np.array(labelled_y), seed=args.seed)
                path = write_candidate(
                    data,
                    models,
                    "adapted",
                    base_card=load_card("intersection"),
                    note="kit.ml.ota.headpatch.adapted_model on sensor-labelled frames",
                )
                said = field.offer_file(path, version="adapted-1", card=path.with_suffix(".json"))
                candidate_at = hour
                log.append(
                    f"{hour:05.2f} h  adapted head from {len(labelled_y)} sensor-labelled frames offered: {said}"
                )
        status = field.status()
        if status["phase"] != last_phase:
            last_phase = status["phase"]
            if last_phase in ("canary", "rejected", "probation", "running", "rolled back"):
                log.append(f"{hour:05.2f} h  {last_phase}: {status['reason'][:160]}")
    hours_arr = np.asarray(hours)
    correct = np.asarray(correct)
    before = hours_arr < args.works_hour
    after_works = ~before
    out = {
        "frames": len(hours_arr),
        "accuracy_before_works": round(float(correct[before].mean()), 3),
        "accuracy_works_old_model": round(float(correct[after_works & (hours_arr < (swapped_at or 99))].mean()), 3),
        "first_drift_alarm_h": first_alarm,
        "candidate_offered_h": candidate_at,
        "swapped_h": swapped_at,
        "final_model": field.status()["version"],
        "final_phase": field.status()["phase"],
        "final_reason": field.status()["reason"][:200],
        "retrained_h": retrained_at,
        "uploaded_frames": uploader.sent,
        "log": log,
    }
    # live accuracy during the works by the model that scored each frame (factory, adapted head, retrained)
    versions_arr = np.asarray(versions)
    out["accuracy_works_by_model"] = {
        v: round(float(correct[after_works & (versions_arr == v)].mean()), 3)
        for v in dict.fromkeys(versions_arr[after_works])
    }
    if swapped_at is not None:
        out["accuracy_works_after_swap"] = round(float(correct[hours_arr >= swapped_at].mean()), 3)
        out["time_to_swap_h"] = round(swapped_at - args.works_hour, 2)
    if retrained_swap_at is not None:
        out["retrained_swap_h"] = retrained_swap_at
        out["time_to_recovery_h"] = round(retrained_swap_at - args.works_hour, 2)
    # the same works frames through an adapted candidate and the old model, on frames the adaptation never saw
    held = make_dataset(400, seed=args.seed + 50, conditions=works_conditions(args.layout, args.leaves))
    day = make_dataset(400, seed=args.seed + 51, conditions="day")
    for name in ("old", "adapted", "retrained"):
        if name != "old" and not (models / f"{name}.tflite").exists():
            continue
        host = factory if name == "old" else ModelHost(models / f"{name}.tflite", verify=False)
        for what, data in (("works", held), ("day", day)):
            q = host.predict_batches(data.x)["queue"].argmax(1)
            out[f"held_out_{what}_accuracy_{name}"] = round(float((q == data.queue).mean()), 3)
    out.update(fused_figures(held, day, args.seed))
    if args.leaves > 0:  # where the accuracy goes when leaves hide the cars
        out["why"] = why(
            held,
            {
                "old": factory,
                **(
                    {"retrained": ModelHost(models / "retrained.tflite", verify=False)}
                    if (models / "retrained.tflite").exists()
                    else {}
                ),
            },
        )
    out["_used"] = used
    return out


def fused_figures(held, day, seed: int) -> dict:
    """The app's default model (kit/models/fusion, int8 early exit: camera + sensor vector) on the same held-out
    frames, each with a sensor vector of its moment: the distance to the queue's tail and the PIR with the kit's
    sensor noise (kit.ml.sensors.SensorNoise), the light level as the daylight, 14 C. It is not delivered over the
    air (a delivered model is a one-piece camera model); this says what a device running it sees of the works."""
    from bench.fused_retrain import with_sensors
    from kit.ml.fusion import FusedHost

    host = FusedHost.load("fusion", variant="int8", num_threads=1)
    out = {}
    for what, data in (("works", held), ("day", day)):
        vec = with_sensors(data, seed)[0]
        q = np.array([int(np.argmax(host.predict(x, v).queue_probs)) for x, v in zip(data.x, vec)])
        out[f"held_out_{what}_accuracy_fused"] = round(float((q == data.queue).mean()), 3)
    return out


VISIBLE_BINS = ((0.0, 0.5), (0.5, 0.9), (0.9, 9.0))


def why(held, hosts: dict) -> dict:
    """Where the accuracy goes: the held-out works frames re-rendered without leaves (same scenes, same seeds),
    and the frames grouped by how much of the queue's picture the leaves leave visible.

    The visible share is |frame - the same frame without its cars| with the leaves over the same without them:
    1 = every car drawn shows, 0 = the leaves hide all of them. Empty queues (nothing to hide) are a group of
    their own."""
    from dataclasses import replace

    from kit.ml.data import sample_scenes
    from kit.sim.camera import render

    meta = held.meta
    scenes = sample_scenes(len(held), seed=meta["seed"], conditions=meta["conditions"])
    seeds = np.random.SeedSequence([int(meta["seed"]), 1]).generate_state(len(held))
    clear, visible = [], []
    for scene, s in zip(scenes, seeds):
        s = int(s)
        bare = replace(scene, leaves=0.0)
        clear.append(render(bare, seed=s))
        if scene.queue_length == 0:
            visible.append(np.nan)
            continue
        with_leaves = np.abs(held.x[len(clear) - 1].astype(float) - render(replace(scene, queue_length=0), seed=s))
        without = np.abs(clear[-1].astype(float) - render(replace(bare, queue_length=0), seed=s))
        visible.append(float(with_leaves.sum() / max(without.sum(), 1e-9)))
    clear, visible = np.stack(clear), np.array(visible)
    groups = {"empty queue": np.isnan(visible)}
    for lo, hi in VISIBLE_BINS:
        groups[f"cars {lo:.0%}-{min(hi, 1.0):.0%} visible"] = (visible >= lo) & (visible < hi)
    out = {"groups": {k: int(v.sum()) for k, v in groups.items()}}
    for name, host in hosts.items():
        ok = host.predict_batches(held.x)["queue"].argmax(1) == held.queue
        ok_clear = host.predict_batches(clear)["queue"].argmax(1) == held.queue
        out[name] = {
            "same scenes without leaves": round(float(ok_clear.mean()), 3),
            **{k: round(float(ok[m].mean()), 3) if m.any() else None for k, m in groups.items()},
        }
    return out


def world_stream(args) -> dict:
    """The camera stream of one simulated day as the app sees it (frames of a ``kit.sim.world.World`` through its
    ``SimCamera``, a fixed-time plan driving the lights), the diverted works switched on at ``--works-hour``;
    with the light reading, the hour, the true queue class and the sensor vector of each frame's moment (the
    distance to the queue's tail and the PIR with the kit's sensor noise, ``kit.ml.sensors.SensorNoise``)."""
    from kit.ml import sensors as S
    from kit.ml.data import queue_class
    from kit.sim.camera import SimCamera
    from kit.sim.world import World

    world = World(seed=args.seed, start="2026-10-15T06:00:00")
    camera = SimCamera(world, seed=args.seed)
    every = args.frame_min * 60.0
    n = int((args.end_hour - 6.0) * 3600 // every)
    keys = ("frames", "hour", "light", "queue", "distance", "waiting", "temp")
    out: dict = {k: [] for k in keys}
    t_cycle = 0.0
    for _ in range(n):
        hour = 6.0 + world.elapsed / 3600
        if hour >= args.works_hour and not world.diverted:
            world.diverted = world.road_works = True
        out["frames"].append(camera.capture())
        out["hour"].append(hour)
        out["light"].append(world.light_level)
        out["queue"].append(queue_class(world.queue_length))
        out["distance"].append(world.queue_distance)
        out["waiting"].append(world.pedestrians_waiting)
        out["temp"].append(world.road_temperature_c)
        left = every
        while left > 1e-9:  # a fixed-time plan, 40 s green and 30 s red (kit.ml.stream_drift.record_day's)
            phase = t_cycle % 70.0
            green = phase < 40.0
            step = min(left, (40.0 - phase) if green else (70.0 - phase))
            world.set_lights(car="green" if green else "red", ped="red" if green else "green")
            world.advance(step)
            t_cycle += step
            left -= step
    out = {k: np.asarray(v) for k, v in out.items()}
    readings = S.SensorNoise().apply(
        np.random.default_rng([args.seed, 19]),
        distance_m=out["distance"].astype(float),
        waiting=out["waiting"],
        light=out["light"].astype(float),
        road_temp_c=out["temp"].astype(float),
    )
    out["vectors"] = S.vectors(readings)
    out["sensed"] = np.array([S.queue_class_from_distance(float(d)) for d in readings["distance_m"]])
    out["pir"] = np.asarray(readings["pir"], int)
    return out


def part1_fused(args, folder: Path, models: Path) -> dict:
    """Part 1 with the app's default model on the device: the fused int8 early exit (camera + sensors).

    As ``part1`` (the same works and hours), with what the app does for a fused model: the frames are a simulated
    world's camera stream (``world_stream``), each with the sensor vector of its moment; the drift monitor is the
    stream monitor (windows of 16 against normal frames of the same light and hour, the shipped
    ``stream_reference.json``); the uploads and the canary's sensor class are what the distance sensor says (not
    the true class); the operator retrains the fused model (``retrain_from_s3(base="fusion")``) and deploys its
    folder as one bundle. The drift monitor here stays the shipped one (the app also learns the uploaded scenes
    once the retrained model is confirmed: ``ModelLoop``)."""
    from bench.fused_retrain import with_sensors
    from kit.apps.model_loop import FamiliarToAny
    from kit.ml import MODELS_DIR
    from kit.ml.fusion import FusedHost
    from kit.ml.ota.retrain import FrameUploader
    from kit.ml.ota.updater import shadow_poller
    from kit.ml.stream_drift import StreamMonitor, StreamReference

    factory = FusedHost.load("fusion")
    field = FieldModel(factory, folder / "device-fused", policy=CanaryPolicy(frames=48, probation_frames=32)).start(
        thread=False
    )
    monitor = StreamMonitor(StreamReference.load(MODELS_DIR / "fusion" / "stream_reference.json"))
    device = "kit-bench-fused"
    uploader = FrameUploader(device, chunk=64, limit=args.upload)
    poll = shadow_poller(field.updater, device)
    s = world_stream(args)
    hours, frames, labels, light = s["hour"], s["frames"], s["queue"], s["light"]
    vectors, sensed, pir = s["vectors"], s["sensed"], s["pir"]  # sensed: the queue class the distance implies
    before = hours < args.works_hour
    correct, versions, window = [], [], []
    first_alarm = retrained_at = swapped_at = None
    alarms = {"before": [0, 0], "works, old model": [0, 0], "works, retrained": [0, 0]}
    log, last_phase, card, kept, alarm_hours = [], "idle", None, [], []
    for i, (hour, frame, label) in enumerate(zip(hours, frames, labels)):
        probs, _, _, _ = field.predict(frame, vectors[i], sensor_class=int(sensed[i]))
        field.updater.step()
        if retrained_at is not None:
            poll()  # the device reports each phase to its shadow (and reads desired.model)
        correct.append(int(np.argmax(probs)) == int(label))
        versions.append(field.status()["version"])
        if swapped_at is None and versions[-1] == "retrained-1":
            swapped_at = hour
        window.append(i)
        if len(window) == 16:
            report = monitor.check(frames[window], light=light[window], hour=hours[window])
            field.note_drift(report.drift)
            key = (
                "before"
                if hour < args.works_hour
                else ("works, old model" if swapped_at is None else "works, retrained")
            )
            alarms[key][0] += int(report.drift)
            alarms[key][1] += 1
            if report.drift and key != "works, old model":
                alarm_hours.append(round(float(hour), 2))
            window = []
            if report.drift and first_alarm is None and hour >= args.works_hour:
                first_alarm = hour
                log.append(f"{hour:05.2f} h  drift alarm: {'; '.join(report.reasons)[:120]}")
        if first_alarm is not None and retrained_at is None:
            # the alarming windows' frames go to S3 with the sensors' labels and vectors, as the app sends them
            kept.append(i)
            if uploader.add(frame, int(sensed[i]), int(pir[i]), sensors=vectors[i]) or uploader.full:
                uploader.flush()
            if uploader.full and not uploader.buffer:
                card, spec = retrain_and_deploy(args, device, models, "fusion", "retrained-fused", poll)
                retrained_at = hour
                m, mb = card["details"]["metrics"], card["details"]["metrics_base"]
                log.append(
                    f"{hour:05.2f} h  fused model retrained in the cloud on {uploader.sent} uploads ({card['wall_s']:.0f} s): "
                    f"newest held-out uploads {m['queue_accuracy']:.3f} vs old {mb['queue_accuracy']:.3f}; deployed "
                    f"as one bundle ({spec.key.rsplit('.', 1)[-1]}, {Path(card['_path']).name})"
                )
        status = field.status()
        if status["phase"] != last_phase:
            last_phase = status["phase"]
            if last_phase == "running" and status["version"] == "retrained-1":
                # what the app's model loop does once a model retrained on its uploads is confirmed: the stream
                # monitor also takes the last 256 uploaded frames (by light and hour) as normal
                sample = np.asarray(kept[-256:])
                uploads = StreamMonitor(StreamReference.from_frames(frames[sample], light[sample], hours[sample]))
                monitor = FamiliarToAny(monitor, uploads)
            if last_phase in ("canary", "rejected", "probation", "running", "rolled back"):
                log.append(f"{hour:05.2f} h  {last_phase}: {status['reason'][:160]}")
    correct = np.asarray(correct)
    works_on = ~before
    out = {
        "frames": len(hours),
        "accuracy_before_works": round(float(correct[before].mean()), 3),
        "accuracy_works_old_model": round(float(correct[works_on & (hours < (swapped_at or 99))].mean()), 3),
        "first_drift_alarm_h": first_alarm,
        "retrained_h": retrained_at,
        "swapped_h": swapped_at,
        "uploaded_frames": uploader.sent,
        "final_model": field.status()["version"],
        "final_phase": field.status()["phase"],
        "final_reason": field.status()["reason"][:200],
        "drift_windows": {k: f"{a} of {n}" for k, (a, n) in alarms.items()},
        "alarm_hours": alarm_hours,  # of the windows that alarmed before the works and after the swap
        "log": log,
    }
    if swapped_at is not None:
        out["accuracy_works_after_swap"] = round(float(correct[hours >= swapped_at].mean()), 3)
        out["time_to_recovery_h"] = round(swapped_at - args.works_hour, 2)
    held = make_dataset(400, seed=args.seed + 50, conditions=works_conditions(args.layout, args.leaves))
    day = make_dataset(400, seed=args.seed + 51, conditions="day")
    hosts = {"old": factory, **({"retrained": FusedHost.load(card["_path"])} if card else {})}
    for what, data in (("works", held), ("day", day)):
        vec = with_sensors(data, args.seed)[0]
        for name, host in hosts.items():
            q = host.predict_batch(data.x, vec)["queue"].argmax(1)
            out[f"held_out_{what}_accuracy_{name}"] = round(float((q == data.queue).mean()), 3)
    field.close()
    return out


def part1_bad_model(args, folder: Path, models: Path, cloud) -> dict:
    """A deliberately bad model deployed over the air during the works: refused; the classes used are unchanged."""
    from kit.ml.ota.deploy import deploy, reported
    from kit.ml.ota.updater import shadow_poller

    kernel, bias = shipped_head()
    bad = write_candidate(
        patch_head(shipped_model().read_bytes(), kernel, bias, np.roll(kernel, 1, axis=1), np.roll(bias, 1)),
        models,
        "bad",
        base_card=load_card("intersection"),
    )
    spec = deploy(bad, "kit-bench", version="bad-1")
    factory = ModelHost(shipped_model())
    field = FieldModel(factory, folder / "device-bad", policy=CanaryPolicy(frames=48)).start(thread=False)
    poll = shadow_poller(field.updater, "kit-bench")
    poll()
    hours, frames, labels = stream(args.seed, 6.0, 12.0, args.frame_min, args.works_hour, args.leaves, args.layout)
    used_with, used_without = [], []
    for frame, label in zip(frames, labels):
        probs, *_ = field.predict(frame, sensor_class=int(label))
        field.updater.step()
        used_with.append(int(np.argmax(probs)))
        used_without.append(int(np.argmax(factory.predict(frame)["queue"][0])))
    poll()
    seen = reported("kit-bench")["reported"]
    return {
        "bad_deployed": spec.version,
        "bad_phase": seen["phase"],
        "bad_reason": seen["reason"],
        "device_runs": seen["version"],
        "control_inputs_identical": used_with == used_without,
        "frames": len(used_with),
    }


def part2(args, folder: Path, models: Path, cloud) -> dict:
    """Wall clock, side by side in one control loop: windows with an update and windows with nothing to do.

    The loop keeps the app's absolute schedule (``kit.clock.RealClock.wait_until``: tick k is due at
    k x period). A tick is **missed** when it did not start before the next tick was due (lateness > one
    period): the lights could not have acted on it in its slot. Windows of ``--window`` ticks alternate:
    nothing to do; an update with the candidate in its own low-priority process (the app's way); nothing to
    do; an update with the candidate on the updater's thread (for comparison). An update window starts with a
    deployment (S3 + shadow, a new file each time) and holds its download, checks, canary, swap and
    probation; it counts only when the device ran the new model by the window's end. The same machine, the
    same minutes: a load that changes during the run changes both kinds of window alike."""
    from kit.clock import RealClock

    period = args.tick_ms / 1e3
    frames = make_dataset(64, seed=args.seed, conditions="day")
    kernel, bias = shipped_head()
    base = shipped_model().read_bytes()
    factory = ModelHost(shipped_model())
    policy = CanaryPolicy(frames=48, probation_frames=16)
    fields = {
        mode: FieldModel(
            factory,
            folder / f"rt-{mode}",
            policy=policy,
            thing_name=f"kit-bench-rt-{mode}",
            poll_s=args.poll_s,
            isolate=mode == "process",
        ).start()
        for mode in ("process", "thread")
    }
    kinds = ["quiet", "process", "quiet", "thread"] * args.repeats
    # a new file for each update window (another bias), made before the loop starts
    files = {
        w: write_candidate(
            patch_head(base, kernel, bias, kernel, bias + np.float32(1e-3 * (w + 1))),
            models,
            f"rt-{w}",
            base_card=load_card("intersection"),
        )
        for w, kind in enumerate(kinds)
        if kind != "quiet"
    }
    windows = []
    operator = operator_process(cloud)  # started (and its imports done) before the schedule begins
    clock = RealClock()
    k = 0
    try:
        for w, kind in enumerate(kinds):
            field = fields["process" if kind == "quiet" else kind]
            version = None
            if kind != "quiet":
                # the operator deploys (S3 + shadow) from its own process, as from another machine: a line down
                # a pipe is all this loop does for it
                version = f"rt-{w}"
                operator.stdin.write(f"{files[w]}\tkit-bench-rt-{kind}\t{version}\n")
                operator.stdin.flush()
            lateness, swap_tick, work_ms, started = [], None, [], []
            marks: list = []  # (phase, time) from the updater's thread: when the swap began
            field.updater.on_phase = lambda phase, marks=marks: marks.append((phase, time.perf_counter()))
            swaps = field.swaps_taken
            for i in range(args.window):
                clock.wait_until(k * period)
                started.append(time.perf_counter())
                lateness.append(clock.lateness(k * period))
                t0 = time.perf_counter()
                field.predict(frames.x[k % len(frames)], sensor_class=int(frames.queue[k % len(frames)]))
                work_ms.append((time.perf_counter() - t0) * 1e3)
                if field.swaps_taken > swaps and swap_tick is None:
                    swap_tick = i
                k += 1
            late = np.asarray(lateness) * 1e3
            status = field.status()
            # the swap: from the updater entering "swapping" (loading the model in this process for the loop,
            # committing it on disk) to the first frame the new model scored, and the tick after it
            began = next((t for phase, t in marks if phase == "swapping"), None)
            swap_ticks = []
            if began is not None and swap_tick is not None:
                first = next((i for i, t in enumerate(started) if t >= began), swap_tick)
                swap_ticks = list(range(max(first - 1, 0), min(swap_tick + 2, len(late))))
            windows.append(
                {
                    "kind": kind,
                    "ticks": len(late),
                    "missed": int((late > args.tick_ms).sum()),
                    "p99_late_ms": round(float(np.percentile(late, 99)), 2),
                    "worst_late_ms": round(float(late.max()), 2),
                    "complete": version is None or (status["version"] == version and status["phase"] == "running"),
                    "swap_tick_work_ms": round(work_ms[swap_tick], 3) if swap_tick is not None else None,
                    "swap_ticks": len(swap_ticks),
                    "swap_missed": int((late[swap_ticks] > args.tick_ms).sum()) if swap_ticks else 0,
                    "swap_worst_late_ms": round(float(late[swap_ticks].max()), 2) if swap_ticks else None,
                    "work_p50_ms": round(float(np.median(work_ms)), 3),
                }
            )
    finally:
        for field in fields.values():
            field.close()
        operator.stdin.close()
        operator.wait(30)

    def total(kind: str) -> dict:
        ws = [w for w in windows if w["kind"] == kind]
        ticks = sum(w["ticks"] for w in ws)
        missed = sum(w["missed"] for w in ws)
        return {
            "windows": len(ws),
            "ticks": ticks,
            "missed": missed,
            "missed_per_window": [w["missed"] for w in ws],
            "missed_per_1000": round(1000 * missed / ticks, 2) if ticks else None,
            "p99_late_ms": round(float(np.median([w["p99_late_ms"] for w in ws])), 2),
            "worst_late_ms": max(w["worst_late_ms"] for w in ws),
            "updates_complete": sum(w["complete"] for w in ws) if kind != "quiet" else None,
            "swap_ticks": sum(w["swap_ticks"] for w in ws),
            "swap_missed": sum(w["swap_missed"] for w in ws),
            "swap_worst_late_ms": max((w["swap_worst_late_ms"] for w in ws if w["swap_ticks"]), default=None),
            "swap_tick_work_ms": [w["swap_tick_work_ms"] for w in ws if w["swap_tick_work_ms"] is not None],
            "work_p50_ms": round(float(np.median([w["work_p50_ms"] for w in ws])), 3),
        }

    out = {"tick_ms": args.tick_ms, "window": args.window, "windows": windows}
    out.update({kind: total(kind) for kind in ("quiet", "process", "thread")})
    quiet = out["quiet"]["missed"] / out["quiet"]["ticks"]
    for kind in ("process", "thread"):
        rate = out[kind]["missed"] / out[kind]["ticks"]
        # missed per tick during updates over missed per tick with nothing to do (None: neither missed any;
        # inf: only the updates did)
        out[kind]["ratio_to_quiet"] = round(rate / quiet, 2) if quiet else (None if rate == 0 else float("inf"))
        # could windows this different come from the machine alone? A one-sided permutation test on the missed
        # ticks per window: the share of random relabellings of these windows (update vs nothing to do) whose
        # update windows miss at least as many per window as the real ones (small: the updates did it)
        ups = [w["missed"] for w in windows if w["kind"] == kind]
        quiet_w = [w["missed"] for w in windows if w["kind"] == "quiet"]
        pool = np.array(ups + quiet_w, float)
        real = np.mean(ups) - np.mean(quiet_w)
        rng = np.random.default_rng(0)
        diffs = []
        for _ in range(10_000):
            perm = rng.permutation(pool)
            diffs.append(perm[: len(ups)].mean() - perm[len(ups) :].mean())
        out[kind]["p_more_missed"] = round(float(np.mean(np.array(diffs) >= real - 1e-12)), 3)
    out["load_average_1min"] = round(os.getloadavg()[0], 1)
    out["cpus"] = os.cpu_count()
    return out


OPERATOR = """
import sys
from kit.ml.ota.deploy import deploy
for line in sys.stdin:
    path, device, version = line.rstrip("\\n").split("\\t")
    deploy(path, device, version=version)
"""


def operator_process(url: str) -> subprocess.Popen:
    """The operator's ``deploy`` in a process of its own at low priority (on a real deployment: another machine);
    it reads "path<TAB>device<TAB>version" lines. Its imports are done before it returns."""
    root = str(Path(__file__).resolve().parent.parent)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])),
        "KIT_CLOUD": "local",
        "AWS_ENDPOINT_URL": url,
    }
    src = "import os; os.nice(10); import kit.ml.ota.deploy, boto3; print('ready', flush=True)\n" + OPERATOR
    proc = subprocess.Popen(
        [sys.executable, "-c", src], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
    )
    if proc.stdout.readline().strip() != "ready":
        raise SystemExit("lifecycle: the operator's process did not start")
    return proc


@contextlib.contextmanager
def cloud_process():
    """The local AWS endpoint (``kit cloud serve``) in a process of its own, as the real endpoint is another
    machine: its request handling must not share this process's interpreter lock with the control loop."""
    from kit.cloud import config
    from kit.cloud.broker import free_port
    from kit.cloud.emulator import reachable

    port = free_port()
    root = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen(
        [sys.executable, "-m", "kit", "cloud", "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while not reachable(url):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"lifecycle: the local AWS endpoint did not start on port {port}")
            time.sleep(0.1)
        config.use(config.CloudConfig(endpoint_url=url))
        yield url
    finally:
        config.use(None)
        proc.terminate()
        proc.wait(10)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--works-hour", type=float, default=10.0)
    p.add_argument("--end-hour", type=float, default=16.0)
    p.add_argument(
        "--frame-min", type=float, default=1 / 6, help="simulated minutes between camera frames (the app: 10 s)"
    )
    p.add_argument("--upload", type=int, default=1024, help="frames the device uploads while drift alarms")
    p.add_argument("--retrain-epochs", type=int, default=15)
    p.add_argument("--retrain-lr", type=float, default=3e-3)
    p.add_argument("--replay", type=int, default=384, help="frames of the base model's own data in the retrain")
    p.add_argument(
        "--layout",
        choices=("diverted", "cones"),
        default="diverted",
        help="what the works do to the scene: close the lane and divert the queue into the other one behind a "
        "temporary stop line (diverted), or cones and a barrier beside the usual queue (cones)",
    )
    p.add_argument("--leaves", type=float, default=0.0, help="leaves on the lens from the works hour (0: none)")
    p.add_argument("--labelled", type=int, default=128, help="sensor-labelled frames for the head adaptation")
    p.add_argument("--tick-ms", type=float, default=20.0)
    p.add_argument("--window", type=int, default=200, help="control ticks per window (part 2)")
    p.add_argument("--repeats", type=int, default=6, help="cycles of quiet / update windows (part 2)")
    p.add_argument("--poll-s", type=float, default=0.5, help="seconds between the device's shadow polls (app: 5)")
    p.add_argument("--realtime-only", action="store_true", help="only part 2: control ticks during an update")
    p.add_argument(
        "--fused",
        action="store_true",
        help="only part 1, with the app's default fused model on the device (camera + sensors, delivered as a bundle)",
    )
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    import logging

    logging.getLogger("kit.ota").setLevel(logging.ERROR)
    if args.fused:
        with tempfile.TemporaryDirectory() as tmp, cloud_process():
            r = part1_fused(args, Path(tmp), Path(tmp) / "models")
        if args.json:
            print(json.dumps(r, indent=2))
            return 0
        print("\n".join(r["log"]))
        print(
            f"fused device, live frames (queue class): before the works {r['accuracy_before_works']:.3f}; at the works "
            f"with the shipped model {r['accuracy_works_old_model']:.3f}; after the retrained model's swap "
            f"{r.get('accuracy_works_after_swap', float('nan')):.3f}; works at {args.works_hour:.2f} h, drift alarm "
            f"{r['first_drift_alarm_h']:.2f}, {r['uploaded_frames']} frames uploaded by {r['retrained_h']:.2f}, swap "
            f"{r['swapped_h']:.2f}: {r.get('time_to_recovery_h')} simulated h to recovery"
        )
        print(
            "stream drift windows alarmed (same light, same hour; once the retrained model is confirmed, the uploaded "
            "scenes count as normal too, as in the app): "
            + ", ".join(f"{k} {v}" for k, v in r["drift_windows"].items())
            + f" (those before the works and after the swap ended at {', '.join(f'{h:.2f}' for h in r['alarm_hours'])} h)"
        )
        for what in ("works", "day"):
            print(
                f"400 held-out {what} frames: shipped fused {r[f'held_out_{what}_accuracy_old']:.3f}, retrained "
                f"{r.get(f'held_out_{what}_accuracy_retrained', float('nan')):.3f}"
            )
        print(f"device at the end: {r['final_model']}, {r['final_phase']}: {r['final_reason']}")
        return 0
    with tempfile.TemporaryDirectory() as tmp, cloud_process() as cloud:
        folder, models = Path(tmp), Path(tmp) / "models"
        r1 = r1b = None
        if not args.realtime_only:
            r1 = part1(args, folder, models, cloud)
            r1.pop("_used")
            r1b = part1_bad_model(args, folder, models, cloud)
        r2 = part2(args, folder, models, cloud)
    result = {
        "scenario": {"works_hour": args.works_hour, "layout": args.layout, "leaves": args.leaves, "seed": args.seed},
        "field": r1,
        "bad_model": r1b,
        "realtime": r2,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    if r1 is not None:
        print(
            f"road works ({args.layout}, leaves {args.leaves}) from {args.works_hour:05.2f} h, seed {args.seed}, a frame every {args.frame_min:g} min"
        )
        for line in r1["log"]:
            print("  " + line)
        print(f"accuracy before the works            {r1['accuracy_before_works']:.3f}")
        print(f"accuracy at the works, old model     {r1['accuracy_works_old_model']:.3f}")
        for version, acc in r1["accuracy_works_by_model"].items():
            print(f"accuracy at the works, {version:<13} {acc:.3f}  (live frames it scored)")
        if "time_to_recovery_h" in r1:
            print(
                f"time from the works to the retrained model's swap: {r1['time_to_recovery_h']:.2f} simulated h "
                f"(drift alarm after {r1['first_drift_alarm_h'] - args.works_hour:.2f} h, {r1['uploaded_frames']} frames "
                f"uploaded until {r1['retrained_h']:.2f} h)"
            )
        print(f"device at the end: {r1['final_model']}, {r1['final_phase']}: {r1['final_reason']}")
        nan = float("nan")
        for what, label in (("works", "held-out works frames"), ("day", "held-out day frames (no works)")):
            print(
                f"{label:<31}: old {r1[f'held_out_{what}_accuracy_old']:.3f}, adapted head "
                f"{r1.get(f'held_out_{what}_accuracy_adapted', nan):.3f}, retrained "
                f"{r1.get(f'held_out_{what}_accuracy_retrained', nan):.3f}; the app's default fused model "
                f"(camera + sensors, not delivered over the air) {r1[f'held_out_{what}_accuracy_fused']:.3f}"
            )
        w = r1.get("why")
        if w:
            print(
                "why: held-out works frames by how much of the queue the leaves leave visible (n: "
                + ", ".join(f"{k} {n}" for k, n in w["groups"].items())
                + ")"
            )
            for name in [k for k in w if k != "groups"]:
                print(f"  {name:<10}" + "; ".join(f"{k} {v:.3f}" for k, v in w[name].items() if v is not None))
        print(
            f"bad model over the air: {r1b['bad_phase']} ({r1b['bad_reason'][:150]}); device runs {r1b['device_runs']}; "
            f"control inputs identical to a run without it: {r1b['control_inputs_identical']} ({r1b['frames']} frames)"
        )
    q, b, t = (r2[k] for k in ("quiet", "process", "thread"))
    print(
        f"control ticks every {r2['tick_ms']:g} ms, windows of {r2['window']} ticks side by side in one loop; "
        f"missed = did not start before the next tick was due (load average {r2['load_average_1min']} on "
        f"{r2['cpus']} cores):"
    )
    for name, r in (("nothing to do", q), ("update, candidate in its own process", b), ("update on the thread", t)):
        extra = ""
        if r["updates_complete"] is not None:
            ratio = r["ratio_to_quiet"]
            extra = (
                f", {r['updates_complete']}/{r['windows']} updates swapped and confirmed in their window; "
                f"missed per tick / nothing to do's: {'0 and 0' if ratio is None else f'{ratio:.2f}'} "
                f"(permutation p {r['p_more_missed']:.3f}; small would say the updates miss more than the machine alone)"
            )
        print(
            f"  {name:<37} missed {r['missed']}/{r['ticks']} ({r['missed_per_1000']:.1f} per 1000; per window "
            f"{r['missed_per_window']}), "
            f"p99 lateness {r['p99_late_ms']:.2f} ms, worst {r['worst_late_ms']:.1f} ms{extra}"
        )
    for name, r in (("in its own process", b), ("on the thread", t)):
        worst = "-" if r["swap_worst_late_ms"] is None else f"{r['swap_worst_late_ms']:.1f} ms"
        print(
            f"  during the swaps (candidate {name}: from loading it for the loop and committing it to its first "
            f"frame, and the tick after): missed {r['swap_missed']}/{r['swap_ticks']} ticks, worst lateness {worst}"
        )
    if b["swap_tick_work_ms"]:
        print(
            f"the swap tick's work (take the new model + its first frame): {max(b['swap_tick_work_ms']):.3f} ms "
            f"at most; a tick's work p50 {b['work_p50_ms']:.3f} ms"
        )
    return 0


if __name__ == "__main__":
    progress.show_bars()  # training, rounds and sweeps show a bar in a terminal
    raise SystemExit(main())

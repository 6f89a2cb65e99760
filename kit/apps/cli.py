"""`kit run intersection` and `kit status`.

kit run intersection                 # simulation (or real pins on a Pi), until Ctrl-C / SIGTERM
kit run intersection --hours 24      # a simulated day, as fast as the machine allows
kit run intersection --cloud         # with S3 uploads, the device shadow and MQTT telemetry
kit status                           # health of the running (or last) app
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from kit.argtypes import float_range, image_file, int_range, iso_datetime, output_file, stuck_sensor


def _run_intersection(args: argparse.Namespace) -> int:
    from kit.apps.intersection import AppOptions, IntersectionApp
    from kit.store import Store

    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    _check_model(args)  # a mistyped --model is a usage error before anything is opened or written
    if args.local_cloud and not args.cloud:
        from kit.errors import UsageError

        raise UsageError("--local-cloud starts an endpoint for --cloud: add --cloud, or leave out --local-cloud")
    if args.models is not None:
        from kit.ml.ota.slots import check_folder

        check_folder(args.models)
    store = Store(args.db) if args.db else Store()
    cloud = None
    if args.cloud and args.local_cloud:
        import kit.cloud

        cloud = kit.cloud.start_local()
    from kit.ml import DEFAULT_APP_MODEL

    options = AppOptions(
        seed=args.seed,
        start=args.start,
        hours=args.hours,
        realtime=args.realtime,
        speed=args.speed,
        leaves=args.leaves,
        road_works=args.road_works,
        diverted=args.diverted,
        stuck=tuple(args.stuck),
        model=None if args.no_model else (args.model or DEFAULT_APP_MODEL),
        model_required=bool(args.model) and not args.no_model,
        cloud=args.cloud,
        mqtt=not args.no_mqtt,
        camera_period_s=args.camera_period,
        sync_period_s=args.sync_period,
        resume=not args.fresh,
        status_path=args.status,
        sample_period_s=args.sample_period,
        controller=args.controller,
        traffic=args.traffic,
        models_folder=args.models,
    )
    app = IntersectionApp(store, options)
    # SIGTERM (systemd stop, kill) ends the loop after the current tick: readings are written, not lost.
    signal.signal(signal.SIGTERM, lambda *_: app.stop())
    try:
        summary = app.run()
    except KeyboardInterrupt:
        app.stop()
        summary = app.summary()
    finally:
        app.close()
        if cloud is not None:
            cloud.stop()
    print(_summary_lines(summary))
    if args.compare and "vehicles_served" in summary:
        print(_baseline_lines(summary, args))
        if not args.no_model:
            print(_sensors_only_lines(summary, args))
    if args.plot:
        from kit.apps.plot import plot_day

        print(f"plot written to {plot_day(store, args.plot)}")
    return 0


def _controller_choice(text: str) -> str:
    from kit.control.plugin import is_plugin, load_policy

    if text in ("adaptive", "learned"):
        return text
    if not is_plugin(text):
        raise argparse.ArgumentTypeError(
            f"invalid choice: {text!r} (choose adaptive, learned or module:Class, a controller of your own)"
        )
    try:
        load_policy(text)  # a wrong name is a usage error before any board or file is made
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _check_model(args: argparse.Namespace) -> None:
    from kit.errors import UsageError
    from kit.ml import MODELS_DIR

    name = None if args.no_model else args.model
    if not name:
        return
    path = Path(name)
    if path.exists() or (MODELS_DIR / name).is_dir() or (MODELS_DIR / f"{name}.tflite").is_file():
        return
    shipped = sorted(
        {p.stem for p in MODELS_DIR.glob("*.tflite")} | {p.name for p in MODELS_DIR.iterdir() if p.is_dir()}
    )
    raise UsageError(
        f"--model {name!r} is neither a shipped model ({', '.join(shipped)}) nor an existing "
        ".tflite file or early-exit folder; or pass --no-model"
    )


def _summary_lines(s: dict[str, Any]) -> str:
    lines = [f"Smart intersection ({s.get('controller', 'adaptive')} control)"]
    if "vehicles_served" in s:
        lines += [
            f"  vehicles    served {s['vehicles_served']} of {s['vehicles_arrived']}, wait mean "
            f"{s['mean_vehicle_wait_s']} s, p95 {s['p95_vehicle_wait_s']} s",
            f"  pedestrians crossed {s['pedestrians_served']}, gave up {s['pedestrians_gave_up']}, wait mean "
            f"{s['mean_pedestrian_wait_s']} s, p95 {s['p95_pedestrian_wait_s']} s",
        ]
    lines += [
        f"  signal      {s['car_greens']} car greens, {s['crossings']} crossings; conflict monitor {s['signals']}",
        f"  store       {s['readings_stored']} readings, outbox {s['outbox_depth']}, uploaded {s['uploaded']} in "
        f"{s['upload_requests']} requests" + ("" if s["logging"] == "ok" else f"; logging {s['logging']}"),
        f"  model       {s['model'] or 'none (sensors only)'}: {s['frames']} frames"
        + (f", {s['early_exits']} left at the early exit" if s.get("early_exits") else "")
        + (f"; in use for {100 * s['model_in_use']:.1f} % of them" if s.get("frames") else ""),
    ]
    if s.get("drift_windows"):
        lines.append(
            f"  drift       alarm in {s['drift_alarms']} of {s['drift_windows']} windows "
            "(the model falls back to the sensors meanwhile); last window: "
            + s["drift"].split(":")[0]
            + (
                f"; {s['frames_uploaded']} of their frames uploaded in {s['frame_upload_requests']} requests"
                if s.get("frame_upload_requests")
                else ""
            )
        )
    if s.get("sensor_flags") or s.get("sensors", "ok") != "ok":
        lines.append(
            f"  sensors     flagged stuck {s['sensor_flags']} time(s) (the model then takes them as failed); "
            f"now: {s['sensors']}"
        )
    return "\n".join(lines)


def _baseline_lines(summary: dict[str, Any], args: argparse.Namespace) -> str:
    from kit.control.compare import FIXED_DEFAULT, simulate
    from kit.control.fixed import FixedTimeController

    hours = args.hours or 1.0
    fixed = simulate(lambda b: FixedTimeController(b, FIXED_DEFAULT), seed=args.seed, hours=hours, start=args.start)
    cut = 1 - summary["mean_vehicle_wait_s"] / fixed["mean_vehicle_wait_s"] if fixed["mean_vehicle_wait_s"] else 0.0
    return "\n".join(
        [
            "Fixed-time plan on the same seeded traffic (the baseline)",
            f"  vehicles    wait mean {fixed['mean_vehicle_wait_s']} s, p95 {fixed['p95_vehicle_wait_s']} s",
            f"  pedestrians wait mean {fixed['mean_pedestrian_wait_s']} s, p95 {fixed['p95_pedestrian_wait_s']} s",
            f"  adaptive control cut the mean vehicle wait by {cut:.0%}",
        ]
    )


def _sensors_only_lines(summary: dict[str, Any], args: argparse.Namespace) -> str:
    """The same adaptive control without the model, on the same seeded traffic, beside the run's figures."""
    import tempfile

    from kit.apps.intersection import AppOptions, IntersectionApp
    from kit.store import Store

    with tempfile.TemporaryDirectory(prefix="kit-sensors-only-") as tmp:
        store = Store(str(Path(tmp) / "kit.db"))
        app = IntersectionApp(
            store,
            AppOptions(
                seed=args.seed,
                start=args.start,
                hours=args.hours or 1.0,
                leaves=args.leaves,
                road_works=args.road_works,
                diverted=getattr(args, "diverted", False),
                stuck=tuple(getattr(args, "stuck", ())),  # the same fault: a fair comparison
                model=None,
                resume=False,
                status_path=str(Path(tmp) / "status.json"),
            ),
        )
        try:
            other = app.run()
        finally:
            app.close()
            store.close()
    rows = [
        ("mean vehicle wait s", "mean_vehicle_wait_s"),
        ("p95 vehicle wait s", "p95_vehicle_wait_s"),
        ("mean pedestrian wait s", "mean_pedestrian_wait_s"),
        ("p95 pedestrian wait s", "p95_pedestrian_wait_s"),
    ]
    lines = [
        "Adaptive control with the model vs from the sensors only (same seeded traffic)",
        f"  {'':24s}{'model':>10s}{'sensors':>10s}",
    ]
    lines += [f"  {label:24s}{summary[key]:>10}{other[key]:>10}" for label, key in rows]
    return "\n".join(lines)


def _status(args: argparse.Namespace) -> int:
    from types import SimpleNamespace

    from kit.apps.status import default_status_path, read_status
    from kit.errors import KitRuntimeError
    from kit.store.db import default_path

    # the status file sits beside the store: found from the path alone, without opening (or creating) a store
    path = args.status or default_status_path(SimpleNamespace(path=str(Path(args.db or default_path()).expanduser())))
    try:
        status = read_status(path)
    except FileNotFoundError as exc:
        print(f"kit status: {exc}", file=sys.stderr)
        return 1
    except (ValueError, AttributeError) as exc:
        raise KitRuntimeError(f"{path} is not a status file the app wrote ({exc}); check --status/--db") from None
    if not isinstance(status, dict) or not status:
        raise KitRuntimeError(
            f"{path} is not a status file the app wrote (expected a JSON object); check --status/--db"
        )
    from kit.apps.status import liveness

    alive = liveness(status)
    if alive != status.get("state"):
        import time

        age = time.time() - float(status.get("heartbeat") or 0.0)
        said = status.get("state")
        status["state"] = (
            f"{alive.upper()}: the status says {said} but process {status.get('pid')} is gone "
            f"(last control tick {age:.0f} s ago); restart it (systemctl restart kit-intersection)"
            if alive == "dead"
            else f"{alive.upper()}: process {status.get('pid')} lives but its control loop last ticked {age:.0f} s ago"
        )
    if args.json:
        print(json.dumps(status, indent=2))
        return 0 if alive in ("running", "stopped") else 3
    width = max(len(k) for k in status)
    for key, value in status.items():
        print(f"{key:<{width}}  {value}")
    return 0 if alive in ("running", "stopped") else 3


def register(subparsers: argparse._SubParsersAction) -> None:
    if "run" not in subparsers.choices:
        run = subparsers.add_parser("run", help="run an app of the kit (the smart intersection)")
        apps = run.add_subparsers(dest="app", metavar="APP", required=True)
        p = apps.add_parser("intersection", help="the smart-intersection edge app (simulated unless on a Pi)")
        p.add_argument("--db", help="the store (default: $KIT_HOME/kit.db or ~/.kit/kit.db)")
        p.add_argument(
            "--hours",
            type=float_range(0, 24 * 366, low_open=True),
            help="stop after this many (simulated) hours; default: run until stopped",
        )
        p.add_argument("--seed", type=int_range(0, 2**32 - 1), default=0, help="seed of the simulated world")
        p.add_argument(
            "--start", type=iso_datetime(), default="2026-10-15T00:00:00", help="simulated start (ISO), unless resuming"
        )
        p.add_argument("--fresh", action="store_true", help="do not resume simulated time from the store")
        pace = p.add_mutually_exclusive_group()
        pace.add_argument("--realtime", action="store_true", help="simulation at wall-clock speed")
        pace.add_argument(
            "--speed",
            type=float_range(0, 1e6, low_open=True),
            help="simulation paced at N simulated seconds per wall second (600: a day in 2.4 min); "
            "default: as fast as possible",
        )
        p.add_argument("--leaves", type=float_range(0, 1), default=0.0, help="leaf cover on sensors and lens, 0..1")
        p.add_argument("--road-works", action="store_true")
        p.add_argument(
            "--stuck",
            type=stuck_sensor,
            action="append",
            default=[],
            metavar="SENSOR=VALUE",
            help="simulation: a sensor stuck from the start, pir=0, pir=1 or distance=METRES (repeatable); "
            "the app should flag it (kit.ml.stuck)",
        )
        p.add_argument(
            "--diverted",
            action="store_true",
            help="the road works close the lane: the camera sees the queue wait in the other lane behind a "
            "temporary stop line (a layout the shipped models never saw; implies --road-works)",
        )
        p.add_argument(
            "--model",
            help="shipped model (fusion, the default: camera + sensors, int8 early exit; "
            "early_exit, intersection: camera only), a .tflite file or a model folder; one named here "
            "that does not load stops the run",
        )
        p.add_argument("--no-model", action="store_true", help="control from the sensors only")
        p.add_argument(
            "--models",
            metavar="DIR",
            help="folder for models delivered over the air (kit model deploy); with --cloud the device "
            "reads its shadow's desired.model",
        )
        p.add_argument(
            "--controller",
            type=_controller_choice,
            default="adaptive",
            help="who ends the car green: adaptive (the kit's rule), learned (the shipped deep-RL policy, "
            "lab 10) or module:Class, a controller of your own (lab 09)",
        )
        p.add_argument(
            "--traffic",
            choices=["kit", "sumo"],
            default="kit",
            help="simulated traffic: the kit's world, or SUMO co-simulated (needs the [sumo] extra)",
        )
        p.add_argument(
            "--camera-period", type=float_range(0.1, 86_400), default=10.0, help="seconds between camera frames"
        )
        p.add_argument("--sync-period", type=float_range(0.1, 86_400), default=60.0, help="seconds between cloud syncs")
        p.add_argument("--cloud", action="store_true", help="upload, shadow and telemetry (see docs/cloud.md)")
        p.add_argument("--local-cloud", action="store_true", help="with --cloud: start a local AWS endpoint in-process")
        p.add_argument("--no-mqtt", action="store_true", help="with --cloud: no MQTT telemetry")
        p.add_argument("--status", type=output_file, help="status file (default: next to the store)")
        p.add_argument(
            "--sample-period",
            type=float_range(0.01, 3600),
            help="seconds between sensor samples (default: the stored parameter sample_period_s)",
        )
        p.add_argument(
            "--compare",
            action="store_true",
            help="also run the fixed-time plan and the adaptive control "
            "from the sensors only on the same simulated traffic, side by side (with --fresh)",
        )
        p.add_argument("--plot", type=image_file, help="write a plot of the run to this picture (.png, .pdf, .svg)")
        p.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])
        p.set_defaults(func=_run_intersection)
    if "status" not in subparsers.choices:
        s = subparsers.add_parser("status", help="health of the intersection app: uptime, outbox, sync, model, drift")
        s.add_argument("--db", help="the store the app uses")
        s.add_argument("--status", help="status file (default: next to the store)")
        s.add_argument("--json", action="store_true")
        s.set_defaults(func=_status)

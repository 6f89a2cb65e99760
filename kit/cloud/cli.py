"""``kit cloud ...``: run the local endpoint, show where the cloud is, sync the outbox, the shadow.

kit cloud serve [--port 5151]      # the local AWS endpoint until Ctrl-C
kit cloud status [--db PATH]       # configuration (never a key), endpoint reachable?, outbox depth
kit cloud provision [--db PATH]    # create the bucket and the thing, report the parameters
kit cloud sync [--db PATH]         # drain the outbox to S3 (progress on stderr); --follow keeps going
kit cloud shadow [--db PATH]       # apply the shadow's desired parameters once
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from typing import Any

from kit.argtypes import float_range, int_range


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "cloud",
        help="the cloud side: local AWS endpoint, uploads, device shadow",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="cloud_command", metavar="ACTION")

    def show_help(args: argparse.Namespace) -> int:
        parser.print_help()
        return 0

    parser.set_defaults(func=show_help)

    serve = sub.add_parser("serve", help="run the local AWS endpoint (moto) on 127.0.0.1")
    serve.add_argument("--port", type=int_range(0, 65535), default=None, help="port (default 5151; 0 picks a free one)")
    serve.set_defaults(func=cmd_serve)

    status = sub.add_parser("status", help="where the cloud is, whether it answers, what waits in the outbox")
    _db_option(status)
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(func=cmd_status)

    prov = sub.add_parser("provision", help="create the bucket and the thing, report the parameters")
    _db_option(prov)
    prov.set_defaults(func=cmd_provision)

    sync = sub.add_parser("sync", help="send the outbox to S3 (retries, backoff, circuit breaker)")
    _db_option(sync)
    sync.add_argument(
        "--timeout",
        type=float_range(0, 7 * 24 * 3600, low_open=True),
        default=None,
        help="give up after this many seconds",
    )
    sync.add_argument("--wait", action="store_true", help="keep waiting while the endpoint is down")
    sync.add_argument(
        "--follow", action="store_true", help="keep running: drain every --interval seconds (Ctrl-C stops)"
    )
    sync.add_argument(
        "--interval",
        type=float_range(0.01, 24 * 3600),
        default=5.0,
        help="seconds between rounds with --follow (default 5)",
    )
    sync.set_defaults(func=cmd_sync)

    shadow = sub.add_parser("shadow", help="apply the desired parameters of the device shadow once")
    _db_option(shadow)
    shadow.set_defaults(func=cmd_shadow)


def _db_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", default=None, help="the kit's SQLite file (default: the kit's usual store)")


def _open_store(path: str | None, *, readonly: bool = False) -> Any:
    from kit.store import Store

    if path is None:
        from kit import store as store_module

        default = getattr(store_module, "default_path", None)
        path = str(default()) if callable(default) else None
    if path is None:
        raise SystemExit("no store given: pass --db PATH (the kit's SQLite file)")
    return Store(path, readonly=readonly)


def cmd_serve(args: argparse.Namespace) -> int:
    from kit.cloud.config import DEFAULT_PORT
    from kit.cloud.emulator import LocalCloud

    port = DEFAULT_PORT if args.port is None else args.port
    cloud = LocalCloud(port, activate=False).start()  # a port it can't take: CloudServeError, one line, exit 1
    print(
        f"local AWS endpoint on {cloud.endpoint_url} (S3, IoT, IoT data); listening on port {cloud.port}; "
        "Ctrl-C stops it"
    )
    print(f"point boto3 at it:  export AWS_ENDPOINT_URL={cloud.endpoint_url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        cloud.stop()
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from kit.cloud.config import current
    from kit.cloud.emulator import reachable

    cfg = current()
    info: dict[str, Any] = cfg.describe()
    if cfg.local:
        info["reachable"] = reachable(cfg.endpoint_url or "")
    if args.db is not None:
        store = _open_store(args.db, readonly=True)
        info["outbox_depth"] = store.outbox.depth()
        info["dead_letters"] = len(store.outbox.dead())
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        for key, value in info.items():
            print(f"{key:>13}: {value}")
        if cfg.local and not info["reachable"]:
            print(f"\nnothing answers at {cfg.endpoint_url}: start it with 'kit cloud serve'")
    return 0 if info.get("reachable", True) else 1


def cmd_provision(args: argparse.Namespace) -> int:
    from kit.cloud.shadow import ShadowAgent
    from kit.cloud.uploader import Uploader

    store = _open_store(args.db)
    up = Uploader(device_id=store.params.get("device_id")).ensure_bucket()
    agent = ShadowAgent(store).provision()
    print(f"bucket {up.bucket} ready; thing {agent.thing_name} registered, parameters reported")
    return 0


def cmd_sync(args: argparse.Namespace) -> int:
    from kit.cloud.sync import Sync

    store = _open_store(args.db)
    total = store.outbox.depth()
    progress_shown = False  # the progress line has no newline yet: a message must start on a line of its own

    def say(text: str) -> None:
        nonlocal progress_shown
        print(("\n" if progress_shown else "") + text, file=sys.stderr, flush=True)
        progress_shown = False

    def progress(report: Any) -> None:
        nonlocal progress_shown
        done = total - report.depth
        print(f"\rsent {report.sent} readings, {done}/{total} done", end="", file=sys.stderr, flush=True)
        progress_shown = True

    if args.follow:
        plan = "retrying until it answers (Ctrl-C stops)"
    elif args.wait:
        plan = "waiting for it" + (f" (up to {args.timeout:g} s)" if args.timeout else " (Ctrl-C stops)")
    else:
        plan = "giving up after a few tries (--wait keeps waiting)"

    def outage(exc: BaseException | None) -> None:
        # Once per change of state, not per retry: a service left running through a long outage logs two lines.
        if exc is None:
            say("cloud endpoint answers again: sending")
        else:
            say(f"cloud endpoint unreachable: {exc}; {plan}")

    # Waiting starts before the first request: with --wait or --follow the endpoint may come up after this command
    # (a systemd service started before it), so the bucket is made by the first round that reaches it.
    sync = Sync(store, on_progress=progress, on_outage=outage, lazy=args.wait or args.follow)
    if args.follow:
        stop = threading.Event()
        timer = threading.Timer(args.timeout, stop.set) if args.timeout else None
        if timer:
            timer.daemon = True
            timer.start()
        try:
            report = sync.run(stop, interval_s=args.interval)
        except KeyboardInterrupt:
            say(f"stopped; outbox depth {store.outbox.depth()}")
            return 0
        print(file=sys.stderr)
        print(report)
        return 0
    report = sync.drain(timeout=args.timeout, wait_open=args.wait)
    print(file=sys.stderr)
    print(report)
    return 0 if report.depth == 0 else 1


def cmd_shadow(args: argparse.Namespace) -> int:
    from kit.cloud.shadow import ShadowAgent

    result = ShadowAgent(_open_store(args.db)).poll()
    if result.applied:
        print("applied:", json.dumps(result.applied))
    for name, reason in result.rejected.items():
        print(f"rejected {name}: {reason}")
    if not result.applied and not result.rejected:
        print("nothing to do: the shadow's desired state matches the device")
    return 1 if result.rejected else 0

"""``kit params list|get|set|history|reset|export|import`` and ``kit readings tail|stats|prune``.

Every command takes ``--db PATH`` (default ``$KIT_HOME/kit.db``, else ``~/.kit/kit.db``). Registering the
commands imports nothing heavy; the store is opened inside the command.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, NoReturn

from kit.argtypes import float_range, int_range

_SOURCES = ("local", "cloud", "lab")
_MAX_IMPORT_BYTES = 1_000_000


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``params`` and ``readings`` command groups (kit/cli.py calls this once)."""
    if "params" in subparsers.choices:  # listed twice in COMMANDS (params, readings): register once
        return
    db = argparse.ArgumentParser(add_help=False)
    db.add_argument(
        "--db", metavar="PATH", default=None, help="store file (default: $KIT_HOME/kit.db, else ~/.kit/kit.db)"
    )

    params = subparsers.add_parser(
        "params",
        help="show and change the kit's parameters",
        description="Show and change the kit's parameters (validated, with history).",
    )
    psub = params.add_subparsers(dest="params_command", metavar="ACTION", required=True)
    p = psub.add_parser("list", parents=[db], help="every parameter with value, unit, default and allowed values")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=_params_list)
    p = psub.add_parser("get", parents=[db], help="print one parameter's value")
    p.add_argument("name")
    p.set_defaults(func=_params_get)
    p = psub.add_parser("set", parents=[db], help="set NAME VALUE [NAME VALUE ...] (all or nothing)")
    p.add_argument("pairs", nargs="+", metavar="NAME VALUE")
    p.add_argument("--source", choices=_SOURCES, default="local", help="recorded in the history (default local)")
    p.set_defaults(func=_params_set)
    p = psub.add_parser("history", parents=[db], help="changes: when, old -> new, source")
    p.add_argument("name", nargs="?")
    p.add_argument(
        "-n", "--limit", type=int_range(1, 1_000_000), default=20, help="show the last N changes (default 20)"
    )
    p.set_defaults(func=_params_history)
    p = psub.add_parser("reset", parents=[db], help="back to the default (one parameter, or all)")
    p.add_argument("name", nargs="?")
    p.set_defaults(func=_params_reset)
    p = psub.add_parser("export", parents=[db], help="print all values as JSON")
    p.set_defaults(func=_params_export)
    p = psub.add_parser("import", parents=[db], help="set values from a JSON file ('-' = stdin), all or nothing")
    p.add_argument("file")
    p.add_argument("--source", choices=_SOURCES, default="local")
    p.set_defaults(func=_params_import)

    readings = subparsers.add_parser(
        "readings",
        help="look at and prune stored sensor readings",
        description="Look at and prune the stored sensor readings.",
    )
    rsub = readings.add_subparsers(dest="readings_command", metavar="ACTION", required=True)
    p = rsub.add_parser("tail", parents=[db], help="the last readings")
    p.add_argument("-n", type=int_range(1, 1_000_000), default=10, help="how many (default 10)")
    p.add_argument("--sensor", help="only this sensor")
    p.set_defaults(func=_readings_tail)
    p = rsub.add_parser("stats", parents=[db], help="per sensor counts, time span and values; file size; outbox")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_readings_stats)
    p = rsub.add_parser("prune", parents=[db], help="drop (or downsample) readings older than N days")
    p.add_argument(
        "--older-than-days", type=float_range(0, 100 * 365), default=None, help="default: the retention_days parameter"
    )
    p.add_argument("--downsample", action="store_true", help="keep one mean per sensor per minute instead")
    p.add_argument("--vacuum", action="store_true", help="then shrink the file (rewrites it; takes a moment)")
    p.add_argument(
        "--include-unsent",
        action="store_true",
        help="also drop old readings the cloud has not received yet (and their outbox items)",
    )
    p.set_defaults(func=_readings_prune)


def _open(args: argparse.Namespace, *, readonly: bool = False) -> Any:
    """The store for a command; reading commands open it read-only (nothing created, nothing changed)."""
    from kit.store import Store

    return Store(args.db, readonly=readonly)


def _fail(message: str) -> NoReturn:
    from kit.errors import UsageError

    raise UsageError(message)  # printed as "kit params: error: ...", exit 2, like every usage error


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _params_list(args: argparse.Namespace) -> int:
    with _open(args, readonly=True) as store:
        values, sources = store.params.all(), store.params.sources()
        if args.json:
            print(json.dumps({n: {"value": v, "source": sources[n]} for n, v in values.items()}, indent=2))
            return 0
        rows = [
            (n, _show(v), p.unit, _show(p.default), sources[n], p.allowed())
            for n, p in store.params.schema.items()
            for v in [values[n]]
        ]
    _table(("name", "value", "unit", "default", "source", "allowed"), rows)
    return 0


def _params_get(args: argparse.Namespace) -> int:
    from kit.errors import UsageError
    from kit.store import ParameterError

    with _open(args, readonly=True) as store:
        try:
            value = store.params.get(args.name)
        except ParameterError as exc:  # its "(nothing was changed)" is for a write; this is a read
            raise UsageError("; ".join(f"{n}: {why}" for n, why in exc.problems.items())) from None
    print(_show(value))
    return 0


def _params_set(args: argparse.Namespace) -> int:
    from kit.store import ParameterError

    if len(args.pairs) % 2:
        _fail(
            f"set takes NAME VALUE pairs, got {len(args.pairs)} words: {' '.join(args.pairs)}; give a value for "
            "each name, e.g. kit params set car_green_s 25"
        )
    with _open(args) as store:
        changes: dict[str, Any] = {}
        problems: dict[str, str] = {}
        for name, text in zip(args.pairs[::2], args.pairs[1::2]):
            spec = store.params.schema.get(name)
            if spec is None:
                changes[name] = text  # validate() names it as unknown, with the known names
                continue
            try:
                changes[name] = spec.parse(text)
            except ParameterError as exc:
                problems.update(exc.problems)
        problems.update({n: r for n, r in store.params.validate(changes).items() if n not in problems})
        if problems:
            raise ParameterError(problems)
        changed = store.params.update(changes, source=args.source)
    for name in changes:
        note = "" if name in changed else " (unchanged)"
        print(f"{name} = {_show(changes[name] if name not in changed else changed[name])}{note}")
    return 0


def _params_history(args: argparse.Namespace) -> int:
    from kit.store.timestamps import to_iso

    with _open(args, readonly=True) as store:
        rows = [
            (to_iso(h["ts"]), h["name"], _show(h["old"]), _show(h["new"]), h["source"])
            for h in store.params.history(args.name, limit=args.limit)
        ]
    if not rows:
        print("no changes recorded")
        return 0
    _table(("time (UTC)", "name", "old", "new", "source"), rows)
    return 0


def _params_reset(args: argparse.Namespace) -> int:
    with _open(args) as store:
        changed = store.params.reset(args.name)
    for name, value in changed.items():
        print(f"{name} = {_show(value)} (default)")
    if not changed:
        print("already at the default")
    return 0


def _params_export(args: argparse.Namespace) -> int:
    with _open(args, readonly=True) as store:
        sys.stdout.write(store.params.export_json())
    return 0


def _params_import(args: argparse.Namespace) -> int:
    from kit.errors import UsageError
    from kit.store import ParameterError

    # bytes: import_json reports a file that is not UTF-8 as bad input, like malformed JSON
    if args.file == "-":
        text = sys.stdin.buffer.read()
    else:
        with open(args.file, "rb") as f:
            text = f.read(_MAX_IMPORT_BYTES + 1)
    if len(text) > _MAX_IMPORT_BYTES:
        _fail(f"{args.file} is larger than {_MAX_IMPORT_BYTES // 1000} kB; a parameter file is a small JSON object")
    with _open(args) as store:
        try:
            changed = store.params.import_json(text, source=args.source)
        except ParameterError:
            raise
        except (ValueError, RecursionError) as exc:  # e.g. a 5000-digit number, JSON nested 10^5 deep
            raise UsageError(
                f"{args.file}: not a usable parameter file ({str(exc)[:120]}); nothing was changed"
            ) from None
    print(f"{len(changed)} parameter(s) changed" + (": " + ", ".join(changed) if changed else ""))
    return 0


def _readings_tail(args: argparse.Namespace) -> int:
    from kit.store.timestamps import to_iso

    with _open(args, readonly=True) as store:
        rows = [(to_iso(r["ts"]), r["sensor"], f"{r['value']:g}") for r in store.readings.tail(args.n, args.sensor)]
        known = [s["sensor"] for s in store.readings.sensors()] if not rows and args.sensor else []
    if not rows and known:  # a mistyped sensor name, not an empty store
        _fail(f"no readings of {args.sensor!r}; the store has readings of {', '.join(known)}")
    if not rows:
        print("no readings")
        return 0
    _table(("time (UTC)", "sensor", "value"), rows)
    return 0


def _readings_stats(args: argparse.Namespace) -> int:
    from kit.store.timestamps import to_iso

    with _open(args, readonly=True) as store:
        sensors = store.readings.sensors()
        size = store.readings.size()
        depth, dead = store.outbox.depth(), len(store.outbox.dead())
        path = store.path
    if args.json:
        print(json.dumps({"sensors": sensors, "size": size, "outbox": {"depth": depth, "dead": dead}}, indent=2))
        return 0
    if sensors:
        _table(
            ("sensor", "count", "first (UTC)", "last (UTC)", "min", "mean", "max"),
            [
                (
                    s["sensor"],
                    s["count"],
                    to_iso(s["first_ts"]),
                    to_iso(s["last_ts"]),
                    f"{s['min']:g}",
                    f"{s['mean']:g}",
                    f"{s['max']:g}",
                )
                for s in sensors
            ],
        )
    else:
        print("no readings")
    print(
        f"\n{path}: {size['file_bytes'] / 1e6:.2f} MB (+ {size['wal_bytes'] / 1e6:.2f} MB WAL), "
        f"{size['readings']} reading rows; outbox: {depth} waiting, {dead} dead-lettered"
    )
    return 0


def _readings_prune(args: argparse.Namespace) -> int:
    with _open(args) as store:
        days = args.older_than_days if args.older_than_days is not None else store.params.get("retention_days")
        result = store.readings.prune(days, downsample=args.downsample, include_unsent=args.include_unsent)
        saved = store.vacuum() if args.vacuum else None
    what = "downsampled" if args.downsample else "deleted"
    print(
        f"readings older than {days:g} days: {result['deleted']} rows {what}"
        + (f" into {result['added']} per-minute rows" if args.downsample else "")
        + (
            f"; {result['kept_unsent']} kept because they are still waiting in the outbox "
            "(--include-unsent drops them too)"
            if result["kept_unsent"]
            else ""
        )
    )
    if saved is not None:
        print(f"file shrunk by {saved / 1e6:.2f} MB")
    return 0


def _table(header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    cells = [tuple(str(c) for c in header)] + [tuple(str(c) for c in r) for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    for i, row in enumerate(cells):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))

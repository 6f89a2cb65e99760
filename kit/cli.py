"""The ``kit`` command line: one sub-command per subsystem.

Each subsystem keeps its own commands in a module with ``register(subparsers)``; this file only
lists them, so that adding a command never touches another subsystem. Registering must stay
cheap: heavy imports happen inside the command functions.
"""
from __future__ import annotations

import argparse
import importlib
import sys

# command group -> module exposing register(subparsers)
COMMANDS: dict[str, str] = {
    "doctor": "kit.doctor",
    "demo": "kit.apps.demo",
    "params": "kit.store.cli",
    "readings": "kit.store.cli",
    "cloud": "kit.cloud.cli",
    "model": "kit.ml.cli",
    "run": "kit.apps.cli",
    "status": "kit.apps.cli",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kit",
        description="Edge Python kit: the smart intersection on a Raspberry Pi or in simulation.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    seen: set[str] = set()
    for module_name in dict.fromkeys(COMMANDS.values()):
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:  # a real import error inside the module: show it
                raise
            continue  # subsystem not present in this build
        module.register(sub)
        seen.add(module_name)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 0
    try:
        result = func(args)
    except KeyboardInterrupt:
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())

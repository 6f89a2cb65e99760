"""The ``kit`` command line: one sub-command per subsystem.

Each subsystem keeps its own commands in a module with ``register(subparsers)``; this file only
lists them, so that adding a command never touches another subsystem. Registering must stay
cheap: heavy imports happen inside the command functions.

Errors are for people: a :class:`~kit.errors.KitError`, or one of the failures the world can cause
(a file that can't be opened, a locked or full database, an endpoint that is down), becomes one line
on stderr and an exit code (2: fix the command; 1: fix the situation). ``--debug`` or ``KIT_DEBUG=1``
shows the traceback instead.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from types import ModuleType
from typing import NoReturn

import kit
import kit.apps.cli
import kit.apps.demo
import kit.cloud.cli
import kit.doctor
import kit.ml.cli
import kit.store.cli
from kit.errors import EXIT_RUNTIME, EXIT_USAGE, KitError

# One module per subsystem, each exposing register(subparsers); imported directly so a broken module
# shows its own import error instead of silently losing its commands.
COMMAND_MODULES: tuple[ModuleType, ...] = (
    kit.doctor,
    kit.apps.demo,
    kit.store.cli,
    kit.cloud.cli,
    kit.ml.cli,
    kit.apps.cli,
)
EXIT_INTERRUPTED = 130
DEBUG_ENV = "KIT_DEBUG"


class KitArgumentParser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line on stderr (what was wrong, where to read more), exit 2.

    Sub-command parsers are made from the parent's class, so every ``kit`` verb answers the same way.
    """

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = KitArgumentParser(
        prog="kit",
        description="Edge Python kit: the smart intersection on a Raspberry Pi or in simulation.",
        epilog=f"Errors are one line; --debug (or {DEBUG_ENV}=1) shows the traceback.",
    )
    parser.add_argument("--version", action="version", version=f"kit {kit.__version__}")
    parser.add_argument("--debug", action="store_true", help="show the full traceback when a command fails")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


def _debug_requested(argv: list[str]) -> bool:
    return "--debug" in argv or os.environ.get(DEBUG_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def describe_failure(exc: BaseException) -> tuple[str, int] | None:
    """One line and an exit code for a failure a user can cause or fix; ``None`` for a bug.

    >>> describe_failure(FileNotFoundError(2, "No such file or directory", "x.db"))
    ('x.db: No such file or directory (check the path)', 1)
    """
    if isinstance(exc, KitError):
        return str(exc), exc.exit_code
    if isinstance(exc, sqlite3.Error):
        text = str(exc)
        if "locked" in text or "busy" in text:
            hint = "another program holds the store: stop it or try again"
        elif "disk" in text and "full" in text:
            hint = "free some disk space; this command's changes were rolled back"
        elif "disk I/O" in text:
            hint = "the disk refused a read or write (full, failing or removed?): free space or check the card"
        elif "readonly" in text or "read-only" in text:
            hint = "the store or its folder is read-only: use a writable --db"
        elif "malformed" in text or "not a database" in text:
            hint = "the store is damaged: restore a backup or start a new one with another --db"
        else:
            hint = "check the store file"
        return f"database error: {text} ({hint})", EXIT_RUNTIME
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        reason = exc.strerror or str(exc) or type(exc).__name__
        hints = {
            "FileNotFoundError": "check the path",
            "PermissionError": "check the permissions, or choose another path",
            "IsADirectoryError": "give a file, not a folder",
            "NotADirectoryError": "a part of the path is a file, not a folder",
            "ConnectionRefusedError": "is the server running? check the endpoint",
        }
        hint = hints.get(type(exc).__name__)
        if getattr(exc, "errno", None) == 28:  # ENOSPC
            hint = "free some disk space"
        return f"{where}{reason}" + (f" ({hint})" if hint else ""), EXIT_RUNTIME
    botocore = sys.modules.get("botocore.exceptions")  # only if a command loaded it: keeps `kit` light
    if botocore is not None:
        if isinstance(exc, botocore.NoCredentialsError):
            return (
                "no AWS credentials found: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a profile, "
                "or use the local cloud"
            ), EXIT_RUNTIME
        if isinstance(exc, botocore.EndpointConnectionError | botocore.ConnectTimeoutError | botocore.ReadTimeoutError):
            return (
                f"cloud endpoint unreachable: {exc} (is `kit cloud serve` running? check AWS_ENDPOINT_URL)",
                EXIT_RUNTIME,
            )
        if isinstance(exc, botocore.ClientError):
            return f"the cloud refused the request: {exc}", EXIT_RUNTIME
        if isinstance(exc, botocore.BotoCoreError):
            return f"cloud error: {exc}", EXIT_RUNTIME
    return None


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = _debug_requested(argv)
    parser = build_parser()
    args = parser.parse_args(argv)  # argparse prints its own one-line usage error and exits 2
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 0
    try:
        result = func(args)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # the reader went away (`kit readings tail | head`): it has what it wanted. Quiet, as `cat` would be;
        # stdout goes to /dev/null so that Python's own flush at exit does not complain either
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:
        if debug:
            raise
        known = describe_failure(exc)
        if known is None:
            print(
                f"kit: internal error: {type(exc).__name__}: {exc} "
                f"(this is a bug; rerun with --debug and report the traceback)",
                file=sys.stderr,
            )
            return EXIT_RUNTIME
        message, code = known
        print(f"kit {args.command}: error: {message}", file=sys.stderr)
        return code
    return int(result or 0)


__all__ = ["EXIT_RUNTIME", "EXIT_USAGE", "build_parser", "describe_failure", "main"]

if __name__ == "__main__":
    sys.exit(main())

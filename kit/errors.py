"""One family for every error the kit raises on purpose.

Like gpiozero's ``GPIOZeroError``, every deliberate kit error derives from :class:`KitError`, so a
program (or the ``kit`` command line) can tell "the kit refused this, and says why" apart from a bug:

    >>> from kit.errors import KitError, UsageError
    >>> try:
    ...     raise UsageError("--hours must be a positive number, got nan")
    ... except KitError as exc:
    ...     print(exc.exit_code, exc)
    2 --hours must be a positive number, got nan

Each subclass also derives from the built-in exception a Python programmer would expect
(``ValueError`` for a bad value, ``RuntimeError`` for a state of the world, ...), so existing
``except ValueError`` code keeps working. The command line turns a ``KitError`` into one line on
stderr and exits with :attr:`KitError.exit_code`: 2 when the user asked for something invalid
(fix the command), 1 when the command was fine but could not be carried out (fix the situation).
"""

from __future__ import annotations

EXIT_RUNTIME = 1
EXIT_USAGE = 2


class KitError(Exception):
    """Base class of every error the kit raises on purpose; its message says what was wrong and what to do."""

    exit_code: int = EXIT_RUNTIME


class UsageError(KitError, ValueError):
    """A value given by the user (an argument, a parameter, a pin map, a model input) is not acceptable."""

    exit_code = EXIT_USAGE


class KitRuntimeError(KitError, RuntimeError):
    """The request was valid, but the world refused it: a file, a server, a device is not as it must be."""

    exit_code = EXIT_RUNTIME


class KitFileError(KitError, OSError):
    """A file the kit needs is missing, unreadable or of the wrong kind (named in the message)."""

    exit_code = EXIT_RUNTIME


__all__ = ["EXIT_RUNTIME", "EXIT_USAGE", "KitError", "KitFileError", "KitRuntimeError", "UsageError"]

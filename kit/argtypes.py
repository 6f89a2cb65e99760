"""Argument types for the ``kit`` command line: numbers that are finite and in range, or a clear usage error.

``argparse``'s own ``type=int`` takes ``99999999999999999999`` and ``type=float`` takes ``nan``; these
do not, and their message says what is allowed:

    >>> import argparse
    >>> p = argparse.ArgumentParser(prog="kit")
    >>> _ = p.add_argument("--hours", type=float_range(0, 24 * 366, low_open=True))
    >>> p.parse_args(["--hours", "1.5"]).hours
    1.5
    >>> float_range(0, 10)("nan")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: must be a number from 0 to 10, got 'nan'
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def _show(x: float) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


def int_range(low: int, high: int) -> Callable[[str], int]:
    """An argparse ``type``: a whole number ``low <= n <= high``."""

    def parse(text: str) -> int:
        try:
            value = int(text.strip()) if len(text) <= 32 else None
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be a whole number from {low} to {high}, got {text[:40]!r}")
        return value

    parse.__name__ = f"int_range({low}, {high})"
    return parse


def float_range(low: float, high: float, *, low_open: bool = False) -> Callable[[str], float]:
    """An argparse ``type``: a finite number ``low <= x <= high`` (``low < x`` when ``low_open``)."""

    def parse(text: str) -> float:
        try:
            value = float(text) if len(text) <= 64 else math.nan
        except ValueError:
            value = math.nan
        above = value > low if low_open else value >= low
        if not (math.isfinite(value) and above and value <= high):
            lower = f"more than {_show(low)} up" if low_open else f"from {_show(low)}"
            raise argparse.ArgumentTypeError(f"must be a number {lower} to {_show(high)}, got {text[:40]!r}")
        return value

    parse.__name__ = f"float_range({low}, {high})"
    return parse


def nonempty_text(max_len: int = 200) -> Callable[[str], str]:
    """An argparse ``type``: printable text, not empty, at most ``max_len`` characters."""

    def parse(text: str) -> str:
        if not text.strip() or len(text) > max_len or not text.isprintable():
            raise argparse.ArgumentTypeError(f"must be printable text of 1 to {max_len} characters, got {text[:40]!r}")
        return text

    parse.__name__ = "text"
    return parse


def iso_datetime(first_year: int = 1970, last_year: int = 2100) -> Callable[[str], str]:
    """An argparse ``type``: an ISO date and time (``2026-10-15T06:00:00``) between two years, kept as text."""

    def parse(text: str) -> str:
        from datetime import datetime

        try:
            when = datetime.fromisoformat(text.strip()) if len(text) <= 40 else None
        except ValueError:
            when = None
        if when is None or not first_year <= when.year <= last_year:
            raise argparse.ArgumentTypeError(
                f"must be an ISO date and time from {first_year} to {last_year}, such as 2026-10-15T06:00:00, "
                f"got {text[:40]!r}"
            )
        return text.strip()

    parse.__name__ = "iso_datetime"
    return parse


def output_file(text: str) -> str:
    """An argparse ``type``: a path to write a file to (not a folder; its folder is created when needed)."""
    from pathlib import Path

    if not text.strip() or Path(text).is_dir() or text.endswith(("/", "\\")):
        raise argparse.ArgumentTypeError(f"must be a file path to write, got {text[:80]!r}")
    return text


#: What matplotlib's savefig writes (checked without importing matplotlib: parsing options stays light).
IMAGE_SUFFIXES = (".png", ".pdf", ".svg", ".svgz", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".eps", ".ps")


def image_file(text: str) -> str:
    """An argparse ``type``: a picture to write, in a format matplotlib can save (checked before a long run).

    >>> image_file("day.png")
    'day.png'
    >>> image_file("day.txt")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: 'day.txt' is not a picture format: end it in .png, .pdf, .svg, .jpg, .webp, ...
    """
    from pathlib import Path

    path = output_file(text)
    if Path(path).suffix.lower() not in IMAGE_SUFFIXES:
        raise argparse.ArgumentTypeError(
            f"{path[:80]!r} is not a picture format: end it in .png, .pdf, .svg, .jpg, .webp, ..."
        )
    return path


def device_name(text: str) -> str:
    """An argparse ``type``: a device's thing name, by the store's own ``device_id`` rule.

    >>> device_name("kit-0001")
    'kit-0001'
    >>> device_name("bad id/x")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: a device's name is 1 to 64 letters, digits, '-' or '_' (its device_id), e.g. kit-0001; got 'bad id/x'
    """
    import re

    from kit.store.defaults import PARAMETERS

    if not re.fullmatch(PARAMETERS["device_id"].pattern or "", text):
        raise argparse.ArgumentTypeError(
            f"a device's name is 1 to 64 letters, digits, '-' or '_' (its device_id), e.g. kit-0001; got {text[:80]!r}"
        )
    return text


__all__ = ["device_name", "float_range", "image_file", "int_range", "iso_datetime", "nonempty_text", "output_file"]


def stuck_sensor(text: str) -> tuple[str, float]:
    """An argparse ``type``: ``pir=0``, ``pir=1`` or ``distance=METRES`` (a simulated sensor stuck at a value).

    >>> stuck_sensor("pir=0"), stuck_sensor("distance=0.8")
    (('pir', 0.0), ('distance', 0.8))
    """
    name, _, value = text.partition("=")
    name = name.strip()
    try:
        number = float(value) if len(value) <= 32 else math.nan
    except ValueError:
        number = math.nan
    if name == "pir" and number in (0.0, 1.0):
        return name, number
    if name == "distance" and math.isfinite(number) and 0.0 <= number <= 4.0:
        return name, number
    raise argparse.ArgumentTypeError(f"must be pir=0, pir=1 or distance=METRES (0 to 4), got {text[:40]!r}")

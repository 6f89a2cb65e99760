"""One declared parameter: its type, unit, limits, default and what it means; and the error for bad values."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from kit.errors import UsageError

# The places a parameter change can come from; recorded in parameter_history.source.
SOURCES = ("local", "cloud", "lab")

_TYPES = {"int": int, "float": float, "str": str, "bool": bool}


class ParameterError(UsageError):
    """A parameter value (or name) was rejected; nothing was changed.

    ``problems`` maps each offending parameter name to a sentence saying what was wrong and what is
    allowed. ``name`` is the first offending name (handy when only one value was set).

        >>> from kit.store import Store, ParameterError
        >>> store = Store(":memory:")
        >>> try:
        ...     store.params.set("car_amber_s", 60)
        ... except ParameterError as exc:
        ...     print(exc.name)
        car_amber_s
    """

    def __init__(self, problems: dict[str, str]):
        self.problems = dict(problems)
        self.name = next(iter(self.problems), None)
        lines = [f"{name}: {reason}" for name, reason in self.problems.items()]
        super().__init__("; ".join(lines) + " (nothing was changed)")


@dataclass(frozen=True)
class Parameter:
    """The declaration of one kit parameter (see ``kit/store/defaults.py`` for the kit's list).

    >>> p = Parameter("car_amber_s", "float", 3.0, "amber time", unit="s", minimum=3, maximum=6)
    >>> p.check(4)
    4.0
    >>> p.problem(9)
    'must be between 3 and 6 s, got 9 s'
    """

    name: str
    type: str  # "int" | "float" | "str" | "bool"
    default: Any
    description: str
    unit: str = ""
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple | None = None
    pattern: str | None = None  # for str parameters: the whole value must match

    def __post_init__(self) -> None:
        if self.type not in _TYPES:
            raise ValueError(f"parameter {self.name}: type must be one of {sorted(_TYPES)}, got {self.type!r}")
        problem = self.problem(self.default)
        if problem:
            raise ValueError(f"parameter {self.name}: its default {self.default!r} {problem}")

    def allowed(self) -> str:
        """The allowed values in words, e.g. ``float between 3 and 6 s``."""
        if self.choices is not None:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        if self.type == "bool":
            return "true or false"
        if self.minimum is not None or self.maximum is not None:
            return f"{self.type} {self._range()}"
        if self.pattern is not None:
            return f"text matching {self.pattern}"
        return self.type

    def _range(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        if self.minimum is not None and self.maximum is not None:
            return f"between {_num(self.minimum)} and {_num(self.maximum)}{unit}"
        if self.minimum is not None:
            return f">= {_num(self.minimum)}{unit}"
        return f"<= {_num(self.maximum)}{unit}"

    def coerce(self, value: Any) -> Any:
        """Return ``value`` as this parameter's type, or raise ``TypeError`` saying why it can't be.

        Strict on purpose: ``"20"`` is not a number (use :meth:`parse` for text from a command line),
        ``True`` is not an int, ``2.5`` is not an int; ``20.0`` is accepted as the int 20 because JSON
        from other tools often writes whole numbers that way.
        """
        kind = self.type
        if kind == "bool":
            if isinstance(value, bool):
                return value
        elif kind == "int":
            if isinstance(value, bool):
                pass
            elif isinstance(value, int) or _is_integer_like(value):
                return int(value)
            elif isinstance(value, float) and value.is_integer():
                return int(value)
        elif kind == "float":
            if not isinstance(value, bool) and isinstance(value, (int, float)) or _is_real_like(value):
                try:
                    number = float(value)
                except OverflowError:  # a 400-digit integer: no float holds it
                    number = math.inf
                if not math.isfinite(number):
                    raise TypeError(f"must be a finite number, got {value!r}")
                return number
        elif kind == "str":
            if isinstance(value, str):
                return value
        raise TypeError(f"must be {_article(kind)} ({self.allowed()}), got {type(value).__name__} {value!r}")

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is not allowed (a sentence), or ``None`` when it is fine."""
        try:
            value = self.coerce(value)
        except TypeError as exc:
            return str(exc)
        unit = f" {self.unit}" if self.unit else ""
        if self.choices is not None and value not in self.choices:
            return f"must be {self.allowed()}, got {value!r}"
        if self.minimum is not None and value < self.minimum or self.maximum is not None and value > self.maximum:
            return f"must be {self._range()}, got {_num(value)}{unit}"
        if self.pattern is not None and not re.fullmatch(self.pattern, value):
            return f"must match {self.pattern} (letters, digits, '-', '_'), got {value!r}"
        return None

    def check(self, value: Any) -> Any:
        """``value`` converted to this parameter's type, or ``ParameterError`` naming the parameter."""
        problem = self.problem(value)
        if problem:
            raise ParameterError({self.name: problem})
        return self.coerce(value)

    def parse(self, text: str) -> Any:
        """Turn command-line text into a value of this type (then use :meth:`check`)."""
        if self.type == "str":
            return text
        if self.type == "bool":
            lowered = text.strip().lower()
            if lowered in ("true", "1", "yes", "on"):
                return True
            if lowered in ("false", "0", "no", "off"):
                return False
            raise ParameterError({self.name: f"must be true or false, got {text!r}"})
        try:
            return int(text) if self.type == "int" else float(text)
        except ValueError:
            problem = f"must be {_article(self.type)} ({self.allowed()}), got {text!r}"
            raise ParameterError({self.name: problem}) from None


def _num(x: float) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


def _article(kind: str) -> str:
    return {"int": "an integer", "float": "a number", "str": "text", "bool": "true or false"}[kind]


def _is_integer_like(value: Any) -> bool:
    # numpy integers are not ``int`` subclasses; accept them without importing numpy
    return hasattr(value, "dtype") and getattr(value.dtype, "kind", "") in "iu" and getattr(value, "ndim", 0) == 0


def _is_real_like(value: Any) -> bool:
    return hasattr(value, "dtype") and getattr(value.dtype, "kind", "") in "iuf" and getattr(value, "ndim", 0) == 0

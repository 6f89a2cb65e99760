"""Edge Python kit: a smart-intersection approach on a Raspberry Pi, or simulated anywhere else.

    >>> from kit import Board
    >>> board = Board()            # real pins on a Pi, the simulated intersection elsewhere
    >>> board.car_light.green.on()

Names are imported on first use so that ``import kit`` stays light: it never pulls in boto3,
TensorFlow, moto or Flower (a test checks it).
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_LAZY = {
    "Board": "kit.board",
    "PINS": "kit.board",
    "World": "kit.sim.world",
    "Store": "kit.store",
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'kit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__

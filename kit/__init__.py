"""Edge Python kit: a smart-intersection approach on a Raspberry Pi, or simulated anywhere else.

    >>> from kit import Board
    >>> board = Board()            # real pins on a Pi, the simulated intersection elsewhere
    >>> board.car_light.green.on()

Names are imported on first use so that ``import kit`` stays light: it never pulls in boto3,
TensorFlow, moto or Flower (a test checks it).
"""

from __future__ import annotations

from kit.exports import lazy

__version__ = "0.1.0"

# public name -> module that defines it (imported on first use)
__getattr__, __dir__, _names = lazy(
    __name__,
    {
        "Board": "kit.board",
        "PINS": "kit.board",
        "World": "kit.sim.world",
        "Store": "kit.store",
        "KitError": "kit.errors",
    },
)
__all__ = [*_names, "__version__"]

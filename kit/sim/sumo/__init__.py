"""SUMO as the kit's traffic engine: the kit's junction as a SUMO scenario, its demand, and co-simulation.

An optional extra (``pip install -e '.[sumo]'``): nothing under ``kit`` imports this package unless asked,
so ``import kit`` and labs 00-08 never need SUMO. Modules: ``network`` (build the junction with
netconvert from the sources in ``scenario/``), ``demand`` (a day of vehicles and pedestrians from the
kit's seeded profile), ``junction`` (one libsumo run the controllers drive), ``cosim`` (the kit's
``World`` fed by SUMO, so the Board's pins drive SUMO's signals).

    >>> from kit.sim.sumo.junction import SumoJunction
    >>> with SumoJunction(seed=1000, start="2026-10-15T08:00:00", hours=0.1) as junction:
    ...     junction.set_lights(car="green", ped="red")
    ...     junction.run(seconds=360)
    ...     junction.results().vehicles > 0
    True
"""

from __future__ import annotations

from kit.errors import KitError


class SumoMissingError(KitError, ImportError):
    """SUMO (the ``[sumo]`` extra) is not installed."""


def require() -> None:
    """Raise :class:`SumoMissingError` with the fix when SUMO or libsumo cannot be imported."""
    try:
        import libsumo  # noqa: F401
        import sumo  # noqa: F401
    except ImportError as exc:
        raise SumoMissingError(
            f"SUMO is not installed ({exc}); install the optional extra: pip install -e '.[sumo]'"
        ) from None

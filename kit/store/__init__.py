"""Local storage for the kit: parameters, sensor readings and the cloud outbox in one SQLite file.

    >>> from kit.store import Store
    >>> store = Store(":memory:")          # Store() alone opens $KIT_HOME/kit.db (or ~/.kit/kit.db)
    >>> store.params.get("ped_green_s")
    7.0

See docs/storage.md for the tables, the time convention and the parameter table. Names are imported on
first use, so that ``kit params ...`` can register its commands without loading sqlite-utils.
"""

from __future__ import annotations

from kit.exports import lazy

# public name -> module that defines it (imported on first use)
__getattr__, __dir__, __all__ = lazy(
    __name__,
    {
        "PARAMETERS": "kit.store.defaults",
        "OutboxItem": "kit.store.outbox",
        "Parameter": "kit.store.parameter",
        "ParameterError": "kit.store.parameter",
        "Store": "kit.store.store",
        "StoreOpenError": "kit.store.db",
        "StoreDamagedError": "kit.store.db",
        "StoreMissingError": "kit.store.db",
        "StoreReadOnlyError": "kit.store.db",
        "StoreBusyError": "kit.store.db",
        "default_path": "kit.store.db",
    },
)

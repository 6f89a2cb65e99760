"""Local storage for the kit: parameters, sensor readings and the cloud outbox in one SQLite file.

    >>> from kit.store import Store
    >>> store = Store(":memory:")          # Store() alone opens $KIT_HOME/kit.db (or ~/.kit/kit.db)
    >>> store.params.get("ped_green_s")
    7.0

See docs/storage.md for the tables, the time convention and the parameter table.
"""
from __future__ import annotations

from kit.store.db import StoreOpenError, default_path
from kit.store.defaults import PARAMETERS
from kit.store.outbox import OutboxItem
from kit.store.parameter import Parameter, ParameterError
from kit.store.store import Store

__all__ = ["PARAMETERS", "OutboxItem", "Parameter", "ParameterError", "Store", "StoreOpenError", "default_path"]

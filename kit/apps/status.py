"""The running app's health, as a small JSON file that `kit status` (or any tool) can read.

A file rather than a table: it is rewritten often, must be readable while the app writes, and must
not compete with the readings for the database's write lock. It is replaced atomically (write, then
rename), so a reader never sees half a file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def default_status_path(store: Any) -> Path:
    """``status.json`` next to the store's database file (or in KIT_HOME for an in-memory store)."""
    path = getattr(store, "path", None)
    if path and str(path) != ":memory:":
        return Path(path).with_name(Path(path).stem + ".status.json")
    home = Path(os.environ.get("KIT_HOME", Path.home() / ".kit"))
    return home / "status.json"


def write_status(path: str | os.PathLike, status: dict[str, Any]) -> None:
    """Replace the status file atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(status, indent=1, default=str))
    os.replace(tmp, path)


def read_status(path: str | os.PathLike) -> dict[str, Any]:
    """The last status written; a clear error when there is none."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(
            f"no status at {path}: the intersection app has not run with this store yet "
            "(start it with 'kit run intersection', or pass --db for another store)"
        ) from None

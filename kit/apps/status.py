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


def liveness(status: dict[str, Any], *, now: float | None = None, stale_s: float = 15.0) -> str:
    """Is the app that wrote ``status`` running? From its pid and its control loop's heartbeat.

    ``"running"``, ``"stalled"`` (the process lives but the control loop has not ticked for ``stale_s``),
    ``"dead"`` (it said running but its process is gone: killed, crashed, power lost) or ``"stopped"``.

        >>> liveness({"state": "running", "pid": 2 ** 22 + 1, "heartbeat": 0.0})
        'dead'
    """
    import time

    state = status.get("state")
    pid = status.get("pid")
    if state not in ("running", "starting"):
        return str(state or "unknown")
    if not isinstance(pid, int) or not _alive(pid):
        return "dead"
    beat = status.get("heartbeat") or 0.0
    if (now if now is not None else time.time()) - float(beat) > stale_s:
        return "stalled"
    return "running"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, owned by another user (the service user)
    except OSError:
        return False
    return True

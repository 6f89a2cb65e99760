"""The device's models folder: complete, verified model files and one small state file, crash-safe.

    models/
      blobs/<sha256>.tflite      a model file, named by its digest (written to a temp name, fsynced, renamed);
                                 <sha256>.zip for a model bundle (kit.ml.ota.bundle: the fused model's parts)
      blobs/<sha256>.json        its model card
      state.json                 {"current": {...} | null, "previous": {...} | null, "events": [...]}

The rule that makes a SIGKILL at any point harmless: ``state.json`` is replaced atomically (temp file,
fsync, ``os.replace``, fsync of the folder) and only ever names blobs that were complete and verified
*before* it was written. A kill while downloading leaves a ``*.part`` file that :meth:`ModelSlots.recover`
deletes; a kill between the blob and the state leaves an unused blob; a kill after the state is written
means the new model is the current one at restart. ``current: null`` is the factory model (the one the
app is configured with), so the device always has exactly one complete model to run.

    >>> import tempfile
    >>> slots = ModelSlots(tempfile.mkdtemp())
    >>> slots.recover() is None                       # nothing delivered yet: the factory model
    True
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kit.errors import KitFileError, UsageError

MAX_EVENTS = 50
OWN_ENTRIES = {"blobs", "state.json", "state.json.tmp"}


def check_folder(folder: str | Path) -> Path:
    """``folder`` as a models folder the app may use (``kit run intersection --models DIR``), or a one-line error.

    A new or empty folder, or one this class made (``blobs/``, ``state.json``), is fine; a file, a folder the
    app can't write, or a folder of other things (the shipped models, a home folder) is refused before the
    app starts, so the updater never prunes files it did not write.

        >>> import tempfile
        >>> check_folder(tempfile.mkdtemp()).is_dir()
        True
    """
    path = Path(folder).expanduser()
    if not str(folder).strip():
        raise UsageError("--models needs a folder, e.g. --models ~/.kit/models")
    if path.exists() and not path.is_dir():
        raise UsageError(f"--models {str(folder)!r} is a file; give a folder for the models the device receives")
    if path.is_dir():
        other = sorted(p.name for p in path.iterdir() if p.name not in OWN_ENTRIES)
        if other:
            raise UsageError(
                f"--models {str(folder)!r} already holds other files ({', '.join(other[:3])}"
                f"{', ...' if len(other) > 3 else ''}); give a new or empty folder (the device keeps "
                "blobs/ and state.json there)"
            )
        if not os.access(path, os.W_OK | os.X_OK):
            raise UsageError(f"--models {str(folder)!r} is not writable by this user; give a folder it can write")
    else:
        try:
            path.mkdir(parents=True)
        except OSError as exc:
            raise UsageError(
                f"can't make the models folder {str(folder)!r} ({exc.strerror}); give a writable path"
            ) from None
    return path


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. Windows: no directory handles; the rename is still atomic
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a reader (or a restart) sees the old file or the new one, never half."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 16), b""):
            h.update(chunk)
    return h.hexdigest()


class ModelSlots:
    """A models folder on the device (see the module docstring for the layout and the crash rule)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.blobs = self.folder / "blobs"
        self.state_path = self.folder / "state.json"
        try:
            self.blobs.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise KitFileError(
                f"can't make the models folder {self.blobs} ({exc.strerror}); "
                "give the app a writable folder (next to its store)"
            ) from None

    # -- blobs ---------------------------------------------------------------------------------
    def blob(self, sha256: str) -> Path:
        """The model file of that digest: ``<sha256>.tflite``, or ``<sha256>.zip`` for a model bundle."""
        bundle = self.blobs / f"{sha256}.zip"
        return bundle if bundle.is_file() else self.blobs / f"{sha256}.tflite"

    def card(self, sha256: str) -> Path:
        return self.blobs / f"{sha256}.json"

    def has(self, sha256: str) -> bool:
        """True when the blob is there and its bytes have that digest."""
        p = self.blob(sha256)
        return p.is_file() and sha256_file(p) == sha256

    def part(self, sha256: str, suffix: str = ".tflite") -> Path:
        """Where a download in progress goes (deleted by :meth:`recover` after a crash)."""
        return self.blobs / f"{sha256}{suffix}.part"

    def write_blob(
        self, sha256: str, chunks: Iterator[bytes], card: bytes | None = None, *, suffix: str = ".tflite"
    ) -> Path:
        """Stream ``chunks`` to a ``.part`` file, check the digest, fsync, rename into place; the blob's path.

        ``suffix`` is ``.zip`` for a model bundle. A digest that differs raises ``KitFileError`` and keeps nothing.
        """
        if suffix not in (".tflite", ".zip"):
            raise KitFileError(f"a model file is .tflite or .zip, not {suffix!r}")
        part = self.part(sha256, suffix)
        h = hashlib.sha256()
        with open(part, "wb") as f:
            for chunk in chunks:
                h.update(chunk)
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        if h.hexdigest() != sha256:
            part.unlink(missing_ok=True)
            raise KitFileError(
                f"downloaded model has sha256 {h.hexdigest()[:16]}..., expected {sha256[:16]}...: "
                "the object was changed or damaged; deploy it again"
            )
        if card is not None:
            atomic_write(self.card(sha256), card)
        final = self.blobs / f"{sha256}{suffix}"
        os.replace(part, final)
        _fsync_dir(self.blobs)
        return final

    # -- state ---------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """The committed state (``current``/``previous`` entries ``{version, sha256}`` or null, ``events``)."""
        try:
            state = json.loads(self.state_path.read_text())
        except FileNotFoundError:
            return {"current": None, "previous": None, "events": []}
        except (OSError, ValueError) as exc:
            # cannot happen through this class (atomic replace); a hand edit or a bad disk can do it
            return {
                "current": None,
                "previous": None,
                "events": [
                    {"ts": time.time(), "event": "state-unreadable", "reason": f"{type(exc).__name__}: {exc}"[:200]}
                ],
            }
        state.setdefault("current", None)
        state.setdefault("previous", None)
        state.setdefault("events", [])
        return state

    def commit(
        self, current: dict[str, Any] | None, previous: dict[str, Any] | None, event: str, reason: str = ""
    ) -> dict[str, Any]:
        """Make ``current`` the model to run from now on (and after any restart); record why."""
        for entry in (current, previous):
            if entry is not None and not self.blob(entry["sha256"]).is_file():
                raise KitFileError(
                    f"refusing to commit model {entry['sha256'][:12]}...: its file is not in {self.blobs}"
                )
        state = self.state()
        events = (state.get("events") or [])[-(MAX_EVENTS - 1) :]
        events.append(
            {
                "ts": round(time.time(), 3),
                "event": event,
                "reason": reason,
                "version": current["version"] if current else "factory",
            }
        )
        new = {"current": current, "previous": previous, "events": events}
        atomic_write(self.state_path, (json.dumps(new, indent=1, sort_keys=True) + "\n").encode())
        return new

    def note(self, event: str, reason: str = "", **extra: Any) -> None:
        """Record an event (a rejected candidate, ...) without changing which model runs."""
        state = self.state()
        events = (state.get("events") or [])[-(MAX_EVENTS - 1) :]
        events.append({"ts": round(time.time(), 3), "event": event, "reason": reason, **extra})
        state["events"] = events
        atomic_write(self.state_path, (json.dumps(state, indent=1, sort_keys=True) + "\n").encode())

    def recover(self) -> dict[str, Any] | None:
        """After a start or a crash: delete half-written files; the entry to run (``None``: the factory model).

        A current blob that is missing or damaged (a bad disk) falls back to the previous one, then to the
        factory model, and the fallback is committed with its reason.
        """
        for leftover in (
            list(self.blobs.glob("*.part")) + list(self.folder.glob(".*.tmp")) + list(self.blobs.glob(".*.tmp"))
        ):
            leftover.unlink(missing_ok=True)
        state = self.state()
        for which in ("current", "previous"):
            entry = state.get(which)
            if entry is None:
                if which == "current":
                    return None
                continue
            if self.has(entry["sha256"]):
                if which == "previous":
                    self.commit(entry, None, "recovered", "the current model's file was missing or damaged")
                return entry
        self.commit(None, None, "recovered", "no complete delivered model on disk: the factory model runs")
        return None

    def prune(self, keep: set[str]) -> None:
        """Delete blobs other than ``keep`` (the current and previous models)."""
        for p in [*self.blobs.glob("*.tflite"), *self.blobs.glob("*.zip")]:
            if p.stem not in keep:
                p.unlink(missing_ok=True)
                self.card(p.stem).unlink(missing_ok=True)
                (self.blobs / f"{p.stem}.uploads.npz").unlink(missing_ok=True)  # the app's drift sample for it

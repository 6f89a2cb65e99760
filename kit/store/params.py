"""Parameters that survive a reboot: validated against their declaration, every change kept in a history.

Tables: ``parameters`` (one row per declared parameter: current value, where it came from, when) and
``parameter_history`` (old -> new, source, time). A row whose ``source`` is ``'default'`` has never
been changed; it follows the kit's default if a newer kit changes it.
"""

from __future__ import annotations

import difflib
import json
import time
from collections.abc import Mapping
from typing import Any

import sqlite_utils

from kit.store.db import Transaction
from kit.store.defaults import PARAMETERS, RULES
from kit.store.parameter import SOURCES, Parameter, ParameterError


class Params:
    """The kit's parameters, stored in the ``parameters`` table. Reach it as ``store.params``.

    >>> from kit.store import Store
    >>> store = Store(":memory:")
    >>> store.params.get("car_green_s")
    20.0
    >>> store.params.set("car_green_s", 25, source="lab")
    25.0
    >>> store.params.validate({"car_amber_s": 60})
    {'car_amber_s': 'must be between 3 and 6 s, got 60 s'}
    >>> [(h["old"], h["new"], h["source"]) for h in store.params.history("car_green_s")]
    [(20.0, 25.0, 'lab')]
    """

    def __init__(
        self,
        db: sqlite_utils.Database,
        transaction: Transaction,
        schema: Mapping[str, Parameter] = PARAMETERS,
        *,
        sync_defaults: bool = True,
    ):
        self._db = db
        self._transaction = transaction
        self.schema: Mapping[str, Parameter] = schema
        self._listeners: list[Any] = []
        if sync_defaults:  # False for a read-only store: reading never writes
            self._sync_defaults()

    # -- reading ------------------------------------------------------------------------------------------
    def get(self, name: str) -> Any:
        """The current value of parameter ``name`` (its default if never set)."""
        spec = self._spec(name)
        with self._transaction.lock:
            row = self._db.execute("SELECT value FROM parameters WHERE name = ?", [name]).fetchone()
        return spec.default if row is None else _from_db(spec, row[0])

    def all(self) -> dict[str, Any]:
        """Every parameter's current value, in declaration order."""
        with self._transaction.lock:
            stored = dict(self._db.execute("SELECT name, value FROM parameters").fetchall())
        return {n: _from_db(p, stored[n]) if n in stored else p.default for n, p in self.schema.items()}

    def sources(self) -> dict[str, str]:
        """Where each parameter's current value came from: 'default', 'local', 'cloud' or 'lab'."""
        with self._transaction.lock:
            stored = dict(self._db.execute("SELECT name, source FROM parameters").fetchall())
        return {n: stored.get(n, "default") for n in self.schema}

    def history(self, name: str | None = None, *, limit: int | None = None) -> list[dict[str, Any]]:
        """Changes oldest first (the last ``limit`` of them): dicts with id, name, old, new, source, ts."""
        if name is not None:
            self._spec(name)
        sql = "SELECT id, name, old_value, new_value, source, ts FROM parameter_history"
        args: list[Any] = []
        if name is not None:
            sql += " WHERE name = ?"
            args.append(name)
        sql += " ORDER BY id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(int(limit))
        with self._transaction.lock:
            rows = self._db.execute(sql, args).fetchall()
        out = []
        for id_, n, old, new, source, ts in reversed(rows):
            spec = self.schema.get(n)
            convert = (lambda v: v if v is None else _from_db(spec, v)) if spec else (lambda v: v)
            out.append({"id": id_, "name": n, "old": convert(old), "new": convert(new), "source": source, "ts": ts})
        return out

    def validate(self, changes: Mapping[str, Any]) -> dict[str, str]:
        """Why each of ``changes`` would be refused, by name (empty dict: all fine). Writes nothing."""
        if not isinstance(changes, Mapping):
            return {"(changes)": f"must be a mapping of parameter name to value, got {type(changes).__name__}"}
        problems: dict[str, str] = {}
        for name, value in changes.items():
            spec = self.schema.get(name) if isinstance(name, str) else None
            if spec is None:
                problems[str(name)] = self._unknown(name)
            else:
                problem = spec.problem(value)
                if problem:
                    problems[name] = problem
        if problems:
            return problems
        merged = {**self.all(), **{n: self.schema[n].coerce(v) for n, v in changes.items()}}
        for names, ok, message in RULES:
            if all(n in merged for n in names) and not ok(merged):
                culprit = next((n for n in names if n in changes), names[0])
                values = ", ".join(f"{n}={merged[n]!r}" for n in names)
                problems[culprit] = f"{message} (now {values})"
        return problems

    # -- writing ------------------------------------------------------------------------------------------
    def set(self, name: str, value: Any, source: str = "local") -> Any:
        """Validate and store one parameter; returns the stored value. Raises ``ParameterError``."""
        return self.update({name: value}, source=source).get(name, self.get(name))

    def update(self, changes: Mapping[str, Any], source: str = "local") -> dict[str, Any]:
        """Set several parameters at once: all of them or none (one transaction).

        Returns the parameters that actually changed, with their new values. Raises ``ParameterError``
        (naming each bad parameter and its allowed values) without changing anything.
        """
        _check_source(source)
        with self._transaction():
            problems = self.validate(changes)
            if problems:
                raise ParameterError(problems)
            current = self.all()
            changed = {}
            now = time.time()
            for name, value in changes.items():
                new = self.schema[name].coerce(value)
                if new != current[name] or type(new) is not type(current[name]):
                    self._write(name, current[name], new, source, now)
                    changed[name] = new
        self._notify(changed)
        return changed

    def reset(self, name: str | None = None, source: str = "local") -> dict[str, Any]:
        """Put one parameter (or all of them) back to the default; returns what changed."""
        _check_source(source)
        names = list(self.schema) if name is None else [self._spec(name).name]
        with self._transaction():
            current = self.all()
            now = time.time()
            changed = {}
            for n in names:
                default = self.schema[n].default
                if current[n] != default:
                    self._write(n, current[n], default, source, now, stored_source="default")
                    changed[n] = default
                else:
                    self._db.execute("UPDATE parameters SET source = 'default' WHERE name = ?", [n])
        self._notify(changed)
        return changed

    def export_json(self) -> str:
        """All current values as a JSON object ``{name: value}`` (declaration order)."""
        return json.dumps(self.all(), indent=2) + "\n"

    def import_json(self, text: str | bytes, source: str = "local") -> dict[str, Any]:
        """Set parameters from a JSON object ``{name: value}``: all or nothing, like :meth:`update`.

        Malformed JSON, a JSON value that is not an object, or any bad parameter raises
        ``ParameterError`` and changes nothing. Returns what changed.
        """
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            where = f" at line {exc.lineno} column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
            raise ParameterError(
                {
                    "(JSON)": f"not valid JSON{where}: {getattr(exc, 'msg', exc)}; expected an object "
                    'like {"car_green_s": 25}'
                }
            ) from None
        if not isinstance(data, dict):
            raise ParameterError(
                {"(JSON)": f'expected an object like {{"car_green_s": 25}}, got a JSON {type(data).__name__}'}
            )
        return self.update(data, source=source)

    def watch(self, listener: Any) -> None:
        """Call ``listener(changed)`` after each committed change made through this object (in its thread)."""
        self._listeners.append(listener)

    def unwatch(self, listener: Any) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def live(self) -> LiveParams:
        """An in-memory view that follows this store's changes: what a control loop reads (no I/O)."""
        return LiveParams(self)

    # -- internals ----------------------------------------------------------------------------------------
    def _notify(self, changed: dict[str, Any]) -> None:
        if changed:
            for listener in list(self._listeners):
                listener(dict(changed))

    def _spec(self, name: str) -> Parameter:
        spec = self.schema.get(name) if isinstance(name, str) else None
        if spec is None:
            raise ParameterError({str(name): self._unknown(name)})
        return spec

    def _unknown(self, name: Any) -> str:
        close = difflib.get_close_matches(str(name), self.schema, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        return f"unknown parameter{hint}; known parameters: {', '.join(self.schema)}"

    def _write(self, name: str, old: Any, new: Any, source: str, now: float, stored_source: str | None = None) -> None:
        conn = self._db.conn
        conn.execute(
            "INSERT INTO parameters (name, value, source, updated_ts) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(name) DO UPDATE SET value = excluded.value, source = excluded.source, "
            "updated_ts = excluded.updated_ts",
            [name, new, stored_source or source, now],
        )
        conn.execute(
            "INSERT INTO parameter_history (name, old_value, new_value, source, ts) VALUES (?, ?, ?, ?, ?)",
            [name, old, new, source, now],
        )

    def _sync_defaults(self) -> None:
        """Give every declared parameter a row (so the file reads well without the kit); follow new defaults."""
        with self._transaction.lock:
            rows = {n: (v, s) for n, v, s in self._db.execute("SELECT name, value, source FROM parameters")}
        stale = [
            n
            for n, p in self.schema.items()
            if n not in rows or rows[n][1] == "default" and _from_db(p, rows[n][0]) != p.default
        ]
        if not stale:
            return
        with self._transaction() as conn:
            now = time.time()
            for n in stale:
                conn.execute(
                    "INSERT INTO parameters (name, value, source, updated_ts) VALUES (?, ?, 'default', ?) "
                    "ON CONFLICT(name) DO UPDATE SET value = excluded.value, updated_ts = excluded.updated_ts "
                    "WHERE parameters.source = 'default'",
                    [n, self.schema[n].default, now],
                )


def _from_db(spec: Parameter, value: Any) -> Any:
    if spec.type == "bool":
        return bool(value)
    if spec.type == "float" and isinstance(value, int):
        return float(value)
    return value


def _check_source(source: str) -> None:
    if source not in SOURCES:
        raise ValueError(f"source must be one of {', '.join(SOURCES)}, got {source!r}")


class LiveParams:
    """The parameters as a control loop reads them: from memory, never waiting for the database.

    A change made through the same :class:`Params` (``kit params`` in a notebook, the shadow) arrives at
    once; a change another process wrote to the file (``kit params set`` while the app runs) arrives at the
    next :meth:`refresh`, which the app calls from its housekeeping thread, never from the control loop.
    ``version`` grows with every change, so a reader can tell cheaply whether anything is new.

        >>> from kit.store import Store
        >>> store = Store(":memory:")
        >>> live = store.params.live()
        >>> live["car_green_s"]
        20.0
        >>> _ = store.params.set("car_green_s", 25)
        >>> live["car_green_s"], live.version
        (25.0, 1)
    """

    def __init__(self, params: Params) -> None:
        self._params = params
        self._values = params.all()
        self.version = 0
        params.watch(self._changed)

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def get(self, name: str, default: Any = None) -> Any:
        return self._values.get(name, default)

    def all(self) -> dict[str, Any]:
        """A copy of every current value."""
        return dict(self._values)

    def refresh(self) -> dict[str, Any]:
        """Re-read the database (changes from other processes); returns what changed. Call it off the control loop."""
        fresh = self._params.all()
        changed = {k: v for k, v in fresh.items() if self._values.get(k) != v}
        if changed:
            self._changed(changed)
        return changed

    def close(self) -> None:
        self._params.unwatch(self._changed)

    def _changed(self, changed: dict[str, Any]) -> None:
        # Replace the dict as a whole: a reader in another thread sees the old set or the new one.
        self._values = {**self._values, **changed}
        self.version += 1

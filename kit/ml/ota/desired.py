"""What the cloud asks a device to run: the shadow's ``desired.model`` as a typed, checked value.

    >>> spec = DesiredModel.from_dict({"version": "road-works-1", "sha256": "ab" * 32,
    ...                                "key": "models/sha256/" + "ab" * 32 + ".tflite", "min_kit": "0.1.0"})
    >>> spec.card_key
    'models/sha256/abababababababababababababababababababababababababababababababab.json'
    >>> try:
    ...     DesiredModel.from_dict({"version": "x"})
    ... except DeployError as exc:
    ...     print(exc)
    desired.model lacks key, sha256: deploy with `kit model deploy MODEL --device ID`

The file lives at a content-addressed key (its sha256 in the name), so a key can never point at other
bytes than the digest says, and deploying the same file twice uploads nothing new.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from kit.errors import UsageError

KEY_PREFIX = "models/sha256/"
_SHA = re.compile(r"^[0-9a-f]{64}$")
_VERSION = re.compile(r"^[A-Za-z0-9._+-]{1,64}$")


class DeployError(UsageError):
    """A deployment request (a model to deploy, or a shadow's ``desired.model``) is not acceptable."""


SUFFIXES = (".tflite", ".zip")  # a one-piece model; a model bundle (kit.ml.ota.bundle: the fused model's parts)


def model_key(sha256: str, suffix: str = ".tflite") -> str:
    """The content-addressed S3 key of a model file (``.zip`` for a model bundle)."""
    if suffix not in SUFFIXES:
        raise DeployError(f"a model file is {' or '.join(SUFFIXES)}, not {suffix!r}")
    return f"{KEY_PREFIX}{sha256}{suffix}"


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = []
    for p in str(text).split("."):
        digits = re.match(r"\d+", p)
        parts.append(int(digits.group()) if digits else 0)
    return tuple(parts)


def kit_at_least(running: str, minimum: str) -> bool:
    """True when kit version ``running`` is ``minimum`` or later (numeric, dot by dot).

    >>> kit_at_least("0.10.0", "0.9"), kit_at_least("0.1.0", "0.2")
    (True, False)
    """
    return _version_tuple(running) >= _version_tuple(minimum)


@dataclass(frozen=True)
class DesiredModel:
    """One model a device should run: a version label, its S3 key, its sha256 and the oldest kit that runs it."""

    version: str
    key: str
    sha256: str
    min_kit: str = "0.0.0"

    @property
    def suffix(self) -> str:
        """``.tflite`` for a one-piece model, ``.zip`` for a model bundle."""
        return self.key[self.key.rindex(".") :]

    @property
    def card_key(self) -> str:
        """The model card sits beside the model: same key, ``.json``."""
        return self.key[: -len(self.suffix)] + ".json"

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Any) -> DesiredModel:
        """Check a ``desired.model`` object; ``DeployError`` says what is wrong and how to deploy properly."""
        if not isinstance(d, Mapping):
            raise DeployError(
                f"desired.model must be an object {{version, key, sha256, min_kit}}, got a JSON "
                f"{type(d).__name__}: deploy with `kit model deploy MODEL --device ID`"
            )
        missing = [k for k in ("version", "key", "sha256") if not isinstance(d.get(k), str) or not d.get(k)]
        if missing:
            raise DeployError(
                f"desired.model lacks {', '.join(missing)}: deploy with `kit model deploy MODEL --device ID`"
            )
        sha, key, version = d["sha256"].lower(), d["key"], d["version"]
        min_kit = d.get("min_kit") or "0.0.0"
        if not _SHA.match(sha):
            raise DeployError(f"desired.model.sha256 must be 64 hex digits, got {sha[:80]!r}")
        if key not in {model_key(sha, suffix) for suffix in SUFFIXES}:
            raise DeployError(
                f"desired.model.key must be {model_key(sha)!r} or its .zip (content-addressed), got {key[:120]!r}"
            )
        if not _VERSION.match(version):
            raise DeployError(f"desired.model.version must be 1-64 letters, digits or ._+-, got {version[:80]!r}")
        if not isinstance(min_kit, str) or not re.match(r"^\d+(\.\d+){0,3}$", min_kit):
            raise DeployError(f"desired.model.min_kit must be a version like 0.1.0, got {str(min_kit)[:40]!r}")
        return cls(version=version, key=key, sha256=sha, min_kit=min_kit)

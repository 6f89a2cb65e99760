"""A model of several files (the fused early-exit pair) as one deliverable file: a model bundle.

Over the air a model is one object named by its sha256 (:mod:`kit.ml.ota.desired`), so that a key can
never point at other bytes and a device commits one complete file (:mod:`kit.ml.ota.slots`). The fused
model (:mod:`kit.ml.fusion`) is two ``.tflite`` parts and a card; the bundle puts them in one ZIP file:

    card.json               the folder's model card (lists each part's sha256)
    stem_int8.tflite        the parts of one variant (int8 by default: what the device runs)
    rest_int8.tflite
    stream_reference.json   the drift reference, when the folder has one

Stored, not compressed (a ``.tflite`` barely compresses), with fixed timestamps and sorted names, so the
same folder always gives the same bytes and deploying it twice uploads nothing new. The device never
unpacks it: the parts are read into memory, each checked against the card, and loaded from their bytes.

    >>> from kit.ml import MODELS_DIR
    >>> data = pack(MODELS_DIR / "fusion")
    >>> data == pack(MODELS_DIR / "fusion"), is_bundle(data)
    (True, True)
    >>> host = load(data)
    >>> host.stem.quantized, round(host.threshold, 2)
    (True, 0.95)

A file from elsewhere is untrusted until checked: only the names above, stored members, a few MiB each;
anything else is refused with the reason (``BundleError``).
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path
from typing import Any

from kit.errors import KitFileError

CARD = "card.json"
REFERENCE = "stream_reference.json"
SUFFIX = ".zip"
MAX_MEMBER_BYTES = 16 << 20  # a part of a model that fits a Pi's camera loop is far smaller
_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest a ZIP can say: the bytes do not depend on when it was packed


class BundleError(KitFileError, ValueError):
    """A model bundle (or the folder to pack) is not a complete, consistent fused model (the reason is named)."""


def _parts() -> dict[str, tuple[str, str]]:
    from kit.ml.fusion import PART_FILES

    return PART_FILES


def is_bundle(content: bytes) -> bool:
    """True for the bytes of a ZIP file (a ``.tflite`` starts with its FlatBuffer header, ``TFL3`` at 4..8)."""
    return content[:4] == b"PK\x03\x04"


def pack(folder: str | Path, *, variant: str | None = None) -> bytes:
    """The bundle of the fused model in ``folder`` (card.json + the ``variant``'s two parts), as bytes.

    ``variant`` None takes the int8 parts (what the app runs) when the folder has them, else the float32 ones."""
    folder = Path(folder)
    parts = _parts()
    if variant is None:
        variant = "int8" if all((folder / n).is_file() for n in parts["int8"]) else "float32"
    if variant not in parts:
        raise BundleError(f"variant must be one of {sorted(parts)}, got {variant!r}")
    try:
        card_raw = (folder / CARD).read_bytes()
        card = json.loads(card_raw)
    except FileNotFoundError:
        raise BundleError(
            f"{folder} has no {CARD}: a fused model folder holds its card beside its parts (bench/fusion.py --ship)"
        ) from None
    except ValueError as exc:
        raise BundleError(f"{folder / CARD} is not JSON ({exc}); rewrite the card") from None
    names = [*parts[variant], *([REFERENCE] if (folder / REFERENCE).is_file() else [])]
    members = {CARD: card_raw}
    for name in names:
        try:
            members[name] = (folder / name).read_bytes()
        except FileNotFoundError:
            raise BundleError(f"{folder} has no {name}: not a complete fused model ({variant} parts)") from None
    _check_parts(card, members, variant, where=str(folder))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as z:
        for name in sorted(members):
            info = zipfile.ZipInfo(name, date_time=_DATE)
            info.external_attr = 0o644 << 16
            z.writestr(info, members[name])
    return buf.getvalue()


def _check_parts(card: Any, members: dict[str, bytes], variant: str, *, where: str) -> None:
    listed = card.get("sha256") if isinstance(card, dict) else None
    if not isinstance(listed, dict):
        raise BundleError(f"the card of {where} lists no sha256 per file; rewrite it (kit.ml.card.ModelCard)")
    for name in _parts()[variant]:
        digest = hashlib.sha256(members[name]).hexdigest()
        if listed.get(name) != digest:
            raise BundleError(
                f"{name} in {where} has sha256 {digest[:12]}... but its card lists "
                f"{str(listed.get(name))[:12] + '...' if listed.get(name) else 'nothing'}: the card is stale or "
                "the file was changed"
            )


def read(content: bytes, where: str = "the bundle") -> tuple[dict[str, Any], dict[str, bytes], str]:
    """(card, members, variant) of a bundle's bytes, every limit and every part's digest checked."""
    allowed = {CARD, REFERENCE, *(n for pair in _parts().values() for n in pair)}
    try:
        z = zipfile.ZipFile(io.BytesIO(content))
        infos = z.infolist()
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise BundleError(f"{where} is not a readable model bundle ({exc})") from None
    members: dict[str, bytes] = {}
    for info in infos:
        if info.filename not in allowed:
            raise BundleError(f"{where} holds {info.filename[:80]!r}, which is no part of a fused model")
        if info.filename in members:
            raise BundleError(f"{where} holds {info.filename!r} twice")
        if info.compress_type != zipfile.ZIP_STORED:
            raise BundleError(f"{where} compresses {info.filename!r}; a model bundle stores its files (kit's pack)")
        if info.file_size > MAX_MEMBER_BYTES:
            raise BundleError(f"{where} says {info.filename!r} is {info.file_size} bytes; a part may be at most 16 MiB")
        try:
            members[info.filename] = z.read(info)
        except (zipfile.BadZipFile, ValueError, OSError) as exc:  # a CRC that differs, a truncated member
            raise BundleError(f"{where}: {info.filename!r} can't be read ({exc})") from None
    if CARD not in members:
        raise BundleError(f"{where} has no {CARD}")
    try:
        card = json.loads(members[CARD])
    except ValueError as exc:
        raise BundleError(f"{where}: its {CARD} is not JSON ({exc})") from None
    have = [v for v, pair in _parts().items() if all(n in members for n in pair)]
    if len(have) != 1:
        raise BundleError(
            f"{where} must hold the two parts of one variant (int8 or float32); it holds {sorted(members)}"
        )
    _check_parts(card, members, have[0], where=where)
    return card, members, have[0]


def load(content: bytes, *, where: str = "the bundle", num_threads: int = 1) -> Any:
    """A ``kit.ml.fusion.FusedHost`` for a bundle's bytes, loaded from memory (the card's exit threshold)."""
    from kit.ml.fusion import FusedHost
    from kit.ml.host import ModelHost

    card, members, variant = read(content, where)
    stem_name, rest_name = _parts()[variant]
    stem = ModelHost(Path(where) / stem_name, content=members[stem_name], num_threads=num_threads)
    rest = ModelHost(Path(where) / rest_name, content=members[rest_name], num_threads=num_threads)
    threshold = (card.get("details") or {}).get("threshold", 0.95)
    host = FusedHost(stem, rest, threshold=float(threshold), num_threads=num_threads)
    host.path = Path(where)
    host.card = card
    return host

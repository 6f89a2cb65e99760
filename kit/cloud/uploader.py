"""Outbox batches to S3: gzipped JSON lines under deterministic, idempotent keys.

A batch of outbox items becomes one object per (kind, UTC date)::

    readings/kit-0001/2026-10-15/000000000042.jsonl.gz

The last part is the outbox id of the batch's first item. Outbox ids are never reused and the
outbox hands out the oldest items first, so sending the same batch again (after a crash between
the upload and the acknowledgement, or a lost response) writes the same key and replaces the
object: S3 never holds a reading twice. The gzip header carries no timestamp, so the same batch
always gives the same bytes (and the same ETag).

Each line is one JSON object, keys sorted: the item's payload plus ``outbox_id``.

    >>> from kit.cloud.uploader import encode, decode
    >>> decode(encode([{"outbox_id": 1, "sensor": "distance", "value": 3.5, "ts": 0.0}]))
    [{'outbox_id': 1, 'sensor': 'distance', 'ts': 0.0, 'value': 3.5}]

An object *is* a gzip file (``Content-Type: application/gzip``, no ``Content-Encoding``): boto3, the
AWS CLI, ``curl --compressed`` and ``requests`` all hand back the same gzip bytes, so a downloaded
``.jsonl.gz`` always gunzips. (With ``Content-Encoding: gzip`` HTTP clients that decompress for you
saved plain JSON lines under a ``.gz`` name.)
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

UNDATED = "undated"
CONTENT_TYPE = "application/gzip"  # the object is a .gz file; see the module docstring


def encode(rows: Iterable[dict[str, Any]]) -> bytes:
    """Rows as gzipped JSON lines (deterministic: no time in the gzip header)."""
    text = "".join(json.dumps(r, separators=(",", ":"), sort_keys=True) + "\n" for r in rows)
    return gzip.compress(text.encode(), compresslevel=6, mtime=0)


def decode(body: bytes) -> list[dict[str, Any]]:
    """The rows of a ``.jsonl.gz`` object."""
    return [json.loads(line) for line in gzip.decompress(body).decode().splitlines() if line]


def utc_date(ts: Any) -> str:
    """``YYYY-MM-DD`` (UTC) of an epoch-seconds time, or ``undated``."""
    if isinstance(ts, (int, float)) and not isinstance(ts, bool):
        return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d")
    return UNDATED


def _field(item: Any, name: str) -> Any:
    return item[name] if isinstance(item, dict) else getattr(item, name)


@dataclass(frozen=True)
class Upload:
    """One object written: its key, the outbox ids it holds and its size in bytes."""

    key: str
    ids: tuple[int, ...]
    bytes: int


class Uploader:
    """Writes outbox items to ``s3://bucket/<kind>s/<device>/<date>/<first id>.jsonl.gz``.

    >>> import kit.cloud
    >>> from kit.cloud.uploader import Uploader
    >>> with kit.cloud.LocalCloud() as cloud:
    ...     up = Uploader(device_id="kit-0001").ensure_bucket()
    ...     [u.key for u in up.upload([{"id": 7, "kind": "reading", "payload": {"sensor": "pot", "value": 0.5, "ts": 0}}])]
    ['readings/kit-0001/1970-01-01/000000000007.jsonl.gz']
    """

    def __init__(self, *, s3: Any = None, bucket: str | None = None, device_id: str | None = None) -> None:
        from kit.cloud import config

        cfg = config.current()
        self.s3 = s3 if s3 is not None else config.client("s3", cfg)
        self.bucket = bucket or cfg.bucket
        self.device_id = device_id or cfg.device_id
        if not self.device_id or "/" in self.device_id:
            raise ValueError(f"device id {self.device_id!r} cannot be part of an S3 key; use letters, digits, '-', '_'")

    def ensure_bucket(self) -> Uploader:
        """Create the bucket if it does not exist (a provisioning step; devices on AWS may not be allowed to)."""
        from botocore.exceptions import ClientError

        try:
            self.s3.head_bucket(Bucket=self.bucket)
        except ClientError:
            region = self.s3.meta.region_name
            kwargs: dict[str, Any] = {"Bucket": self.bucket}
            if region and region != "us-east-1":
                kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
            self.s3.create_bucket(**kwargs)
        return self

    def key(self, kind: str, date: str, first_id: int) -> str:
        """The object key for a group of items of ``kind`` on ``date`` starting at outbox id ``first_id``."""
        return f"{kind}s/{self.device_id}/{date}/{int(first_id):012d}.jsonl.gz"

    def group(self, items: Sequence[Any]) -> dict[str, list[dict[str, Any]]]:
        """Items as rows, grouped by destination key (oldest id first)."""
        groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for item in sorted(items, key=lambda i: _field(i, "id")):
            payload = dict(_field(item, "payload"))
            row = {"outbox_id": int(_field(item, "id")), **payload}
            groups.setdefault((_field(item, "kind"), utc_date(payload.get("ts"))), []).append(row)
        return {self.key(kind, date, rows[0]["outbox_id"]): rows for (kind, date), rows in groups.items()}

    def upload(self, items: Sequence[Any]) -> list[Upload]:
        """Write ``items`` (outbox items, or dicts with ``id``, ``kind``, ``payload``); one PUT per key."""
        done = []
        for key, rows in self.group(items).items():
            body = encode(rows)
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=CONTENT_TYPE)
            done.append(Upload(key, tuple(r["outbox_id"] for r in rows), len(body)))
        return done

    # reading back (the "cloud side") ---------------------------------------------------------
    def keys(self, kind: str = "reading") -> list[str]:
        """Every object key of this device for ``kind``, in order."""
        pages = self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=f"{kind}s/{self.device_id}/"
        )
        return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))

    def read(self, key: str) -> list[dict[str, Any]]:
        """The rows of one object."""
        return decode(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())

    def read_all(self, kind: str = "reading") -> list[dict[str, Any]]:
        """Every row this device uploaded for ``kind`` (one GET per object)."""
        return [row for key in self.keys(kind) for row in self.read(key)]

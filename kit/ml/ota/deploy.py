"""The operator's side: put a model and its card in S3 under its digest and ask a device to run it.

    >>> from kit.ml.ota.deploy import deploy
    >>> spec = deploy("kit/models/intersection.tflite", device="kit-0001")     # doctest: +SKIP
    >>> spec.key                                                                # doctest: +SKIP
    'models/sha256/3f1c....tflite'

What it does, on AWS and on the local endpoint alike:

1. reads the ``.tflite`` (a whole TFLite model, ``kit.ml.tflite.read``) and its model card (``NAME.json``
   beside it, or ``card.json`` in its folder), which must list the file's sha256; a fused model's folder
   (``kit/models/fusion``: two parts and a card) becomes one bundle file (:mod:`kit.ml.ota.bundle`);
2. uploads both to ``s3://BUCKET/models/sha256/<digest>.tflite`` (``.zip`` for a bundle) / ``.json``
   (skipped when already there: the key names the bytes);
3. sets the thing's shadow ``desired.model = {version, key, sha256, min_kit}``; the device's updater
   takes it from there (:mod:`kit.ml.ota.updater`) and reports ``reported.model``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from kit.ml.ota.desired import DeployError, DesiredModel, model_key


def _card_for(path: Path) -> tuple[dict[str, Any], bytes]:
    for candidate in (path.with_suffix(".json"), path.parent / "card.json"):
        if candidate.is_file():
            raw = candidate.read_bytes()
            try:
                return json.loads(raw), raw
            except ValueError as exc:
                raise DeployError(f"{candidate} is not a model card (bad JSON: {exc}); fix or rewrite it") from None
    raise DeployError(
        f"{path} has no model card ({path.with_suffix('.json').name} beside it); the device checks "
        "the model against its card: write one (kit.ml.card.ModelCard) and deploy again"
    )


def resolve(model: str | Path) -> Path:
    """A ``.tflite`` path, a fused model's folder, or the name of a shipped model (``fusion`` is a folder)."""
    p = Path(model)
    if p.suffix == ".tflite" or p.exists():
        return p
    from kit.ml import MODELS_DIR, shipped_model

    if str(model) and (MODELS_DIR / str(model) / "card.json").is_file():
        return MODELS_DIR / str(model)
    try:
        return shipped_model(str(model))
    except FileNotFoundError as exc:
        raise DeployError(f"{exc}; or the folder of a fused model (card.json, stem/rest parts)") from None


def read_model(path: Path, variant: str | None = None) -> tuple[bytes, str, dict[str, Any], bytes]:
    """(the file to deliver, its suffix, its card, the card's bytes) for a ``.tflite`` or a fused model's folder
    (delivered as its bundle, :mod:`kit.ml.ota.bundle`, with the ``variant``'s parts)."""
    from kit.ml import tflite

    if path.is_dir():
        from kit.ml.ota import bundle

        try:
            content = bundle.pack(path, variant=variant)
        except bundle.BundleError as exc:
            raise DeployError(str(exc)) from None
        raw = (path / bundle.CARD).read_bytes()
        return content, bundle.SUFFIX, json.loads(raw), raw
    try:
        content = tflite.read(path)
    except (FileNotFoundError, ValueError) as exc:
        raise DeployError(str(exc)) from None
    sha = hashlib.sha256(content).hexdigest()
    card, card_raw = _card_for(path)
    listed = card.get("sha256")
    digests = set(listed.values()) if isinstance(listed, dict) else {listed}
    if sha not in digests:
        raise DeployError(
            f"{path.name} has sha256 {sha[:12]}... but its card {path.with_suffix('.json').name} "
            "lists another file: the card is stale; rewrite it for this file"
        )
    return content, ".tflite", card, card_raw


def deploy(
    model: str | Path,
    device: str,
    *,
    version: str | None = None,
    min_kit: str | None = None,
    bucket: str | None = None,
    s3: Any = None,
    iot_data: Any = None,
    variant: str | None = None,
) -> DesiredModel:
    """Upload ``model`` (and its card) and set ``device``'s ``desired.model``; the request as sent.

    ``model`` is a ``.tflite`` with its card, a fused model's folder (sent as one bundle holding the card and
    the ``variant``'s two parts: ``int8``, what the app runs and the default when the folder has them, or
    ``float32``) or a shipped model's name."""
    import kit

    path = resolve(model)
    if not isinstance(device, str) or not device.strip():
        raise DeployError("--device must name a thing, e.g. --device kit-0001")
    content, suffix, card, card_raw = read_model(path, variant)
    sha = hashlib.sha256(content).hexdigest()
    spec = DesiredModel.from_dict(
        {
            "version": version or f"{card.get('name', path.stem)}-{sha[:12]}",
            "key": model_key(sha, suffix),
            "sha256": sha,
            "min_kit": min_kit or kit.__version__,
        }
    )
    from kit.cloud.config import client, current

    cfg = current()
    bucket = bucket or cfg.bucket
    s3 = s3 or client("s3")
    iot_data = iot_data or client("iot-data")
    _ensure_bucket(s3, bucket, cfg.local)
    if not _exists(s3, bucket, spec.key):
        s3.put_object(Bucket=bucket, Key=spec.card_key, Body=card_raw, ContentType="application/json")
        # the model last: a device that sees the model key also finds its card
        s3.put_object(
            Bucket=bucket,
            Key=spec.key,
            Body=content,
            ContentType="application/zip" if suffix == ".zip" else "application/octet-stream",
            Metadata={"sha256": sha},
        )
    if cfg.local:
        iot = client("iot")
        try:
            iot.create_thing(thingName=device)
        except iot.exceptions.ResourceAlreadyExistsException:
            pass
    iot_data.update_thing_shadow(
        thingName=device, payload=json.dumps({"state": {"desired": {"model": spec.to_dict()}}}).encode()
    )
    return spec


def reported(device: str, iot_data: Any = None) -> dict[str, Any]:
    """What the device last reported about its model (``reported.model``), and what was asked (``desired``)."""
    from kit.cloud.config import client

    iot_data = iot_data or client("iot-data")
    doc = json.loads(iot_data.get_thing_shadow(thingName=device)["payload"].read())
    state = doc.get("state") or {}
    return {
        "desired": (state.get("desired") or {}).get("model"),
        "reported": (state.get("reported") or {}).get("model"),
    }


def _ensure_bucket(s3: Any, bucket: str, local: bool) -> None:
    if not local:
        return  # on AWS the bucket is provisioned by an administrator
    try:
        s3.head_bucket(Bucket=bucket)
    except Exception:  # noqa: BLE001 - 404 on the local endpoint: make it
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": s3.meta.region_name})


def _exists(s3: Any, bucket: str, key: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
        return True
    except Exception:  # noqa: BLE001 - 404
        return False

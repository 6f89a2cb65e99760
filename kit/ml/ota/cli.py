"""``kit model deploy MODEL --device ID``: deliver a model over the air (and ``--status`` to see what runs)."""

from __future__ import annotations

import argparse
import json


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "deploy",
        help="upload a .tflite and its card to S3 and ask a device to run it (shadow)",
        description="Upload MODEL (a .tflite with its card, or a shipped model name) to "
        "s3://BUCKET/models/sha256/<digest>.tflite and set the device's shadow "
        "desired.model; the device downloads, verifies, canaries and swaps it.",
    )
    p.add_argument("model", nargs="?", help="a .tflite file (its card NAME.json beside it) or a shipped model name")
    p.add_argument("--device", required=True, help="the thing name of the device, e.g. kit-0001")
    p.add_argument("--version", default=None, help="a label for this model (default: card name + digest)")
    p.add_argument("--min-kit", default=None, help="the oldest kit version that may run it (default: this kit's)")
    p.add_argument("--bucket", default=None, help="S3 bucket (default: KIT_BUCKET or kit-telemetry)")
    p.add_argument("--status", action="store_true", help="print what the device was asked to run and reports")
    p.set_defaults(func=_deploy)


def _deploy(args: argparse.Namespace) -> int:
    from kit.errors import UsageError
    from kit.ml.ota.deploy import deploy, reported

    if args.status:
        print(json.dumps(reported(args.device), indent=2))
        return 0
    if not args.model:
        raise UsageError("kit model deploy: give MODEL (a .tflite path or a shipped model name), or --status")
    spec = deploy(args.model, args.device, version=args.version, min_kit=args.min_kit, bucket=args.bucket)
    print(json.dumps({"device": args.device, "desired.model": spec.to_dict()}, indent=2))
    return 0

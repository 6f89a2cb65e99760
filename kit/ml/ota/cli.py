"""``kit model deploy MODEL --device ID`` delivers a model over the air (``--status``: what runs);
``kit model retrain --from-s3 DEVICE`` makes a candidate from the frames a device uploaded (``--deploy``: and sends it)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "deploy",
        help="upload a model and its card to S3 and ask a device to run it (shadow)",
        description="Upload MODEL (a .tflite with its card, a fused model's folder, or a shipped model name "
        "such as fusion) to s3://BUCKET/models/sha256/<digest>.tflite (.zip: a fused model's parts in one "
        "bundle) and set the device's shadow desired.model; the device downloads, verifies, canaries and swaps it.",
    )
    p.add_argument(
        "model",
        nargs="?",
        help="a .tflite file (its card NAME.json beside it), a fused model's folder (card.json and its parts) "
        "or a shipped model name",
    )
    p.add_argument(
        "--variant",
        choices=("int8", "float32"),
        default=None,
        help="which parts of a fused model to send (default: int8, what the app runs, when the folder has them)",
    )
    from kit.argtypes import device_name, float_range, int_range

    p.add_argument("--device", required=True, type=device_name, help="the thing name of the device, e.g. kit-0001")
    p.add_argument("--version", default=None, help="a label for this model (default: card name + digest)")
    p.add_argument("--min-kit", default=None, help="the oldest kit version that may run it (default: this kit's)")
    p.add_argument("--bucket", default=None, help="S3 bucket (default: KIT_BUCKET or kit-telemetry)")
    p.add_argument("--status", action="store_true", help="print what the device was asked to run and reports")
    p.set_defaults(func=_deploy)

    r = sub.add_parser(
        "retrain",
        help="fine-tune a model on the frames a device uploaded while drift alarmed (and deploy it)",
        description="Download the frames DEVICE uploaded to s3://BUCKET/frames/DEVICE/ (labelled by its "
        "sensors), fine-tune the base model on them plus a replay of its training data and write it with its "
        "card: for the fused default (camera + sensors; the chunks must carry the sensor vectors, as the app's "
        "do) the folder OUT/NAME/ laid out like kit/models/fusion, for a camera model (--base intersection) "
        "OUT/NAME.tflite; the card has the accuracy on the newest uploaded frames, held out, beside the base "
        "model's. With --deploy, deploy it to DEVICE. Needs TensorFlow (pip install -e .[train]).",
    )
    r.add_argument(
        "--from-s3", required=True, type=device_name, metavar="DEVICE", help="the thing name whose frames to use"
    )
    r.add_argument("--out", default="models", help="folder for the candidate, its weights and card")
    r.add_argument("--name", default=None, help="file stem or fused folder name (default: BASE-DEVICE-retrained)")
    from kit.ml import DEFAULT_APP_MODEL

    r.add_argument(
        "--base",
        default=DEFAULT_APP_MODEL,  # the model the app runs unless told otherwise: the one an operator retrains
        help=f"model to start from (default: {DEFAULT_APP_MODEL}, the app's default: camera + sensors, needs the "
        "uploads' sensor vectors): a shipped name (intersection: camera only), a card/.tflite, or a fused model folder",
    )
    r.add_argument("--seed", type=int_range(0, 2**32 - 1), default=0)
    r.add_argument("--epochs", type=int_range(1, 1000), default=15)
    r.add_argument("--replay", type=int_range(0, 1_000_000), default=500, help="frames of the base's own data")
    r.add_argument("--holdout", type=float_range(0.0, 0.9), default=0.2, help="newest share kept to score on")
    # 15 epochs at 3e-3 learn the diverted works' layout (bench/lifecycle.py, 1024 uploads: 0.907 on held-out works
    # frames; 6 epochs at 1e-3 on 768 uploads reached 0.657)
    r.add_argument("--learning-rate", type=float_range(1e-6, 1.0), default=3e-3)
    r.add_argument(
        "--pedestrian-labels",
        choices=("base", "pir"),
        default=None,
        help="fused base only: what the uploads teach the pedestrian heads, the base model's own answers "
        "(default; the PIR is also an input) or the PIR (when the camera no longer sees the crossing)",
    )
    r.add_argument("--bucket", default=None, help="S3 bucket (default: KIT_BUCKET or kit-telemetry)")
    r.add_argument("--deploy", action="store_true", help="deploy the candidate to DEVICE (the canary decides)")
    r.set_defaults(func=_retrain)


def _deploy(args: argparse.Namespace) -> int:
    from kit.errors import UsageError
    from kit.ml.ota.deploy import deploy, reported

    if args.status:
        print(json.dumps(reported(args.device), indent=2))
        return 0
    if not args.model:
        raise UsageError(
            "kit model deploy: give MODEL (a .tflite path, a fused model's folder or a shipped model name), or --status"
        )
    spec = deploy(
        args.model, args.device, version=args.version, min_kit=args.min_kit, bucket=args.bucket, variant=args.variant
    )
    print(json.dumps({"device": args.device, "desired.model": spec.to_dict()}, indent=2))
    return 0


def _retrain(args: argparse.Namespace) -> int:
    from kit.ml.ota.retrain import frames_prefix, retrain_from_s3

    frames_prefix(args.from_s3)  # a bad device name fails before TensorFlow is imported
    if Path(args.out).is_file():
        from kit.errors import UsageError

        raise UsageError(f"--out {args.out!r} is a file; give a folder for the candidate, its weights and card")
    card = retrain_from_s3(
        args.from_s3,
        out=args.out,
        name=args.name,
        base=args.base,
        seed=args.seed,
        epochs=args.epochs,
        replay=args.replay,
        holdout=args.holdout,
        learning_rate=args.learning_rate,
        bucket=args.bucket,
        pedestrian_labels=args.pedestrian_labels,
    )
    if args.deploy:
        from kit.ml.ota.deploy import deploy

        spec = deploy(card["_path"], args.from_s3, bucket=args.bucket)
        print(json.dumps({"device": args.from_s3, "desired.model": spec.to_dict()}, indent=2))
    return 0

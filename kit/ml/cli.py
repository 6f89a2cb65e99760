"""``kit model ...``: train, inspect and benchmark the kit's models.

    kit model info                 # shipped models, their cards, the TFLite runtime in use
    kit model bench                # size, held-out accuracy, latency p50/p95 (and Keras beside it)
    kit model train --out models   # train, convert and write a model card

Sub-commands come from the modules in ``SUBCOMMANDS``; each exposes
``add_commands(subparsers)`` and sets ``func`` on its parsers. Adding a command such as
``kit model compress`` is one import and one line here. Adding commands must stay cheap (no TensorFlow import).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import kit.ml.compress.cli
import kit.ml.infer_cli
import kit.ml.ota.cli
from kit.argtypes import float_range, int_range

SUBCOMMANDS: list[ModuleType] = [
    sys.modules[__name__],  # train, bench, info (below)
    kit.ml.compress.cli,  # compress
    kit.ml.infer_cli,  # infer-serve
    kit.ml.ota.cli,  # deploy
]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``kit model`` and its sub-commands to the ``kit`` parser."""
    parser = subparsers.add_parser(
        "model",
        help="train, inspect and benchmark camera models",
        description="Train, inspect and benchmark the kit's camera models.",
    )
    sub = parser.add_subparsers(dest="model_command", metavar="ACTION")
    parser.set_defaults(func=lambda args: parser.print_help() or 0)
    for module in SUBCOMMANDS:
        module.add_commands(sub)


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train the camera model, convert to .tflite, write its model card")
    p.add_argument("--name", default="intersection", help="file stem of the model (default: intersection)")
    p.add_argument("--out", default="models", help="folder for NAME.tflite, NAME.weights.npz, NAME.json")
    p.add_argument("--seed", type=int_range(0, 2**32 - 1), default=0)
    p.add_argument("--n-train", type=int_range(10, 1_000_000), default=6000, help="training frames (default 6000)")
    p.add_argument("--n-eval", type=int_range(10, 1_000_000), default=1000, help="held-out frames (default 1000)")
    p.add_argument("--epochs", type=int_range(1, 10_000), default=12)
    p.add_argument("--batch-size", type=int_range(1, 65_536), default=64)
    p.add_argument("--width", type=float_range(0.05, 16), default=1.0, help="width multiplier of the CNN (default 1.0)")
    p.add_argument(
        "--conditions",
        default=None,
        help="training conditions: a preset name (train, day, all, ...) or JSON, e.g. '{\"leaves\": [0, 0.4]}'",
    )
    p.set_defaults(func=_train)

    p = sub.add_parser("bench", help="size, held-out accuracy and latency of each shipped model (Keras beside)")
    p.add_argument("models", nargs="*", help="model names or .tflite paths (default: every shipped model)")
    p.add_argument("--n", type=int_range(1, 1_000_000), default=500, help="held-out frames per model (default 500)")
    p.add_argument("--runs", type=int_range(1, 1_000_000), default=200, help="timed runs at batch 1 (default 200)")
    p.add_argument("--threads", type=int_range(1, 64), default=1)
    p.add_argument("--no-keras", action="store_true", help="skip the Keras comparison even if TensorFlow is installed")
    p.set_defaults(func=_bench)

    p = sub.add_parser("info", help="shipped models, their model cards and the TFLite runtime in use")
    p.add_argument("model", nargs="?", help="a model name or .tflite path (default: list all)")
    p.add_argument("--json", action="store_true", help="print the model card as JSON")
    p.set_defaults(func=_info)


def _train(args: argparse.Namespace) -> int:
    from kit.errors import UsageError
    from kit.ml.card import FLOORS
    from kit.ml.data import resolve_conditions

    conditions: Any = args.conditions
    try:
        if conditions and conditions.lstrip().startswith("{"):
            conditions = json.loads(conditions)
        resolve_conditions(conditions)  # checked before TensorFlow loads and anything is written
    except (ValueError, TypeError, KeyError) as exc:
        raise UsageError(f"--conditions {args.conditions!r}: {exc}") from None
    if not args.name or not all(c.isalnum() or c in "-_." for c in args.name) or args.name.startswith("."):
        raise UsageError(f"--name must be a file stem of letters, digits, '-', '_' (no folders), got {args.name!r}")
    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise UsageError(f"--out {args.out!r} is a file; give a folder for the model, its weights and card")
    from kit.ml.train import train

    card = train(
        name=args.name,
        out=args.out,
        seed=args.seed,
        n_train=args.n_train,
        n_eval=args.n_eval,
        epochs=args.epochs,
        batch_size=args.batch_size,
        width=args.width,
        conditions=conditions,
    )
    short = [k for k, floor in FLOORS.items() if card["metrics"][k] < floor]
    if short:
        print(f"below the shipping floors {FLOORS}: {short}")
    return 0


def _info(args: argparse.Namespace) -> int:
    from kit.ml import runtime
    from kit.ml.card import ModelCard
    from kit.ml.catalog import kind, shipped

    print(
        f"TFLite runtime: {runtime.RUNTIME} {runtime.VERSION}".rstrip()
        + (f" ({runtime.ERROR})" if runtime.ERROR else "")
    )
    if args.model:
        path = Path(args.model)
        try:
            cards = [ModelCard.load(path)]
        except FileNotFoundError:
            if path.suffix == ".tflite" and path.exists():
                print(f"{path.name}: {path.stat().st_size} bytes, no model card")
                return 0
            raise
    else:
        cards = shipped()
    for i, card in enumerate(cards):
        if args.json:
            print(json.dumps(card.to_dict(), indent=2, sort_keys=True))
            continue
        problems = card.check_files()
        default = " (the app's default)" if i == 0 and not args.model else ""
        print(
            f"{card.name}{default}: {kind(card)}, {', '.join(card.files)}; {card.precision}, {card.size_bytes} bytes; "
            + ("files match card" if not problems else "; ".join(problems))
        )
        for condition, figs in card.conditions.items():
            seeds = max((f.seeds for f in figs.values()), default=0)
            print(
                f"  {condition:14s}"
                + ", ".join(
                    f"{m.replace('_', ' ')} {f if f.seeds > 1 else f'{f.mean:.3f}'}"
                    for m, f in sorted(figs.items(), reverse=True)
                )
                + (f" ({seeds} seeds: mean [lowest, highest])" if seeds > 1 else " (one test set)")
            )
        print(f"  reproduce: {card.reproduce or '?'}")
    if not cards:
        print("no models found")
    return 0


def _bench(args: argparse.Namespace) -> int:
    from kit.errors import UsageError
    from kit.ml.card import ModelCard, evaluate, load_card
    from kit.ml.catalog import BENCH_SEED, Measured, measure, shipped
    from kit.ml.data import make_dataset
    from kit.ml.host import ModelHost

    rows: list[tuple[Measured, float | None]] = []
    names = args.models or [card.name for card in shipped()]
    for name in names:
        if not str(name).endswith(".tflite"):
            card = ModelCard.load(name)
            keras = None
            if card.details.get("keras_weights") and not args.no_keras:
                data = make_dataset(50, seed=BENCH_SEED, conditions="day")
                keras = _keras_latency(load_card(name), data.x, runs=max(20, args.runs // 5))
            rows.append((measure(card, n=args.n, runs=args.runs, threads=args.threads), keras))
            continue
        path = Path(name)  # a .tflite file of the user's: camera frames of the day
        host = ModelHost(path, num_threads=args.threads)
        if "queue" not in host.outputs or len(host.input.shape) != 4 or host.extra_inputs:
            raise UsageError(
                f"{path} is not a camera model the bench can score (inputs {list(host.inputs)}, outputs "
                f"{host.output_names}; it needs a frame input and a 'queue' output)"
            )
        data = make_dataset(args.n, seed=BENCH_SEED, conditions="day", size=host.frame_shape[0])
        metrics = evaluate(host, data)
        lat = host.latency(data.x[:50], warmup=20, runs=args.runs)
        rows.append(
            (
                Measured(
                    path.stem,
                    "single",
                    path.stat().st_size,
                    "daylight 0.6-1",
                    metrics["queue_accuracy"],
                    metrics["pedestrian_f1"],
                    lat["p50_ms"],
                    lat["p95_ms"],
                ),
                None,
            )
        )
    print(
        f"{'model':<16}{'kind':<12}{'bytes':>9}{'queue acc':>11}{'ped F1':>8}{'p50 ms':>9}{'p95 ms':>9}"
        f"{'Keras p50':>11}{'ratio':>8}  frames (seed {BENCH_SEED})"
    )
    for r, keras in rows:
        f1 = f"{r.pedestrian_f1:.3f}" if r.pedestrian_f1 is not None else "-"
        acc = f"{r.queue_accuracy:.3f}" if r.queue_accuracy is not None else "-"
        k = f"{keras:.2f}" if keras else "-"
        ratio = f"{keras / r.p50_ms:.0f}x" if keras else "-"
        print(
            f"{r.name:<16}{r.kind:<12}{r.size_bytes:>9}{acc:>11}{f1:>8}{r.p50_ms:>9.3f}"
            f"{r.p95_ms:>9.3f}{k:>11}{ratio:>8}  {r.frames}"
        )
    if not rows:
        print("no models to benchmark")
    return 0


def _keras_latency(card: dict[str, Any], frames: Any, *, runs: int) -> float | None:
    """p50 ms of Keras ``model(x)`` at batch 1, or None when TensorFlow is not installed."""
    try:
        from kit.ml.model import load_keras

        model = load_keras(card)
    except ImportError:
        return None
    import time

    import numpy as np

    x = frames.astype(np.float32)[..., None] / 255.0
    for i in range(5):
        model(x[i : i + 1], training=False)
    times = []
    for i in range(runs):
        t0 = time.perf_counter()
        model(x[i % len(x) : i % len(x) + 1], training=False)
        times.append(time.perf_counter() - t0)
    return float(np.percentile(times, 50) * 1e3)

"""kit model compress: quantize and prune a trained model, write every variant with its card, print the table.

    kit model compress                        # the shipped model -> ./compressed/queue_*.tflite + .json
    kit model compress --out variants --plot pareto.png
    kit model compress --ship                 # also copy queue_int8.tflite + card into kit/models

Needs TensorFlow (``pip install -e .[train]``). Registering the command imports nothing heavy.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

# --ship replaces the kit's int8 model: only when it is as good as the course asks (int8 within 1 point)
SHIP_MAX_LOSS = 0.01


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a fraction such as 0.5, got {text!r}") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be at least 0 and below 1 (0.5 = half), got {value}")
    return value


def _count(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compress",
        help="quantize and prune a model; write the variants, their cards and a table",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument(
        "--model",
        default="intersection",
        help="shipped model name or model card (.json) with Keras weights (default: intersection)",
    )
    p.add_argument("--out", default="compressed", help="folder for the variants (default: ./compressed)")
    p.add_argument("--prefix", default="queue", help="file name prefix of the variants (default: queue)")
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the fine-tuning, the calibration frames and the twin's weights (default 0)",
    )
    p.add_argument("--n-train", type=_count(10), default=3000, help="fine-tuning / calibration frames (default 3000)")
    p.add_argument("--n-eval", type=_count(10), default=1000, help="held-out frames, another seed (default 1000)")
    p.add_argument("--epochs", type=_count(1), default=4, help="fine-tuning epochs after pruning (default 4)")
    p.add_argument(
        "--standard-epochs",
        type=_count(0),
        default=6,
        help="epochs for the standard-convolution twin, 0 to skip it (default 6)",
    )
    p.add_argument("--fraction", type=_fraction, default=0.5, help="fraction of filters removed (default 0.5)")
    p.add_argument(
        "--sparsity", type=_fraction, default=0.5, help="fraction of each Conv2D/Dense kernel zeroed (default 0.5)"
    )
    p.add_argument("--runs", type=_count(1), default=200, help="timed runs per variant at batch 1 (default 200)")
    p.add_argument("--plot", default=None, help="write the Pareto plot to this image file")
    p.add_argument(
        "--ship",
        action="store_true",
        help="copy PREFIX_int8.tflite and its card into kit/models (refused if int8 loses > 1 point)",
    )
    p.set_defaults(func=_compress)


def _available() -> list[str]:
    from kit.ml import MODELS_DIR

    names = []
    for path in sorted(MODELS_DIR.glob("*.json")):
        try:
            if json.loads(path.read_text()).get("keras_weights"):
                names.append(path.stem)
        except (OSError, ValueError):
            continue
    return names


def _fail(message: str) -> int:
    print(f"kit model compress: error: {message}", file=sys.stderr)
    return 2


def _compress(args: argparse.Namespace) -> int:
    from kit.ml import MODELS_DIR
    from kit.ml.card import load_card

    try:
        card = load_card(args.model)
    except (FileNotFoundError, ValueError) as exc:
        return _fail(
            f"cannot load model {args.model!r} ({exc}); models with Keras weights: "
            f"{', '.join(_available()) or 'none'} (or pass the path of a card written by kit model train)"
        )
    if not card.get("keras_weights"):
        return _fail(
            f"the card of {card.get('name')!r} lists no Keras weights, so it cannot be fine-tuned or "
            f"re-converted; models with Keras weights: {', '.join(_available()) or 'none'}"
        )
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return _fail(
            f"cannot create the output folder {str(out)!r}: {exc.strerror}; pass --out FOLDER you can write to"
        )

    from kit.ml.compress.evaluate import anatomy_table
    from kit.ml.compress.variants import compress_all
    from kit.ml.data import make_dataset
    from kit.ml.model import load_keras

    model = load_keras(card)
    size = int(card["architecture"]["size"])
    train_seed = int(card.get("data", {}).get("train", {}).get("seed", args.seed))
    eval_seed = int(card.get("data", {}).get("eval", {}).get("seed", args.seed + 10_000))
    print(
        f"base: {card['name']} ({card['file']}); fine-tuning/calibration frames: {args.n_train} (seed {train_seed}); "
        f"held-out: {args.n_eval} daylight frames (seed {eval_seed})"
    )
    train = make_dataset(args.n_train, seed=train_seed, size=size)
    held_out = make_dataset(args.n_eval, seed=eval_seed, conditions="day", size=size)
    # every option that changes a file, so that the card's command makes the same files again
    command = (
        f"kit model compress --model {args.model} --seed {args.seed} --n-train {args.n_train} "
        f"--n-eval {args.n_eval} --epochs {args.epochs} --standard-epochs {args.standard_epochs} "
        f"--fraction {args.fraction} --sparsity {args.sparsity} --prefix {args.prefix}"
        + (" --ship" if args.ship else "")
    )
    table = compress_all(
        model,
        train,
        held_out,
        out=out,
        prefix=args.prefix,
        seed=args.seed,
        fraction=args.fraction,
        sparsity=args.sparsity,
        finetune_epochs=args.epochs,
        standard_epochs=args.standard_epochs,
        runs=args.runs,
        base_card=card,
        reproduce=command,
    )
    print()
    print(table)
    print("Pareto front (accuracy, latency, size):", ", ".join(r.name for r in table.pareto()))
    print()
    print(anatomy_table({r.name: r.path for r in table if r.name in ("float32", "int8", "int8_per_tensor")}))
    print(f"\n{len(table)} variants and their cards in {out.resolve()}")
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        ax = table.plot()
        ax.figure.savefig(args.plot, dpi=120, bbox_inches="tight")
        print(f"plot: {args.plot}")
    if args.ship:
        loss = table["float32"].queue_accuracy - table["int8"].queue_accuracy
        if loss > SHIP_MAX_LOSS:
            return _fail(
                f"not shipped: int8 queue accuracy is {100 * loss:.1f} points below float32 (at most "
                f"{100 * SHIP_MAX_LOSS:.0f} allowed); the variants stay in {out}"
            )
        for suffix in (".tflite", ".json"):
            src = out / f"{args.prefix}_int8{suffix}"
            shutil.copyfile(src, MODELS_DIR / src.name)
        print(f"shipped {args.prefix}_int8.tflite and its card to {MODELS_DIR}")
    return 0

"""``kit model compress``: quantize and prune a trained model, write every variant with its card, print the table.

    kit model compress                        # the shipped model -> ./compressed/queue_*.tflite + .json
    kit model compress --out variants --plot pareto.png
    kit model compress --ship                 # also copy queue_int8.tflite + card into kit/models

Needs TensorFlow (``pip install -e .[train]``). Registering the command imports nothing heavy.
"""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compress", help="quantize and prune a model; write the variants, their cards and a table",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="intersection",
                   help="shipped model name or model card (.json) with Keras weights (default: intersection)")
    p.add_argument("--out", default="compressed", help="folder for the variants (default: ./compressed)")
    p.add_argument("--prefix", default="queue", help="file name prefix of the variants (default: queue)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-train", type=int, default=3000, help="fine-tuning / calibration frames (default 3000)")
    p.add_argument("--n-eval", type=int, default=1000, help="held-out frames, another seed (default 1000)")
    p.add_argument("--epochs", type=int, default=4, help="fine-tuning epochs after pruning (default 4)")
    p.add_argument("--standard-epochs", type=int, default=6,
                   help="epochs for the standard-convolution twin, 0 to skip it (default 6)")
    p.add_argument("--fraction", type=float, default=0.5, help="fraction of filters removed (default 0.5)")
    p.add_argument("--sparsity", type=float, default=0.5, help="fraction of weights zeroed (default 0.5)")
    p.add_argument("--runs", type=int, default=200, help="timed runs per variant at batch 1 (default 200)")
    p.add_argument("--plot", default=None, help="write the Pareto plot to this image file")
    p.add_argument("--ship", action="store_true", help="copy PREFIX_int8.tflite and its card into kit/models")
    p.set_defaults(func=_compress)


def _compress(args: argparse.Namespace) -> int:
    from kit.ml import MODELS_DIR
    from kit.ml.card import load_card
    from kit.ml.compress.evaluate import anatomy_table
    from kit.ml.compress.variants import compress_all
    from kit.ml.data import make_dataset
    from kit.ml.model import load_keras

    card = load_card(args.model)
    model = load_keras(card)
    size = int(card["architecture"]["size"])
    train_seed = int(card.get("data", {}).get("train", {}).get("seed", args.seed))
    eval_seed = int(card.get("data", {}).get("eval", {}).get("seed", args.seed + 10_000))
    print(f"base: {card['name']} ({card['file']}); fine-tuning/calibration frames: {args.n_train} (seed {train_seed}); "
          f"held-out: {args.n_eval} daylight frames (seed {eval_seed})")
    train = make_dataset(args.n_train, seed=train_seed, size=size)
    held_out = make_dataset(args.n_eval, seed=eval_seed, conditions="day", size=size)
    command = (f"kit model compress --model {args.model} --seed {args.seed} --n-train {args.n_train} "
               f"--n-eval {args.n_eval} --epochs {args.epochs} --fraction {args.fraction} --sparsity {args.sparsity}"
               + (" --ship" if args.ship else ""))
    table = compress_all(model, train, held_out, out=args.out, prefix=args.prefix, seed=args.seed,
                         fraction=args.fraction, sparsity=args.sparsity, finetune_epochs=args.epochs,
                         standard_epochs=args.standard_epochs, runs=args.runs, base_card=card, reproduce=command)
    print()
    print(table)
    print("Pareto front (accuracy, latency, size):", ", ".join(r.name for r in table.pareto()))
    print()
    print(anatomy_table({r.name: r.path for r in table if r.name in ("float32", "int8", "int8_per_tensor")}))
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        ax = table.plot()
        ax.figure.savefig(args.plot, dpi=120, bbox_inches="tight")
        print(f"plot: {args.plot}")
    if args.ship:
        for suffix in (".tflite", ".json"):
            src = Path(args.out) / f"{args.prefix}_int8{suffix}"
            shutil.copyfile(src, MODELS_DIR / src.name)
        print(f"shipped {args.prefix}_int8.tflite and its card to {MODELS_DIR}")
    return 0

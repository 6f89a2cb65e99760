"""Compression benchmark: every variant of the shipped camera model, measured the same way, in one run.

    .venv/bin/python bench/compress.py            # a few minutes on 2 cores
    .venv/bin/python bench/compress.py --quick    # smaller data, fewer epochs

Prints the trade-off table of the lab's camera model (kit/models/intersection.tflite: size, gzip size,
weights, params, MACs, held-out queue accuracy, pedestrian F1, latency p50/p95 at batch 1 with
ModelHost), the Pareto front and the magnitude-pruning sparsity curve; then the same float32/int8
pair for the capstone's camera network (kit.ml.early_exit at width 96, the network the intersection
app runs, shipped as float32; trained here with the recipe of kit/models/early_exit/card.json and
converted both ways); where the bytes of each
file go; and the course's floors with the measured values beside them.

The int8 file-size floor is judged on the capstone network. The lab model has 11 k parameters: its
float32 file is 50.3 KB, of which 10.6 KB are tensor names and graph that int8 does not shrink, and its
int8 file adds a scale and an int64 zero point per output channel (9 KB). One byte per weight plus
that graph already bounds its int8 file at about 2.2x smaller; the bench prints the bound beside
the measured ratio.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

from kit import progress

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--strict", action="store_true", help="exit with status 1 when a floor is missed")
    parser.add_argument("--plot", default=None, help="also write the Pareto plot to this image")
    args = parser.parse_args()

    from kit.ml import runtime
    from kit.ml.card import load_card
    from kit.ml.compress.evaluate import anatomy, anatomy_table
    from kit.ml.compress.variants import compress_all, sparsity_curve
    from kit.ml.data import make_dataset
    from kit.ml.model import load_keras

    n_train, n_eval, epochs, std_epochs, runs = (1000, 400, 2, 2, 50) if args.quick else (3000, 1000, 4, 6, 200)
    t0 = time.perf_counter()
    card = load_card("intersection")
    model = load_keras(card)
    train = make_dataset(n_train, seed=card["data"]["train"]["seed"])
    held_out = make_dataset(n_eval, seed=card["data"]["eval"]["seed"], conditions="day")
    print(
        f"base model: kit/models/{card['file']}; {n_train} fine-tuning frames (seed {card['data']['train']['seed']}), "
        f"{n_eval} held-out daylight frames (seed {card['data']['eval']['seed']}); runtime {runtime.RUNTIME}, "
        f"1 thread, {platform.machine()}"
    )
    out = Path(tempfile.mkdtemp(prefix="kit-bench-compress-"))
    table = compress_all(
        model,
        train,
        held_out,
        out=out,
        seed=args.seed,
        finetune_epochs=epochs,
        standard_epochs=std_epochs,
        runs=runs,
        base_card=card,
        progress=None,
    )
    print()
    print(table)
    print(
        "\nPareto front (no other variant is at once as accurate, as fast and as small):",
        ", ".join(r.name for r in table.pareto()),
    )
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        table.plot().figure.savefig(args.plot, dpi=120, bbox_inches="tight")

    curve = sparsity_curve(
        model, train, held_out, sparsities=(0.25, 0.5, 0.75, 0.9), epochs=max(1, epochs // 2), seed=args.seed
    )
    base = table["float32"]
    print("\nmagnitude pruning: sparsity -> queue accuracy (pruned, after fine-tuning), gzip size of the float32 file")
    print(f"{'sparsity':>9}{'acc pruned':>12}{'acc tuned':>11}{'gzip KB':>9}{'x smaller':>10}")
    print(f"{0:>9.2f}{base.queue_accuracy:>12.3f}{base.queue_accuracy:>11.3f}{base.gzip_kb:>9.1f}{1:>10.2f}")
    for p in curve:
        print(
            f"{p['sparsity']:>9.2f}{p['accuracy_pruned']:>12.3f}{p['accuracy_finetuned']:>11.3f}"
            f"{p['gzip_bytes'] / 1024:>9.1f}{base.gzip_bytes / p['gzip_bytes']:>10.2f}"
        )

    cap = capstone_pair(out, quick=args.quick, seed=args.seed, runs=runs)
    print()
    print(cap)

    int8, filt = table["int8"], table["filters50"]
    cap32, cap8 = cap["capstone_float32"], cap["capstone_int8"]
    rows = (table["float32"], int8, table["int8_per_tensor"], cap32, cap8)
    print()
    print(anatomy_table({row.name if row.name.startswith("capstone") else f"lab_{row.name}": row.path for row in rows}))
    parts = {row.name: anatomy(row.path) for row in rows}
    # the least the lab model's int8 file can be: one byte per weight, plus the graph and names every file keeps
    fixed = parts["int8"]["weights"] + parts["int8"]["graph"] + parts["int8"]["names"]

    checks = [
        ("int8 file >= 3.5x smaller than float32 (capstone network)", cap32.size_bytes / cap8.size_bytes, 3.5, "x"),
        (
            "int8 accuracy within 1 point of float32 (capstone network)",
            100 * (cap8.queue_accuracy - cap32.queue_accuracy),
            -1.0,
            " pts",
        ),
        (
            "int8 accuracy within 1 point of float32 (lab model)",
            100 * (int8.queue_accuracy - base.queue_accuracy),
            -1.0,
            " pts",
        ),
        ("50% filters: >= 1.8x fewer MACs", base.macs / filt.macs, 1.8, "x"),
        ("50% filters: accuracy within 2 points", 100 * (filt.queue_accuracy - base.queue_accuracy), -2.0, " pts"),
    ]
    print("\nfloors")
    ok = True
    for label, value, floor, unit in checks:
        ok &= value >= floor
        print(
            f"  {'PASS' if value >= floor else 'FAIL'}  {label}: {value:+.2f}{unit}"
            if unit == " pts"
            else f"  {'PASS' if value >= floor else 'FAIL'}  {label}: {value:.2f}{unit}"
        )
    print(
        f"  note  capstone network ({cap32.params:,} parameters): weights {cap32.weight_bytes / cap8.weight_bytes:.2f}x "
        f"smaller, file {cap32.size_bytes / cap8.size_bytes:.2f}x, gzip {cap32.gzip_bytes / cap8.gzip_bytes:.2f}x; "
        f"p50 {cap32.p50_ms:.3f} -> {cap8.p50_ms:.3f} ms"
    )
    print(
        f"  note  lab model ({base.params:,} parameters): int8 file {base.size_bytes / int8.size_bytes:.2f}x smaller "
        f"({base.size_kb:.1f} -> {int8.size_kb:.1f} KB) while its weights are {base.weight_bytes / int8.weight_bytes:.2f}x "
        f"smaller; its int8 weights, graph and tensor names alone are {fixed / 1024:.1f} KB, so no int8 file of it "
        f"can be more than {base.size_bytes / fixed:.2f}x smaller; per-channel scales and zero points add "
        f"{parts['int8']['quantization'] / 1024:.1f} KB"
    )
    pt = table["int8_per_tensor"]
    print(
        f"  note  lab model, int8 with one scale per weight tensor: file {base.size_bytes / pt.size_bytes:.2f}x smaller, "
        f"{100 * (pt.queue_accuracy - base.queue_accuracy):+.1f} pts queue accuracy"
    )
    if "standard_conv_int8" in table.names():
        std, std8, std_pt = table["standard_conv"], table["standard_conv_int8"], table["standard_conv_int8_per_tensor"]
        print(
            f"  note  lab model with standard convolutions ({std.params:,} parameters): int8 file "
            f"{std.size_bytes / std8.size_bytes:.2f}x smaller, {std.size_bytes / std_pt.size_bytes:.2f}x with one "
            f"scale per weight tensor; {100 * (std8.queue_accuracy - std.queue_accuracy):+.1f} pts queue accuracy"
        )
    night = table["int8_night_rep"]
    print(
        f"  note  int8 calibrated on night frames only: {100 * (night.queue_accuracy - base.queue_accuracy):+.1f} pts "
        f"queue accuracy, pedestrian F1 {night.pedestrian_f1:.3f} vs {int8.pedestrian_f1:.3f}"
    )
    black = table["int8_black_rep"]
    print(
        f"  note  int8 calibrated on black frames: {100 * (black.queue_accuracy - base.queue_accuracy):+.1f} pts "
        f"queue accuracy"
    )
    shutil.rmtree(out, ignore_errors=True)
    print(f"\n{time.perf_counter() - t0:.0f} s")
    return 1 if args.strict and not ok else 0


def capstone_pair(out: Path, *, quick: bool, seed: int, runs: int):
    """The capstone's camera network, trained as its card says, as float32 and int8 files: a two-row Table.

    The network is kit.ml.early_exit.build_early_exit at width 96 (the card's ``produced_by``), here in
    one piece; its ``queue`` head (the final one) is scored on the card's test frames (another seed).
    """
    import json

    from kit.ml import MODELS_DIR
    from kit.ml.compress.count import count_macs
    from kit.ml.compress.evaluate import Table, measure
    from kit.ml.compress.quantize import representative_frames, to_tflite
    from kit.ml.data import make_dataset
    from kit.ml.early_exit import build_early_exit, train_early_exit

    card = json.loads((MODELS_DIR / "early_exit" / "card.json").read_text())
    data = card["data"]
    n_train, n_test, epochs = (1000, 400, 3) if quick else (data["train"]["n"], data["test"]["n"], 12)
    t0 = time.perf_counter()
    train = make_dataset(n_train, seed=data["train"]["seed"], conditions=data["conditions"])
    test = make_dataset(n_test, seed=data["test"]["seed"], conditions=data["conditions"])
    model = build_early_exit(64, width=96, seed=seed)
    train_early_exit(model, train, epochs=epochs, seed=seed)
    counted = count_macs(model)
    print(
        f"\ncapstone network (kit/models/early_exit: stem + rest, here in one piece): {counted.params:,} parameters, "
        f"trained on {n_train} frames (seed {data['train']['seed']}) x {epochs} epochs in "
        f"{time.perf_counter() - t0:.0f} s; {n_test} test frames (seed {data['test']['seed']}), "
        f"conditions {data['conditions']}"
    )
    table = Table(baseline="capstone_float32")
    rep = representative_frames(train.x, 200, seed=seed)
    for variant in ("float32", "int8"):
        path = out / f"capstone_{variant}.tflite"
        to_tflite(model, variant, representative=rep if variant == "int8" else None, path=path)
        table.add(
            measure(
                path,
                test,
                name=f"capstone_{variant}",
                macs=counted.macs,
                params=counted.params,
                runs=runs,
                note="queue head" + (", 200 training frames to calibrate" if variant == "int8" else ""),
            )
        )
    return table


if __name__ == "__main__":
    progress.show_bars()  # training, rounds and sweeps show a bar in a terminal
    sys.exit(main())

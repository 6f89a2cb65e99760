"""Make every compressed variant of a trained model, write each with a model card, and measure them.

    >>> from kit.ml.model import load_keras
    >>> from kit.ml.data import make_dataset
    >>> from kit.ml.compress.variants import compress_all
    >>> table = compress_all(load_keras("intersection"), make_dataset(2000, seed=0),
    ...                      make_dataset(1000, seed=10_000, conditions="day"), out="variants")   # doctest: +SKIP
    >>> print(table)                                                                             # doctest: +SKIP

Variants (file ``{prefix}_{name}.tflite`` + ``.json`` card each):

| name | what |
|---|---|
| ``float32`` | the model as it is: the baseline |
| ``dynamic`` | int8 weights, float activations |
| ``float16`` | float16 weights |
| ``int8`` | int8 weights and activations, int8 in/out; representative set: training frames |
| ``int8_per_tensor`` | the same with one scale per weight tensor (no per-channel scales in the file) |
| ``int8_night_rep`` | the same, calibrated on night frames only (a poor representative set) |
| ``int8_black_rep`` | the same, calibrated on black frames (a broken representative set) |
| ``magnitude{S}`` | S % of weights zeroed by magnitude, fine-tuned with masks (float32: same ops, smaller gzip) |
| ``filters{F}`` | F % of filters removed by L1 norm, model rebuilt narrower, fine-tuned (float32) |
| ``filters{F}_int8`` | that model, int8 |
| ``standard_conv`` | the same network with standard 3x3 convolutions, trained from scratch (float32) |
| ``standard_conv_int8`` | that model, int8, same representative set: a model whose weights dominate its file |
| ``standard_conv_int8_per_tensor`` | the same with one scale per weight tensor |
"""

from __future__ import annotations

import platform
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from kit.ml.compress.evaluate import Row, Table, measure


def _card(
    row: Row,
    *,
    precision: str,
    how: dict[str, Any],
    base: dict[str, Any],
    held_out: Any,
    metrics: dict[str, Any],
    reproduce: str,
) -> dict[str, Any]:
    from kit.ml.card import file_sha256

    size = int(held_out.x.shape[1])
    return {
        "name": Path(row.path).stem,
        "file": Path(row.path).name,
        "format": "tflite",
        "precision": precision,
        "size_bytes": row.size_bytes,
        "gzip_bytes": row.gzip_bytes,
        "sha256": file_sha256(row.path),
        "architecture": {
            **{k: v for k, v in base.items() if k != "base_model"},
            "params": row.params,
            "macs": row.macs,
        },
        "compression": {**how, "base_model": base.get("base_model")},
        "input": {
            "name": "frame",
            "shape": [1, size, size, 1],
            "dtype": "int8" if precision == "int8" else "float32",
            "meaning": "grayscale camera frame, pixel / 255 (ModelHost quantizes int8 inputs)",
        },
        "outputs": {
            "queue": {"shape": [1, 3], "classes": ["empty", "short", "long"]},
            "pedestrian": {"shape": [1, 1], "threshold": 0.5},
        },
        "data": {
            "generator": "kit.ml.data.make_dataset",
            "eval": {
                "n": len(held_out),
                "seed": held_out.meta.get("seed"),
                "conditions": held_out.meta.get("conditions"),
                "preset": "day",
            },
        },
        "metrics": metrics,
        "latency": {
            "p50_ms": round(row.p50_ms, 3),
            "p95_ms": round(row.p95_ms, 3),
            "batch": 1,
            "threads": 1,
            "machine": platform.machine(),
        },
        "reproduce": reproduce,
    }


def compress_all(
    model: Any,
    train: Any,
    held_out: Any,
    *,
    out: str | Path,
    prefix: str = "queue",
    seed: int = 0,
    fraction: float = 0.5,
    sparsity: float = 0.5,
    finetune_epochs: int = 4,
    learning_rate: float = 3e-3,
    standard_epochs: int = 6,
    representative: int = 200,
    night: Any = None,
    runs: int = 100,
    base_card: dict[str, Any] | None = None,
    reproduce: str = "kit model compress",
    progress: Callable[[str], None] | None = print,
) -> Table:
    """Make, write, card and measure every variant of ``model``; returns the :class:`Table`.

    ``train`` (a Dataset) gives the representative frames and the fine-tuning data; ``held_out``
    (another seed) is what every variant is scored on; ``night`` (default: night frames of another
    seed) is the poor representative set. ``standard_epochs=0`` skips the standard-convolution twin
    (``standard_conv`` and its int8 files).
    """
    import keras

    from kit.ml.card import evaluate, write_card
    from kit.ml.compress.arch import standard_twin
    from kit.ml.compress.count import count_macs
    from kit.ml.compress.prune import MaskCallback, inner_prunable, magnitude_prune, prune_filters
    from kit.ml.compress.prune import sparsity as zeros
    from kit.ml.compress.quantize import representative_frames, to_tflite
    from kit.ml.compress.tune import fit
    from kit.ml.data import make_dataset

    say = progress or (lambda _msg: None)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    size = int(held_out.x.shape[1])
    if night is None:
        night = make_dataset(representative, seed=seed + 20_000, conditions="night", size=size)
    rep = representative_frames(train.x, representative, seed=seed)
    rep_night = representative_frames(night.x, representative, seed=seed)
    base = (
        dict(base_card.get("architecture", {})) if base_card else {"builder": "kit.ml.model.build_model", "size": size}
    )
    if base_card:
        base["base_model"] = {
            "name": base_card.get("name"),
            "file": base_card.get("file"),
            "sha256": base_card.get("sha256"),
        }
    table = Table()

    def add(
        name: str,
        keras_model: Any,
        variant: str,
        how: dict[str, Any],
        *,
        calib: Any = None,
        note: str = "",
        per_channel: bool = True,
    ) -> Row:
        path = out / f"{prefix}_{name}.tflite"
        path.with_suffix(".json").unlink(missing_ok=True)  # a card of an earlier run no longer describes it
        to_tflite(keras_model, variant, representative=calib, path=path, per_channel=per_channel)
        counted = count_macs(keras_model)
        row = measure(path, held_out, name=name, macs=counted.macs, params=counted.params, note=note, runs=runs)
        card = _card(
            row,
            precision="int8" if variant == "int8" else variant,
            how=how,
            base=base,
            held_out=held_out,
            metrics=evaluate(path, held_out),
            reproduce=reproduce,
        )
        write_card(card, path.with_suffix(".json"))
        say(f"{name}: {row.size_kb:.1f} KB, queue accuracy {row.queue_accuracy:.3f}, p50 {row.p50_ms:.2f} ms")
        return table.add(row)

    add("float32", model, "float32", {"method": "none"}, note="baseline")
    add("dynamic", model, "dynamic", {"method": "post-training dynamic range (int8 weights)"})
    add("float16", model, "float16", {"method": "post-training float16 weights"})
    calib = {"frames": representative, "from": "training set", "seed": train.meta.get("seed")}
    add(
        "int8", model, "int8", {"method": "post-training full integer, int8 in/out", "representative": calib}, calib=rep
    )
    add(
        "int8_per_tensor",
        model,
        "int8",
        {"method": "post-training full integer, int8 in/out, one scale per weight tensor", "representative": calib},
        calib=rep,
        per_channel=False,
        note="one scale per tensor",
    )
    add(
        "int8_night_rep",
        model,
        "int8",
        {
            "method": "post-training full integer, int8 in/out",
            "representative": {"frames": representative, "from": "night frames only", "seed": night.meta.get("seed")},
        },
        calib=rep_night,
        note="calibrated on night frames only",
    )
    add(
        "int8_black_rep",
        model,
        "int8",
        {
            "method": "post-training full integer, int8 in/out",
            "representative": {"frames": 10, "from": "all-black frames (a broken calibration set)"},
        },
        calib=np.zeros((10, *rep.shape[1:]), dtype=np.float32),
        note="calibrated on black frames",
    )

    pct = int(round(100 * sparsity))
    sparse = keras.models.clone_model(model)
    sparse.set_weights(model.get_weights())
    masks = magnitude_prune(sparse, sparsity)
    fit(sparse, train, epochs=finetune_epochs, seed=seed, learning_rate=learning_rate, callbacks=[MaskCallback(masks)])
    add(
        f"magnitude{pct}",
        sparse,
        "float32",
        {
            "method": "magnitude pruning, masks kept while fine-tuning",
            "sparsity": round(zeros(sparse), 3),
            "finetune_epochs": finetune_epochs,
        },
        note=f"{100 * zeros(sparse):.0f}% zeros, same ops",
    )

    fpct = int(round(100 * fraction))
    targets = inner_prunable(model)
    narrow = prune_filters(model, fraction, layers=targets)
    fit(narrow, train, epochs=finetune_epochs, seed=seed, learning_rate=learning_rate)
    how = {
        "method": "L1-norm filter pruning, model rebuilt",
        "fraction": fraction,
        "layers": targets,
        "finetune_epochs": finetune_epochs,
    }
    add(f"filters{fpct}", narrow, "float32", how, note=f"{fpct}% filters removed")
    add(
        f"filters{fpct}_int8",
        narrow,
        "int8",
        {**how, "then": "full integer int8", "representative": calib},
        calib=rep,
        note="pruned, then int8",
    )

    if standard_epochs:
        twin = standard_twin(model, seed=seed)
        fit(twin, train, epochs=standard_epochs, seed=seed)
        add(
            "standard_conv",
            twin,
            "float32",
            {
                "method": "standard 3x3 convolutions in place of depthwise-separable blocks",
                "train_epochs": standard_epochs,
            },
            note=f"trained from scratch, {standard_epochs} epochs",
        )
        # 6x the weights of the shipped model: here the fixed graph and per-channel scales are a small
        # share of the file, so this pair shows what int8 does to the weights themselves
        add(
            "standard_conv_int8",
            twin,
            "int8",
            {
                "method": "standard 3x3 convolutions, then post-training full integer, int8 in/out",
                "train_epochs": standard_epochs,
                "representative": calib,
            },
            calib=rep,
            note="standard convolutions, int8",
        )
        add(
            "standard_conv_int8_per_tensor",
            twin,
            "int8",
            {
                "method": "standard 3x3 convolutions, then post-training full integer, int8 in/out, "
                "one scale per weight tensor",
                "train_epochs": standard_epochs,
                "representative": calib,
            },
            calib=rep,
            per_channel=False,
            note="standard convolutions, int8, one scale per tensor",
        )
    return table


def sparsity_curve(
    model: Any,
    train: Any,
    held_out: Any,
    *,
    sparsities: tuple[float, ...] = (0.25, 0.5, 0.75, 0.9),
    epochs: int = 2,
    seed: int = 0,
    learning_rate: float = 3e-3,
) -> list[dict[str, float]]:
    """Queue accuracy and gzipped float32 ``.tflite`` size after magnitude pruning + fine-tuning at each sparsity."""
    import tempfile

    import keras

    from kit.ml.card import evaluate
    from kit.ml.compress.prune import MaskCallback, gzip_size, magnitude_prune
    from kit.ml.compress.quantize import to_tflite
    from kit.ml.compress.tune import fit, keras_accuracy

    points = []
    with tempfile.TemporaryDirectory(prefix="kit-sparsity-") as tmp:
        for s in sparsities:
            pruned = keras.models.clone_model(model)
            pruned.set_weights(model.get_weights())
            masks = magnitude_prune(pruned, s)
            before = keras_accuracy(pruned, held_out)
            fit(pruned, train, epochs=epochs, seed=seed, learning_rate=learning_rate, callbacks=[MaskCallback(masks)])
            path = Path(tmp) / f"s{int(100 * s)}.tflite"
            to_tflite(pruned, "float32", path=path)
            points.append(
                {
                    "sparsity": s,
                    "accuracy_pruned": before,
                    "accuracy_finetuned": float(evaluate(path, held_out)["queue_accuracy"]),
                    "gzip_bytes": gzip_size(path),
                    "size_bytes": path.stat().st_size,
                }
            )
    return points

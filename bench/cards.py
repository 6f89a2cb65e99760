"""Figures of every shipped camera model per condition over fresh seeds, written into their cards.

The fused model's card gets its figures from ``bench/fusion.py --ship``; this script measures the
camera-only models (``intersection``, ``queue_int8``, the ``early_exit`` pair) on frames of
``kit.ml.fusion.EVAL_SEEDS`` (no training used them) in each condition of ``kit.ml.data.PRESETS``
and stores "mean [lowest, highest seed]" under ``figures`` in each card (``kit model info`` shows them).

    .venv/bin/python bench/cards.py [--n 300] [--write]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from kit.ml.card import Interval, ModelCard, card_path, scores, shipped_cards  # noqa: E402
from kit.ml.catalog import kind  # noqa: E402
from kit.ml.data import make_dataset  # noqa: E402
from kit.ml.fusion import EVAL_SEEDS  # noqa: E402

CONDITIONS = ("day", "dusk", "night", "leaves", "road_works")


def predictor(card: ModelCard):
    if kind(card) == "early_exit":
        from kit.ml.early_exit import EarlyExitHost

        host = EarlyExitHost.load(card.folder)
        return lambda x: {"queue": np.stack([host.predict(f).probs for f in x]), "pedestrian": None}
    from kit.ml.host import ModelHost

    host = ModelHost(card.path)
    return lambda x: host.predict_batches(x)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=300, help="frames per condition and seed")
    ap.add_argument("--write", action="store_true", help="store the figures in the cards")
    args = ap.parse_args()
    sets = {(c, s): make_dataset(args.n, seed=s, conditions=c) for c in CONDITIONS for s in EVAL_SEEDS}
    for name in shipped_cards():
        card = ModelCard.load(name)
        if kind(card) == "fusion":
            continue
        predict = predictor(card)
        figures = {}
        for c in CONDITIONS:
            per = []
            for s in EVAL_SEEDS:
                d = sets[(c, s)]
                out = predict(d.x)
                ped = out["pedestrian"] if out["pedestrian"] is not None else np.zeros((len(d), 1))
                per.append(scores(out["queue"], ped, d.queue, d.pedestrian))
            figures[c] = {"queue_accuracy": Interval.of([p["queue_accuracy"] for p in per])}
            if kind(card) != "early_exit":
                figures[c]["pedestrian_f1"] = Interval.of([p["pedestrian_f1"] for p in per])
        print(
            f"{name}: " + "; ".join(f"{c} " + ", ".join(f"{m} {i}" for m, i in f.items()) for c, f in figures.items())
        )
        if args.write:
            path = card.folder / "card.json" if kind(card) == "early_exit" else card_path(name)
            raw = json.loads(path.read_text())
            raw["figures"] = {c: {m: vars(i) for m, i in f.items()} for c, f in figures.items()}
            raw["figures_by"] = f"python bench/cards.py --n {args.n} --write (seeds {list(EVAL_SEEDS)})"
            path.write_text(json.dumps(raw, indent=1 if kind(card) == "early_exit" else 2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Learning at the edge on one intersection: drift alarms, augmentation, robust loss, on-device adaptation.

One run prints four tables (every figure in docs and notes about lab 08 comes from here):

1. drift monitor (kit.ml.drift) with the shipped model's confidence: alarm rate on normal days
   (false alarms) and on autumn leaves, night, road works, over many seeded windows of 64 frames;
2. accuracy of the shipped model fine-tuned with and without augmentation (kit.ml.augment) on
   each shifted test set, beside an oracle trained on labelled shifted frames (needs TensorFlow);
3. generalized vs plain cross-entropy (kit.ml.robust) under label noise (numpy network);
4. on-device adaptation (kit.ml.adapt): accuracy before/after on the shifted sets and on day
   frames (forgetting), head versions stored in a kit store (needs TensorFlow for the export).

    .venv/bin/python bench/drift.py [--windows 100] [--skip-tf]
    .venv/bin/python bench/drift.py --stream      # only the stream monitor (kit.ml.stream_drift), numpy only

``--stream`` measures the monitor that compares each window of a camera stream with normal frames of
the same light level and hour (kit.ml.stream_drift): the share of false-alarm windows over normal
days of seeds it never saw, and how many windows leaves, a dirty lens and road works need to be caught.
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import time
from pathlib import Path

import numpy as np

from kit import progress
from kit.ml import shipped_model
from kit.ml.data import make_dataset
from kit.ml.drift import DriftMonitor, Reference
from kit.ml.host import ModelHost

SCENARIOS = {"normal day": "train", "autumn leaves": "leaves", "night": "night", "road works": "road_works"}
SHIFTED = ("day", "leaves", "night", "road_works")


def drift_table(windows: int) -> None:
    host = ModelHost(shipped_model())
    ref_set = make_dataset(1000, seed=0)
    reference = Reference.from_frames(ref_set.x, confidences=host.predict_batches(ref_set.x)["queue"])
    monitor = DriftMonitor(reference)
    print(f"1. drift monitor: {windows} windows of 64 frames per scenario, reference 1000 training frames")
    print(f"   reference confidence {reference.confidence:.3f}")
    print(
        f"   {'scenario':<14} {'alarm rate':>10} {'PSI median':>10} {'layout z':>9} {'conf drop':>9}  rules that fired"
    )
    for name, preset in progress.bar(SCENARIOS.items(), total=len(SCENARIOS), desc="drift scenarios"):
        fired, psis, zs, drops, rules = 0, [], [], [], {}
        for w in range(windows):
            frames = make_dataset(64, seed=100_000 + 1000 * w + len(name), conditions=preset).x
            report = monitor.check(frames, confidences=host.predict(frames)["queue"])
            fired += report.drift
            psis.append(report.psi)
            zs.append(report.layout_z)
            drops.append(report.confidence_drop)
            for r in report.reasons:
                key = r.split()[0] if not r.startswith("confidence") else "confidence"
                rules[key] = rules.get(key, 0) + 1
        rate = fired / windows
        label = "false alarms" if preset == "train" else "detected"
        print(
            f"   {name:<14} {rate:>9.0%}  {np.median(psis):>10.3f} {np.median(zs):>9.1f} {np.median(drops):>+9.3f}  "
            f"{label}; {rules or 'none'}; largest PSI {max(psis):.3f}, layout z {max(zs):.1f}"
        )


def augmentation_table(n_train: int, epochs: int) -> None:
    from kit.ml.augment import Augmenter
    from kit.ml.model import load_keras
    from kit.ml.train import fit

    tests = {name: make_dataset(400, seed=50, conditions=name) for name in SHIFTED}

    def accuracy(model) -> dict[str, float]:
        return {
            n: float(np.mean(model.predict(d.inputs(), verbose=0)["queue"].argmax(1) == d.queue))
            for n, d in tests.items()
        }

    train = make_dataset(n_train, seed=0)
    rows = {"shipped model": accuracy(load_keras("intersection"))}
    for name, aug in [("fine-tuned, no augmentation", None), ("fine-tuned, augmented", Augmenter(p=0.5))]:
        data = copy.copy(train)
        if aug is not None:
            data.x = aug.apply(train.x, seed=1)
        model = load_keras("intersection")
        fit(model, data, epochs=epochs, batch_size=32, learning_rate=1e-3, seed=0, progress=None)
        rows[name] = accuracy(model)
    # oracle: the same budget spent on labelled frames of the shifted conditions themselves
    oracle = make_dataset(n_train, seed=0, conditions="all")
    model = load_keras("intersection")
    fit(model, oracle, epochs=epochs, batch_size=32, learning_rate=1e-3, seed=0, progress=None)
    rows["oracle: labelled shifted frames"] = accuracy(model)
    print(
        f"\n2. augmentation: queue-class accuracy on 400 frames per test set ({n_train} training frames, {epochs} epochs)"
    )
    print(f"   {'model':<32}" + "".join(f"{n:>12}" for n in SHIFTED))
    for name, accs in rows.items():
        print(f"   {name:<32}" + "".join(f"{accs[n]:>12.3f}" for n in SHIFTED))


def robust_table() -> None:
    from kit.ml.federated.task import Net, features
    from kit.ml.robust import add_label_noise

    train = make_dataset(2000, seed=0, size=32)
    test = make_dataset(600, seed=1, size=32, conditions="day")
    x, xt = features(train.x), features(test.x)
    print("\n3. robust loss: numpy network on 16x16 thumbnails, 2000 frames, clean test labels, 3 seeds")
    print(f"   {'label noise':<12}{'cross-entropy':>15}{'GCE q=0.7':>12}")
    for rate in (0.0, 0.2, 0.4):
        scores = {"ce": [], "gce": []}
        for seed in range(3):
            y = add_label_noise(train.queue, rate, n_classes=3, seed=seed)
            for loss in scores:
                net = Net(seed=seed)
                net.fit(x, y, epochs=30, lr=0.02, loss=loss, seed=seed)
                scores[loss].append(net.evaluate(xt, test.queue)["accuracy"])
        print(f"   {rate:<12.0%}{np.mean(scores['ce']):>15.3f}{np.mean(scores['gce']):>12.3f}")


def adaptation_table(shots: tuple[int, ...]) -> None:
    from kit.ml.adapt import Adapter, HeadStore, export_feature_extractor
    from kit.ml.model import load_keras
    from kit.store import Store

    folder = Path(tempfile.mkdtemp())
    head = export_feature_extractor(load_keras("intersection"), folder / "features.tflite")
    adapter = Adapter(folder / "features.tflite", head)
    heads = HeadStore(Store(folder / "kit.db"))
    heads.save(head, note="factory")
    day = make_dataset(400, seed=60, conditions="day")
    print("\n4. on-device adaptation: numpy head on TFLite features, labelled frames of the shifted scene, 3 seeds")
    print(f"   {'scenario':<10}{'frames':>7}{'before':>8}{'after':>8}{'day after':>11}")
    for scenario in ("night", "leaves"):
        test = make_dataset(400, seed=61, conditions=scenario)
        adapter.reset()
        before = adapter.accuracy(test.x, test.queue)
        for n in shots:
            after, day_after = [], []
            for seed in range(3):
                few = make_dataset(n, seed=62 + seed, conditions=scenario)
                adapter.reset()
                t = time.perf_counter()
                adapter.adapt(few.x, few.queue, seed=seed)
                seconds = time.perf_counter() - t
                after.append(adapter.accuracy(test.x, test.queue))
                day_after.append(adapter.accuracy(day.x, day.queue))
            heads.save(
                adapter.head,
                note=f"{scenario}, {n} frames",
                n_examples=n,
                metrics={"before": before, "after": float(np.mean(after))},
            )
            print(
                f"   {scenario:<10}{n:>7}{before:>8.3f}{np.mean(after):>8.3f}{np.mean(day_after):>11.3f}"
                f"   ({seconds:.2f} s to adapt on this machine)"
            )
    print(f"   head versions stored: {len(heads.versions())}, {len(head.to_bytes())} bytes each")


def stream_table(save: str | None = None) -> None:
    from kit.ml.stream_drift import measure

    t0 = time.perf_counter()
    r = measure()
    print(
        f"stream drift monitor (kit.ml.stream_drift), thresholds {r['thresholds']}: windows of "
        f"{r['window_frames']} frames, one a minute ({r['window_minutes']:.0f} min)"
    )
    print(
        f"  normal days, seeds the reference never saw: {r['false_alarms']} of {r['normal_windows']} windows "
        f"raised an alarm ({100 * r['false_alarm_share']:.1f} %, goal <= 5 %)"
    )
    for name, f in r["faults"].items():
        first = "never" if f["windows_to_alarm"] is None else f"{f['windows_to_alarm']} window(s)"
        print(
            f"  {name:11s} from 10:00: first alarm after {first}; {100 * f['alarm_share']:.0f} % of "
            f"{f['windows']} windows while it lasts"
        )
    print(f"  ({time.perf_counter() - t0:.0f} s)")
    if save:
        r["reference"].save(save)
        print(f"  wrote the reference (normal days of seeds 1-4) to {save}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=100, help="seeded windows per drift scenario")
    parser.add_argument("--train", type=int, default=1000, help="training frames for the augmentation table")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--skip-tf", action="store_true", help="skip the tables that need TensorFlow")
    parser.add_argument("--stream", action="store_true", help="only the stream monitor (same light, same hour)")
    parser.add_argument("--save-reference", help="with --stream: write its reference (the app ships it) to this file")
    args = parser.parse_args()
    t = time.perf_counter()
    if args.stream:
        stream_table(args.save_reference)
        return
    drift_table(args.windows)
    if not args.skip_tf:
        augmentation_table(args.train, args.epochs)
    robust_table()
    if not args.skip_tf:
        adaptation_table((10, 30, 60))
    print(f"\n(bench ran in {time.perf_counter() - t:.0f} s)")


if __name__ == "__main__":
    progress.show_bars()  # training, rounds and sweeps show a bar in a terminal
    main()

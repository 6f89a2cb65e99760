"""Federated learning across four intersections: FedAvg vs local-only vs centralized, one run.

FedAvg runs through Flower's Simulation Engine (the same ClientApp/ServerApp a SuperNode runs on a
Pi). All three are scored on the same benchmark frames (one set per intersection, a seed no client
trains on). Also printed: what each approach sends over the network.

    .venv/bin/python bench/federated.py [--rounds 10] [--samples 600]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from kit import progress
from kit.ml.federated.server_app import benchmark_sets
from kit.ml.federated.simulation import centralized, local_only, simulate
from kit.ml.federated.task import FRAME_SIZE, PROFILES, Net


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--local-epochs", type=int, default=5)
    parser.add_argument("--samples", type=int, default=600, help="frames per intersection (70 %% for training)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    n_clients = len(PROFILES)
    kw = dict(rounds=args.rounds, local_epochs=args.local_epochs, samples_per_client=args.samples, seed=args.seed)

    t = time.perf_counter()
    history = simulate(num_clients=n_clients, **kw)
    t_fed = time.perf_counter() - t
    bench = benchmark_sets(n_clients, n=args.samples // 2, seed=args.seed)
    t = time.perf_counter()
    local = local_only(bench, **kw)
    central = centralized(bench, **kw)
    t_base = time.perf_counter() - t

    print(
        f"Federated learning, {n_clients} intersections, {args.samples} frames each, "
        f"{args.rounds} rounds x {args.local_epochs} local epochs (seed {args.seed})"
    )
    print("\nglobal model accuracy on all intersections' benchmark frames, by round (FedAvg):")
    for r, acc in zip(history["rounds"], history["accuracy"]):
        bar = "#" * int(round(acc * 40))
        print(f"   round {r:>2}: {acc:.3f} {bar}")

    names = [p.name for p in PROFILES]
    print("\naccuracy per intersection (own benchmark frames) and overall:")
    print(f"   {'approach':<24}" + "".join(f"{n:>15}" for n in names) + f"{'overall':>10}")
    print(
        f"   {'local-only (own model)':<24}"
        + "".join(f"{a:>15.3f}" for a in local["own"])
        + f"{np.mean(local['overall']):>10.3f}"
    )
    print(
        f"   {'FedAvg (global model)':<24}"
        + "".join(f"{a:>15.3f}" for a in history["per_client"][-1])
        + f"{history['accuracy'][-1]:>10.3f}"
    )
    print(
        f"   {'centralized (pooled)':<24}"
        + "".join(f"{a:>15.3f}" for a in central["per_client"])
        + f"{central['overall']:>10.3f}"
    )
    print("   (local-only 'overall': mean over the four local models of their accuracy on every intersection)")

    model_bytes = sum(w.nbytes for w in Net().get_weights())
    train_frames = int(round(args.samples * 0.7))
    frame_bytes = FRAME_SIZE * FRAME_SIZE
    print("\nbytes over the network per intersection:")
    print(
        f"   FedAvg:      {2 * args.rounds} x {model_bytes} B of weights (down and up) = {2 * args.rounds * model_bytes / 1e3:.0f} kB,"
        " no frame leaves the intersection"
    )
    print(
        f"   centralized: {train_frames} frames x {frame_bytes} B = {train_frames * frame_bytes / 1e3:.0f} kB of camera frames"
        f" ({FRAME_SIZE}x{FRAME_SIZE} gray; a real camera frame is far larger)"
    )
    replies = history["manifest"]
    print(
        f"   replies seen by the server: {len(replies)}, records in each: "
        f"{sorted({k for r in replies for k in r['content']})}"
    )
    print(f"\ntime: FedAvg simulation {t_fed:.0f} s (Ray start-up included), both baselines {t_base:.0f} s")


if __name__ == "__main__":
    progress.show_bars()  # training, rounds and sweeps show a bar in a terminal
    main()

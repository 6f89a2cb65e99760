"""Is there anything left in what the kit sees? One step of policy iteration on the capped rule, measured.

At about a tenth of the capped kit rule's decisions (``kit_actuated(**KIT_CAPPED)``, the crossing limit and the
maximum green kept), the junction is forked twice (:mod:`kit.control.foresight`'s rollouts, the real demand to come)
to price *advance now* against *keep one more second*, each followed by the rule for ``--horizon`` seconds (cost:
vehicle-seconds lost plus pedestrians waiting). The policy's network shape is then fitted to predict that exact
difference from the kit's features alone, on the first days, and tested on the last ones: how often it agrees with
the exact choice, and how much of the exact choice's one-step saving over the rule it recovers. Last, the rule
overridden by the network where it is confident drives the validation days. Needs the ``[sumo,train]`` extras.

    python bench/rollout_labels.py [--days 20] [--first-seed 100] [--sample 0.1] [--jobs 2]

Notes 10 reports ``--days 20`` (about 4-5 minutes per labelled day on one busy core).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

CROSSING_LIMIT_S = 19.0  # KIT_CAPPED's ped_max_wait_s


def _forced(view) -> bool:
    from kit.control.learned import past_max_green

    limit = view.phase == "car_green" and view.peds_waiting and view.ped_wait_s >= CROSSING_LIMIT_S
    return past_max_green(view) or bool(limit)


def label_day(seed: int, sample: float, horizon_s: float, hours: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(features, cost of keeping minus cost of advancing, the rule's choice) at sampled decisions of one day."""
    from kit.control.actuated import KIT_CAPPED, kit_actuated
    from kit.control.evaluate import Sensors, step
    from kit.control.foresight import _forked_cost
    from kit.control.learned import features
    from kit.control.phases import PhaseMachine
    from kit.sim.sumo.junction import SumoJunction

    rule = kit_actuated(**KIT_CAPPED)
    rng = random.Random(f"label/{seed}")
    xs, gains, rules = [], [], []
    with SumoJunction(seed, hours=hours + horizon_s / 3600 + 0.01) as junction:
        machine, sensors = PhaseMachine(), Sensors(junction, detectors=False)
        for _ in range(int(hours * 3600)):
            advance = False
            if machine.can_advance:
                view = sensors.view(machine)
                advance = _forced(view) or bool(rule(view))
                if not _forced(view) and rng.random() < sample:
                    now = _forked_cost(junction, machine, sensors, rule, 0.0, horizon_s, 1.0)
                    later = _forked_cost(junction, machine, sensors, rule, 1.0, horizon_s, 1.0)
                    xs.append(features(view))
                    gains.append(later - now)
                    rules.append(int(advance))
            step(junction, machine, sensors, advance)
    return np.array(xs, np.float32), np.array(gains, np.float32), np.array(rules)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=20, help="labelled training days (the last fifth are the test)")
    parser.add_argument("--first-seed", type=int, default=100)
    parser.add_argument("--sample", type=float, default=0.1, help="share of the rule's decisions to label")
    parser.add_argument("--horizon", type=float, default=90.0, help="seconds each rollout plays")
    parser.add_argument("--hours", type=float, default=24.0, help="simulated hours per labelled day")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0, help="the network's seed")
    args = parser.parse_args(argv)
    if args.days < 2 or not 0 < args.sample <= 1 or args.horizon <= 0 or args.hours <= 0 or args.jobs < 1:
        print(
            f"--days={args.days}, --sample={args.sample}, --horizon={args.horizon}, --hours={args.hours}, "
            f"--jobs={args.jobs}: give 2 or more days, a share in (0, 1], positive times and 1 or more jobs",
            file=sys.stderr,
        )
        return 2
    from kit.control.rl.env import TRAIN_SEEDS

    seeds = list(range(args.first_seed, args.first_seed + args.days))
    if not set(seeds) <= set(TRAIN_SEEDS):
        print(f"--first-seed={args.first_seed}: the days must be training seeds ({TRAIN_SEEDS})", file=sys.stderr)
        return 2
    started = time.perf_counter()
    # Labelling forks the simulation: do it before TensorFlow is imported in this process.
    with ProcessPoolExecutor(args.jobs) as pool:
        days = list(pool.map(label_day, seeds, *zip(*[(args.sample, args.horizon, args.hours)] * len(seeds))))
    n_test = max(1, len(days) // 5)
    cat = [np.concatenate(parts) for parts in zip(*days[:-n_test])]
    x, gain, _ = cat
    xt, gt, rt = [np.concatenate(parts) for parts in zip(*days[-n_test:])]
    print(
        f"{len(seeds)} days labelled [{time.perf_counter() - started:.0f} s]: {len(gain)} decisions to fit, {len(gt)} to test"
    )
    print(
        f"test: advancing is cheaper at {(gt > 0).mean():.1%} of the decisions (true state, real future); "
        f"the rule agrees with the cheaper choice at {((gt > 0) == (rt == 1)).mean():.1%}"
    )

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    from kit.control.learned import N_FEATURES, features

    keras.utils.set_random_seed(args.seed)
    inp = keras.Input(shape=(N_FEATURES,))
    h = keras.layers.Dense(64, activation="relu")(keras.layers.Dense(64, activation="relu")(inp))
    model = keras.Model(inp, keras.layers.Dense(1)(h))
    model.compile(keras.optimizers.Adam(1e-3), loss=keras.losses.Huber(1.0))
    unit = 100.0  # vehicle-seconds per unit of the network's output
    model.fit(x, np.clip(gain / unit, -5, 5), epochs=40, batch_size=256, verbose=0, validation_split=0.1)
    weights = model.get_weights()

    def predict(batch: np.ndarray) -> np.ndarray:
        out = batch
        for i in range(0, len(weights) - 2, 2):
            out = np.maximum(out @ weights[i] + weights[i + 1], 0.0)
        return (out @ weights[-2] + weights[-1])[..., 0]

    pred = predict(xt)
    exact = np.abs(gt)[(gt > 0) != (rt == 1)].sum()
    print(f"network on the kit's features agrees with the cheaper choice at {((pred > 0) == (gt > 0)).mean():.1%}")
    for margin in (0.0, 0.5, 1.0):
        advance = np.where(rt == 1, pred > -margin, pred > margin)
        saved = float((gt * (advance.astype(int) - rt)).sum())
        print(
            f"  overriding the rule where the network is {margin:g} units sure: one-step saving {saved:.0f} of the "
            f"exact choice's {exact:.0f} vehicle-seconds ({saved / exact:.1%})"
        )

    from kit.control.actuated import KIT_CAPPED, kit_actuated
    from kit.control.evaluate import evaluate
    from kit.control.rl.env import VALIDATION_SEEDS

    rule = kit_actuated(**KIT_CAPPED)

    def network(view) -> bool:
        return _forced(view) or bool(predict(features(view)[None, :])[0] > 0)

    def overridden(view) -> bool:
        if _forced(view):
            return True
        sure = predict(features(view)[None, :])[0]
        return bool(sure > -0.5) if rule(view) else bool(sure > 0.5)

    for name, policy in (
        ("the rule", rule),
        ("the network alone", network),
        ("the rule, overridden at 0.5", overridden),
    ):
        r = evaluate(policy, seeds=list(VALIDATION_SEEDS), hours=24.0, detectors=False)
        print(f"validation days: {name}: {r.mean_delay_s:.2f} s, pedestrian p95 {r.p95_ped_wait_s:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

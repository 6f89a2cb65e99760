"""Train the kit's signal policy: a small double DQN in Keras, exported to an int8 ``.tflite``.

The network is tiny (29 features -> 64 -> 64 -> 2 action values), so the int8 file is a few KB and a
decision takes microseconds on the device. Targets are 3-step double-DQN returns; after exploration,
snapshots are exported to int8 as the device runs them and scored on validation days (demand seeds neither
trained on nor held out), and the best one is kept. Training runs on one CPU thread with every random
stream seeded, so one command and one seed give one policy:

    nice python -m kit.control.rl.dqn --seed 0 --steps 60000 --tries 3 --out kit/models/signal_policy.tflite

(then the held-out days for the card; the shipped policy and its card, ``kit/models/signal_policy.json``,
were made by that command, and the card records how long it took). ``--tries 3`` trains seeds 0, 1 and 2 and
keeps the best of them on the validation days (every try's score on the card); ``--vehicles time_lost`` makes the
reward count the seconds vehicles lose instead of the vehicles standing still.
A short run is what lab 10 does:

    >>> from kit.control.rl.dqn import train
    >>> result = train(seed=0, steps=300, warmup=100, minutes=5)       # doctest: +SKIP
    >>> result.model.output_shape                                       # doctest: +SKIP
    (None, 2)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kit import progress
from kit.control.actuated import KIT_CAPPED, kit_actuated
from kit.control.learned import ACTIONS, N_FEATURES, POLICY_NAME
from kit.control.rl.env import VALIDATION_SEEDS, VEHICLE_SIGNALS, Reward, SignalEnv, delay_reward

#: The teacher of ``--demonstrations``: the gap-out rule on the kit's sensors with the crossing served after 19 s
#: (``bench/control.py``'s actuated_kit_capped); it sees exactly what the policy sees.
DEMONSTRATOR = KIT_CAPPED
#: Seeds of the demonstrator's episodes start here (the agent's own episodes are drawn from the training seed).
DEMONSTRATION_SEED = 10_000


@dataclass
class TrainResult:
    model: Any  #: the Keras Q-network
    episodes: list[float] = field(default_factory=list)  #: return of each finished episode
    observations: np.ndarray | None = None  #: a sample of observations (the int8 export's calibration data)
    seconds: float = 0.0
    settings: dict[str, Any] = field(default_factory=dict)


class Replay:
    """Transitions with ``n_step`` returns discounted per simulated second (``gamma ** seconds`` of each step)."""

    def __init__(self, size: int, n_step: int, gamma: float) -> None:
        self.size, self.n_step, self.gamma = size, n_step, gamma
        self.S = np.zeros((size, N_FEATURES), np.float32)
        self.S2 = np.zeros_like(self.S)
        self.A = np.zeros(size, np.int64)
        self.R = np.zeros(size, np.float32)
        self.D = np.zeros(size, np.float32)  # the discount still to apply to the bootstrap value
        self.count = 0
        self.pending: deque[int] = deque()

    def add(self, obs: np.ndarray, action: int, reward: float, obs2: np.ndarray, seconds: float, done: bool) -> None:
        i, g = self.count % self.size, self.gamma**seconds
        S, S2, A, R, D = self.S, self.S2, self.A, self.R, self.D
        for j in self.pending:  # this episode's last decisions still collect rewards (n-step returns)
            R[j] += D[j] * reward
            D[j] *= g
            S2[j] = obs2
        S[i], A[i], R[i], S2[i], D[i] = obs, action, reward, obs2, g
        self.pending.append(i)
        if len(self.pending) >= self.n_step:
            self.pending.popleft()
        if done:
            self.pending.clear()  # the time limit cuts the returns short; they still bootstrap from the last state
        self.count += 1

    def filled(self) -> int:
        return min(self.count, self.size)

    def batch(self, idx: np.ndarray) -> tuple[np.ndarray, ...]:
        return self.S[idx], self.A[idx], self.R[idx], self.S2[idx], self.D[idx]


def demonstrate(env: SignalEnv, decisions: int, *, seed: int, n_step: int, gamma: float) -> Replay:
    """``decisions`` of the demonstrator, :data:`DEMONSTRATOR` on the kit's sensors, on training episodes of ``env``."""
    rule = kit_actuated(**DEMONSTRATOR)
    replay = Replay(decisions, n_step, gamma)
    obs, _ = env.reset(seed=seed)
    for _ in range(decisions):
        obs2, r, done, _, info = env.step(int(rule(env.view)))
        replay.add(obs, info["action"], r, obs2, info["seconds"], done)
        obs = env.reset()[0] if done else obs2
    env.close()
    return replay


def build_model(hidden: int = 64, seed: int = 0) -> Any:
    """The Q-network: features in, one value per action (keep, advance) out."""
    import keras

    keras.utils.set_random_seed(seed)
    x = keras.Input(shape=(N_FEATURES,), name="features")
    h = keras.layers.Dense(hidden, activation="relu")(x)
    h = keras.layers.Dense(hidden, activation="relu")(h)
    q = keras.layers.Dense(len(ACTIONS), name="q")(h)
    return keras.Model(x, q, name="signal_policy")


def _forward(weights: list[np.ndarray], x: np.ndarray) -> np.ndarray:
    h = x
    for i in range(0, len(weights) - 2, 2):
        h = np.maximum(h @ weights[i] + weights[i + 1], 0.0)
    return h @ weights[-2] + weights[-1]


def centred(model: Any) -> Any:
    """The same network with its two action values centred on their mean (what :func:`export` converts).

    The choice is the same (argmax ignores a common offset), but an int8 output then spends its 256 steps on
    the difference between *keep* and *advance*, not on the values' common level (tens of units at a busy
    hour): quantized uncentred, the two values of a busy moment fall on the same step, read as a tie, and the
    policy keeps a green without end. The centring is folded into the last layer's weights.
    """
    out = build_model(model.layers[1].units, 0)
    weights = model.get_weights()
    centre = np.eye(len(ACTIONS), dtype=np.float32) - 1.0 / len(ACTIONS)
    out.set_weights([*weights[:-2], weights[-2] @ centre, weights[-1] @ centre])
    return out


#: The crossing's goal in the selection score: a pedestrian p95 wait past it costs half a second of delay per second.
PED_P95_S = 25.0


def validation_score(
    model: Any, representative: np.ndarray, *, seeds=VALIDATION_SEEDS, hours: float = 24.0
) -> tuple[float, dict]:
    """Score a snapshot of the Q-network (lower is better) on validation demand, never on held-out seeds.

    The snapshot is scored as the device would run it: exported to int8 (calibrated on ``representative``
    observations) and run by ModelHost. Its greedy policy drives whole days of ``seeds``; the score is the mean
    vehicle delay plus half of any pedestrian p95 wait beyond :data:`PED_P95_S` (the goal: less delay, the
    crossing no worse off).
    """
    from kit.control.evaluate import evaluate
    from kit.control.learned import LearnedPolicy
    from kit.ml import tflite

    content = tflite.convert(centred(model), "int8", representative=representative)
    policy = LearnedPolicy(f"{POLICY_NAME}.tflite", content=content)
    r = evaluate(policy, seeds=list(seeds), hours=hours, detectors=False)
    return r.mean_delay_s + 0.5 * max(0.0, r.p95_ped_wait_s - PED_P95_S), r.row()


def train(
    *,
    seed: int = 0,
    steps: int = 60_000,
    minutes: float = 30.0,
    reward: Reward = delay_reward,
    gamma: float = 0.99,
    lr: float = 5e-4,
    batch: int = 64,
    warmup: int = 2_000,
    buffer: int = 100_000,
    target_every: int = 500,
    train_every: int = 2,
    group: int = 8,
    n_step: int = 3,
    validate_every: int = 0,
    validate_hours: float = 24.0,
    epsilon_end: float = 0.05,
    explore_fraction: float = 0.3,
    hidden: int = 64,
    vehicles: str = "halting",
    demonstrations: int = 0,
    margin: float = 0.3,
    demo_weight: float = 1.0,
    pretrain: int = 4_000,
    log: Callable[[str], None] | None = print,
    env: SignalEnv | None = None,
) -> TrainResult:
    """Train a double DQN on :class:`SignalEnv` for ``steps`` decisions.

    With ``validate_every``, once exploration has ended the network is scored on validation demand
    (:func:`validation_score`) at the first episode end after every ``validate_every`` decisions and at the
    end; the best snapshot is the result (DQN's greedy policy can get worse as training goes on).

    With ``demonstrations``, DQN learns from a teacher first (as in DQfD, Hester et al. 2018): that many decisions
    of :data:`DEMONSTRATOR` are recorded, the network trains ``pretrain`` minibatches on them alone (3-step TD
    plus a large-margin loss that makes the teacher's choice worth ``margin`` more than the other), then acts
    itself with exploration at ``epsilon_end`` from the start, every minibatch of its own paired with one of
    the teacher's (TD and ``demo_weight`` times the margin loss). The snapshot after pretraining is scored too.
    """
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()
    rng = np.random.default_rng(seed)
    model = build_model(hidden, seed)
    target = build_model(hidden, seed)
    target.set_weights(model.get_weights())
    optimizer = tf.keras.optimizers.Adam(lr)
    huber = tf.keras.losses.Huber()

    def targets(r, s2, discount):
        """Double-DQN targets: the online network picks the next action, the target network values it."""
        best = tf.argmax(model(s2, training=False), axis=1)
        q_next = tf.gather(target(s2, training=False), best, axis=1, batch_dims=1)
        return r + discount * q_next  # episodes end by a time limit only: always bootstrap

    @tf.function(reduce_retracing=True)
    def learn(s, a, r, s2, discount):
        # `group` minibatches, one gradient step each, in one call: TensorFlow's per-call cost, not the
        # arithmetic of this tiny network, is what a step of training costs on a CPU.
        loss = tf.constant(0.0)
        for k in tf.range(group):  # a graph loop: traced once whatever the group
            y = targets(r[k], s2[k], discount[k])
            with tf.GradientTape() as tape:
                q = tf.gather(model(s[k], training=True), a[k], axis=1, batch_dims=1)
                loss = huber(tf.stop_gradient(y), q)
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    def demo_loss(s, a, r, s2, discount):
        """TD error and large-margin loss on the teacher's transitions."""
        y = targets(r, s2, discount)
        q = model(s, training=True)
        chosen = tf.gather(q, a, axis=1, batch_dims=1)
        above = tf.reduce_max(q + margin * (1.0 - tf.one_hot(a, len(ACTIONS))), axis=1) - chosen
        return huber(tf.stop_gradient(y), chosen) + demo_weight * tf.reduce_mean(above)

    @tf.function(reduce_retracing=True)
    def learn_with_teacher(s, a, r, s2, discount, ds, da, dr, ds2, dd, own):
        for k in tf.range(group):
            with tf.GradientTape() as tape:
                loss = demo_loss(ds[k], da[k], dr[k], ds2[k], dd[k])
                if own:  # the agent's own transitions too (not during pretraining)
                    q = tf.gather(model(s[k], training=True), a[k], axis=1, batch_dims=1)
                    loss += huber(tf.stop_gradient(targets(r[k], s2[k], discount[k])), q)
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    env = env or SignalEnv(minutes, reward=reward, vehicles=vehicles)
    started = time.perf_counter()  # the teacher's decisions and pretraining count as training time
    teacher = None
    if demonstrations:
        teacher = demonstrate(env, demonstrations, seed=DEMONSTRATION_SEED + seed, n_step=n_step, gamma=gamma)
        for k in range(pretrain // group):
            d = teacher.batch(rng.integers(0, teacher.filled(), (group, batch)))
            learn_with_teacher(*d, *d, False)
            if k % max(1, target_every // group) == 0:
                target.set_weights(model.get_weights())
        target.set_weights(model.get_weights())
        explore_fraction = 0.0  # the network already acts like the teacher: explore at epsilon_end only
    size = min(buffer, steps)
    replay = Replay(size, n_step, gamma)
    weights = model.get_weights()
    episode, returns = 0.0, []
    explore_steps = int(explore_fraction * steps)
    next_check = max(explore_steps, warmup) + validate_every
    snapshots: list[dict[str, Any]] = []
    best: list[Any] = []

    def _check(step: int) -> None:
        w = model.get_weights()
        source = replay if step else teacher  # the pretrained snapshot is calibrated on the teacher's observations
        filled = source.filled()
        sample = source.S[np.random.default_rng(step).choice(filled, size=min(1000, filled), replace=False)]
        score, row = validation_score(model, sample, hours=validate_hours)
        snapshots.append(
            {
                "step": step,
                "score": round(score, 3),
                "mean_delay_s": row["mean_delay_s"],
                "p95_ped_wait_s": row["p95_ped_wait_s"],
            }
        )
        if log:
            log(
                f"step {step}: validation score {score:.2f} ({row['mean_delay_s']} s mean delay, "
                f"pedestrian p95 {row['p95_ped_wait_s']} s)"
            )
        if not best or score < best[0]:
            best[:] = [score, step, w, sample]  # the sample too: the exported file is the one scored

    if teacher is not None and validate_every:
        _check(0)
    obs, _ = env.reset(seed=seed)
    for t in progress.bar(range(steps), desc="DQN training", unit="decision"):
        eps = max(epsilon_end, 1.0 - (1.0 - epsilon_end) * t / max(1.0, explore_fraction * steps))
        if rng.random() < eps:
            action = int(rng.random() < 0.5)
        else:
            action = int(np.argmax(_forward(weights, obs[None, :])[0]))
        obs2, r, done, _, info = env.step(action)
        action = info.get("action", action)  # what the junction did (a maximum green may have overridden a keep)
        replay.add(obs, action, r, obs2, info["seconds"], done)
        episode += r
        obs = obs2
        if done:
            returns.append(episode)
            if log and len(returns) % 10 == 0:
                log(
                    f"step {t + 1}/{steps}: episode {len(returns)}, mean return of last 10 "
                    f"{np.mean(returns[-10:]):.1f}, epsilon {eps:.2f}, {time.perf_counter() - started:.0f} s"
                )
            episode = 0.0
            if validate_every and t + 1 >= next_check:
                env.close()  # libsumo runs one simulation per process
                _check(t + 1)
                next_check = t + 1 + validate_every
            obs, _ = env.reset()
        every = train_every * group  # one minibatch per train_every decisions, `group` of them per call
        if t >= warmup and t % every == 0:
            own = replay.batch(rng.integers(0, replay.filled(), (group, batch)))
            if teacher is None:
                learn(*own)
            else:
                learn_with_teacher(*own, *teacher.batch(rng.integers(0, teacher.filled(), (group, batch))), True)
            if t % 50 < every:
                weights = model.get_weights()
            if t % target_every < every:
                target.set_weights(model.get_weights())
    env.close()
    if validate_every:
        if not snapshots or snapshots[-1]["step"] != steps:
            _check(steps)
        model.set_weights(best[2])
    filled = replay.filled()
    sample = best[3] if best else replay.S[rng.choice(filled, size=min(1000, filled), replace=False)]
    settings = dict(
        seed=seed,
        steps=steps,
        minutes=minutes,
        gamma=gamma,
        lr=lr,
        batch=batch,
        warmup=warmup,
        buffer=buffer,
        target_every=target_every,
        train_every=train_every,
        group=group,
        n_step=n_step,
        validate_every=validate_every,
        validation_seeds=list(VALIDATION_SEEDS) if validate_every else [],
        validate_hours=validate_hours,
        chosen_step=best[1] if best else steps,
        validation_score=round(best[0], 3) if best else None,
        snapshots=snapshots,
        epsilon_end=epsilon_end,
        explore_fraction=explore_fraction,
        hidden=hidden,
        reward=getattr(reward, "__name__", "reward"),
        vehicles=env.vehicles,
        demonstrations=demonstrations,
        **(
            {"demonstrator": DEMONSTRATOR, "margin": margin, "demo_weight": demo_weight, "pretrain": pretrain}
            if demonstrations
            else {}
        ),
    )
    return TrainResult(model, returns, sample, time.perf_counter() - started, settings)


def export(result: TrainResult, path: str | Path) -> Path:
    """Write the int8 policy (calibrated on observations seen in training)."""
    from kit.ml import tflite

    path = Path(path)
    tflite.convert(centred(result.model), "int8", representative=result.observations, path=path)
    return path


def write_card(result: TrainResult, path: Path, evaluation: dict[str, Any] | None, command: str) -> Path:
    """The policy's model card next to it (``NAME.json``)."""
    from kit.ml.card import ModelCard, file_sha256
    from kit.ml.host import ModelHost

    card = ModelCard(
        name=path.stem,
        task="keep or advance the green of the kit's junction (SUMO), from the kit's sensors",
        files=[path.name],
        sha256={path.name: file_sha256(path)},
        size_bytes=path.stat().st_size,
        precision="int8",
        inputs={"features": {"shape": [1, N_FEATURES], "what": "kit.control.learned.features"}},
        outputs={
            name: {"shape": [1, len(ACTIONS)], "what": "action values (keep, advance)"}
            for name in ModelHost(path, verify=False).output_names
        },
        reproduce=command,
        limitations=(
            "Trained and measured on the kit's SUMO junction (straight-through traffic, one lane each way, "
            "the kit's demand profile). Observations are the kit's sensors only; a different junction, "
            "detector layout or demand needs retraining. The phase machine enforces every minimum."
        ),
        details={
            "training": result.settings,
            "training_seconds": round(result.seconds, 1),
            "episodes": len(result.episodes),
            "last_10_episode_return": round(float(np.mean(result.episodes[-10:])), 2) if result.episodes else None,
            "held_out_evaluation": evaluation or {},
        },
        folder=path.parent,
    )
    return card.save(path.with_suffix(".json"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kit.control.rl.dqn", description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=60_000)
    parser.add_argument("--minutes", type=float, default=30.0, help="simulated minutes per episode")
    parser.add_argument("--out", default=f"kit/models/{POLICY_NAME}.tflite")
    parser.add_argument(
        "--evaluate-hours", type=float, default=24.0, help="simulated hours per held-out seed for the card (0: skip)"
    )
    parser.add_argument(
        "--tries",
        type=int,
        default=1,
        help="train with seeds SEED, SEED+1, ... (this many) and keep the best on validation demand (needs validation)",
    )
    parser.add_argument(
        "--vehicles",
        choices=VEHICLE_SIGNALS,
        default="halting",
        help="what the reward counts of the vehicles each second: standing still, or the seconds they lose",
    )
    parser.add_argument(
        "--demonstrations",
        type=int,
        default=0,
        metavar="N",
        help="first learn from N decisions of the kit-sensor rule with the crossing served after 19 s (0: none)",
    )
    parser.add_argument(
        "--validate-every",
        type=int,
        default=5_000,
        help="score snapshots on validation demand every N decisions after exploration; keep the best (0: the last)",
    )
    args = parser.parse_args(argv)
    if args.tries < 1 or (args.tries > 1 and not args.validate_every):
        print(
            f"--tries={args.tries}, --validate-every={args.validate_every}: give 1 or more tries, and with more than "
            "one a --validate-every above 0 (the tries are compared on validation demand)",
            file=sys.stderr,
        )
        return 2
    if args.steps < 1 or not args.minutes > 0 or args.validate_every < 0 or args.demonstrations < 0:
        print(
            f"--steps={args.steps}, --minutes={args.minutes}, --validate-every={args.validate_every}, "
            f"--demonstrations={args.demonstrations}: steps and minutes must be positive, validate-every and "
            "demonstrations 0 or more",
            file=sys.stderr,
        )
        return 2
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    # One thread: reproducible sums, and the other core stays free for everyone else.
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    result, tries = None, []
    for seed in range(args.seed, args.seed + args.tries):
        run = train(
            seed=seed,
            steps=args.steps,
            minutes=args.minutes,
            warmup=min(2_000, max(1, args.steps // 10)),
            validate_every=args.validate_every,
            vehicles=args.vehicles,
            demonstrations=args.demonstrations,
        )
        score = run.settings["validation_score"]
        tries.append(
            {
                "seed": seed,
                "validation_score": score,
                "chosen_step": run.settings["chosen_step"],
                "seconds": run.seconds,
            }
        )
        if args.tries > 1:
            print(f"seed {seed}: best validation score {score}")
        if result is None or score < result.settings["validation_score"]:
            result = run
    if args.tries > 1:
        result.settings["tries"] = tries  # every seed's validation score; the best is the policy
        result.seconds = sum(t["seconds"] for t in tries)  # the card's training time: all of them
        for t in tries:
            t["seconds"] = round(t["seconds"], 1)
    path = export(result, args.out)
    extra = (
        (f" --tries {args.tries}" if args.tries > 1 else "")
        + (f" --vehicles {args.vehicles}" if args.vehicles != "halting" else "")
        + (f" --demonstrations {args.demonstrations}" if args.demonstrations else "")
    )
    command = (
        f"nice python -m kit.control.rl.dqn --seed {args.seed} --steps {args.steps} --minutes {args.minutes:g} "
        f"--validate-every {args.validate_every}{extra} --out {args.out}"
    )
    # The new file's card first: a card left from an earlier policy would make ModelHost refuse the new file.
    write_card(result, path, None, command)
    evaluation = None
    if args.evaluate_hours > 0:
        from kit.control.evaluate import evaluate
        from kit.control.learned import LearnedPolicy
        from kit.sim.sumo.demand import HELD_OUT_SEEDS

        r = evaluate(LearnedPolicy.factory(path), seeds=HELD_OUT_SEEDS, hours=args.evaluate_hours)
        evaluation = {"seeds": list(HELD_OUT_SEEDS), "hours_per_seed": args.evaluate_hours, **r.row()}
        print(json.dumps(evaluation))
    card = write_card(result, path, evaluation, command)
    print(f"policy: {path} ({path.stat().st_size} bytes), card: {card}, trained in {result.seconds:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""A gymnasium environment over the SUMO junction: observe what the kit senses, keep or advance.

One episode is ``minutes`` of a training demand seed from a random time of day (weighted towards
the busy hours). The agent decides only when a green may end (past its minimum); fixed clearances
run by themselves in between, and their reward is summed into the step. The observation is
:func:`kit.control.learned.features` (the kit's sensors and camera model); the reward may use what
only the simulator knows (how many vehicles stand still, who waits at the kerb): it is a training
signal, never an input of the policy on the device.

    >>> env = SignalEnv(minutes=5)
    >>> obs, info = env.reset(seed=0)
    >>> obs.shape
    (29,)
    >>> obs, reward, done, truncated, info = env.step(1)
    >>> reward <= 0 and not done
    True
    >>> env.close()
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

from kit.control.evaluate import Sensors
from kit.control.evaluate import step as control_step
from kit.control.learned import N_FEATURES, features, past_max_green
from kit.control.phases import Minimums, PhaseMachine
from kit.errors import UsageError
from kit.sim.sumo.demand import HELD_OUT_SEEDS

#: Demand seeds for training episodes (the held-out seeds are never among them).
TRAIN_SEEDS = range(0, 990)
#: Demand seeds to choose among a training run's snapshots (neither trained on nor held out).
VALIDATION_SEEDS = (990, 991, 992)
#: Start hours of training episodes with their weights (the peaks matter most; night is easy).
START_HOURS = {h: (3 if 6 <= h <= 19 else 1) for h in range(24)}
assert not set(TRAIN_SEEDS) & set(HELD_OUT_SEEDS) and not set(VALIDATION_SEEDS) & set(HELD_OUT_SEEDS)
assert not set(TRAIN_SEEDS) & set(VALIDATION_SEEDS)

Reward = Callable[[int, int, float], float]
#: What the reward's vehicle count can be (see :class:`SignalEnv`).
VEHICLE_SIGNALS = ("halting", "time_lost")


def delay_reward(halting: int, peds_waiting: int, ped_wait_s: float) -> float:
    """Per second: minus the vehicles standing still and the people waiting (one person as one car),
    and a fairness term once the oldest request has waited past 25 s (0.2 per second late: a request
    a minute old weighs as much as seven standing cars, so nobody is starved, yet pedestrians do not
    outweigh the traffic at every moment)."""
    late = max(0.0, ped_wait_s - 25.0) if peds_waiting else 0.0
    return -(halting + 1.0 * peds_waiting + 0.2 * late) / 10.0


class SignalEnv(gym.Env):
    """Keep (0) or advance (1) the green of the kit's junction in SUMO.

    :param minutes: episode length in simulated minutes.
    :param reward: ``reward(halting vehicles, pedestrians waiting, oldest request's wait s)`` per second.
    :param seeds: demand seeds to draw episodes from.
    :param start_hours: {hour: weight} to draw the episode's start from.
    :param keep_s: how long a *keep* holds before the agent is asked again.
    :param vehicles: what the reward's first argument counts each second: ``"halting"``, the vehicles standing
        still, or ``"time_lost"``, the vehicle-seconds lost (:meth:`~kit.sim.sumo.junction.SumoJunction.time_lost`:
        braking and pulling away count too, and vehicles that cannot enter a full arm), which is what the results
        measure as delay.

    ``step`` returns the reward summed over the seconds it covered, and ``info["seconds"]``, so a
    learner can discount by time (a step that runs a whole clearance lasts longer than a *keep*), and
    ``info["action"]``, the action taken: past :data:`~kit.control.learned.MAX_GREEN_S` with someone waiting
    a *keep* becomes *advance*, as on the device.
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(
        self,
        minutes: float = 30.0,
        *,
        reward: Reward = delay_reward,
        seeds=TRAIN_SEEDS,
        start_hours: dict[int, float] | None = None,
        minimums: Minimums | None = None,
        keep_s: float = 2.0,
        vehicles: str = "halting",
    ) -> None:
        if vehicles not in VEHICLE_SIGNALS:
            raise UsageError(f"vehicles={vehicles!r}: use one of {', '.join(VEHICLE_SIGNALS)}")
        self.vehicles = vehicles
        self.minutes = float(minutes)
        self.keep_s = float(keep_s)
        self.reward_fn = reward
        self.seeds = list(seeds)
        self.start_hours = start_hours or START_HOURS
        self.minimums = minimums
        self.observation_space = gym.spaces.Box(low=-1.0, high=2.0, shape=(N_FEATURES,), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self.junction = None
        self._rng = random.Random(0)

    def _close_run(self) -> None:
        if self.junction is not None:
            self.junction.close()
            self.junction = None

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        from kit.sim.sumo.junction import SumoJunction

        super().reset(seed=seed)
        if seed is not None:
            self._rng = random.Random(seed)
        self._close_run()
        demand = self._rng.choice(self.seeds)
        hours, weights = zip(*self.start_hours.items())
        hour = self._rng.choices(hours, weights)[0]
        start = f"2026-10-15T{hour:02d}:{self._rng.randrange(0, 60, 5):02d}:00"
        self.junction = SumoJunction(demand, start=start, hours=self.minutes / 60 + 0.05)
        self.machine = PhaseMachine(self.minimums)
        self.sensors = Sensors(self.junction, detectors=False)  # the policy reads the kit's sensors only
        self._end = self.minutes * 60
        reward, done = self._run_until_decision()
        self.view = self.sensors.view(self.machine)
        return features(self.view), {"demand_seed": demand, "start": start}

    def _tick(self, advance: bool) -> float:
        j = self.junction
        control_step(j, self.machine, self.sensors, advance)
        if self.machine.phase == "ped_green":
            self.sensors.request_since = None
        waiting = j.pedestrians_waiting()
        wait_s = 0.0 if self.sensors.request_since is None else j.elapsed - self.sensors.request_since
        held = j.time_lost() if self.vehicles == "time_lost" else sum(j.queues().values())
        return self.reward_fn(held, waiting, wait_s)

    def _run_until_decision(self) -> tuple[float, bool]:
        total = 0.0
        while not self.machine.can_advance:
            if self.junction.elapsed >= self._end:
                return total, True
            total += self._tick(False)
        return total, self.junction.elapsed >= self._end

    def step(self, action: int):
        began = self.junction.elapsed
        if past_max_green(self.view):
            action = 1  # the maximum green ends it, as on the device (LearnedPolicy): learn from what happened
        reward = self._tick(bool(action))
        if not action:  # keep: hold the green for keep_s before asking again
            while self.junction.elapsed - began < self.keep_s - 1e-9 and self.junction.elapsed < self._end:
                reward += self._tick(False)
        more, done = self._run_until_decision()
        reward += more
        self.view = self.sensors.view(self.machine)
        info = {"seconds": self.junction.elapsed - began, "action": int(action)}
        return features(self.view), float(reward), bool(done), False, info

    def close(self) -> None:
        self._close_run()

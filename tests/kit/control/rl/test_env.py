from __future__ import annotations

from gymnasium.utils.env_checker import check_env

from kit.control.learned import N_FEATURES
from kit.control.rl.env import TRAIN_SEEDS, VALIDATION_SEEDS, SignalEnv, delay_reward
from kit.sim.sumo.demand import HELD_OUT_SEEDS


def test_the_environment_passes_gymnasiums_checks():
    env = SignalEnv(minutes=3)
    check_env(env, skip_render_check=True)
    env.close()


def test_episodes_are_seeded_and_never_use_held_out_demand():
    def episode(seed, action):
        env = SignalEnv(minutes=10)
        obs, info = env.reset(seed=seed)
        total, done, n = 0.0, False, 0
        while not done:
            obs, r, done, _, _ = env.step(action)
            total, n = total + r, n + 1
        env.close()
        return info, total, n

    a, b = episode(3, 1), episode(3, 1)
    assert a == b
    assert a[0]["demand_seed"] in TRAIN_SEEDS and a[0]["demand_seed"] not in HELD_OUT_SEEDS
    assert not set(TRAIN_SEEDS) & {*VALIDATION_SEEDS, *HELD_OUT_SEEDS}
    keep = episode(3, 0)
    assert keep[2] > a[2]  # keeping green asks again every second; advancing jumps to the next minimum
    assert keep[1] != a[1]


def test_a_keep_past_the_maximum_green_is_an_advance_and_the_agent_is_told():
    from kit.control.learned import past_max_green

    env = SignalEnv(minutes=20)
    env.reset(seed=3)
    forced, done = [], False
    while not done:
        due = past_max_green(env.view)
        _, _, done, _, info = env.step(0)  # an agent that always keeps
        assert info["action"] == int(due)
        forced.append(due)
    env.close()
    assert any(forced), "no green reached its maximum with someone waiting in 20 minutes of keeping"


def test_observations_are_the_kits_sensors_and_rewards_punish_waiting():
    env = SignalEnv(minutes=5)
    obs, _ = env.reset(seed=1)
    assert obs.shape == (N_FEATURES,) and env.observation_space.contains(obs)
    assert delay_reward(0, 0, 0.0) == 0.0
    assert delay_reward(5, 0, 0.0) < 0 and delay_reward(0, 1, 40.0) < delay_reward(0, 1, 10.0)
    env.close()


def test_the_reward_can_count_the_seconds_vehicles_lose():
    import pytest

    from kit.errors import UsageError

    seen = []
    env = SignalEnv(minutes=3, vehicles="time_lost", reward=lambda held, peds, wait: seen.append(held) or -held)
    env.reset(seed=2)
    for _ in range(20):
        env.step(0)
    env.close()
    # Fractions of a second: braking and pulling away lose part of it, not only standing still.
    assert max(seen) > 0 and any(0 < h != int(h) for h in seen)
    with pytest.raises(UsageError, match="halting, time_lost"):
        SignalEnv(vehicles="queues")

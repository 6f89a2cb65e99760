"""Grades lab 10 (learning to control): max-pressure, a reward design, a short DQN exported to int8, the table.

Max-pressure is checked on a grid of detector counts in both phases; the reward on the properties the lab asks for;
training and the comparison run again in the student's kernel on a seed and demand the lab never shows.
"""

import itertools

import pytest

pytestmark = pytest.mark.notebook("10_learning_to_control", cell_timeout=240, call_timeout=180)


def _pressure_cases():
    cases = []
    for phase, w, e, n, s, peds in itertools.product(
        ("car_green", "ped_green"), (0, 1, 4), (0, 3), (0, 2, 5), (0, 1), (0, 1, 3)
    ):
        cars, side = w + e, n + s + peds
        expected = side > cars if phase == "car_green" else cars > side
        cases.append(((phase, w, e, n, s, peds), expected))
    return cases


@pytest.mark.points(2)
def test_max_pressure(lab):
    cases = _pressure_cases()
    got = lab.eval(
        "(lambda V: [bool(my_max_pressure(V(p, 15.0, vehicles={'w2c': w, 'e2c': e, 'n2c': n, 's2c': s}, "
        f"peds_waiting=k))) for (p, w, e, n, s, k), _ in {cases!r}])(__import__('kit.control.phases', "
        "fromlist=['View']).View)"
    )
    for (case, expected), g in zip(cases, got):
        phase, w, e, n, s, peds = case
        assert g is expected, (
            f"{phase} with vehicles w2c={w} e2c={e} n2c={n} s2c={s} and {peds} pedestrians "
            f"waiting: expected {'advance' if expected else 'keep'}"
        )


def _check_reward():
    assert my_reward(0, 0, 0.0) == 0, "nobody waits: the reward is 0"
    for h in range(0, 30, 3):
        for p in range(0, 4):
            for w in (0.0, 10.0, 40.0, 90.0):
                r = my_reward(h, p, w if p else 0.0)
                assert r <= 0, f"my_reward({h}, {p}, {w}) = {r}: never positive"
                assert my_reward(h + 1, p, w if p else 0.0) < r, "one more halted vehicle must make it worse"
                if p:
                    assert my_reward(h, p + 1, w) < r, "one more waiting pedestrian must make it worse"
                    assert my_reward(h, p, w + 30.0) < r, "a longer pedestrian wait must make it worse (fairness)"
    assert -10 <= my_reward(20, 3, 30.0) <= 0, "keep it small at a busy moment (between -10 and 0)"


@pytest.mark.points(2)
def test_reward(lab):
    lab.run(_check_reward)


def _check_train_and_export():
    import tempfile
    from pathlib import Path

    from kit.control.learned import LearnedPolicy
    from kit.control.phases import View

    path = Path(tempfile.mkdtemp(prefix="grade10-")) / "graded.tflite"
    result, out = train_and_export(11, path)
    assert Path(out) == path and path.exists(), f"the policy should be written to {path}"
    assert result.settings["reward"] == "my_reward", "train with reward=my_reward"
    assert result.settings["seed"] == 11, "train with the seed given"
    assert path.stat().st_size <= 100_000, f"{path.stat().st_size} bytes: the policy must fit in 100 KB"
    policy = LearnedPolicy(path)
    assert policy.host.quantized, "the exported policy should be int8"
    decision = policy(View("car_green", 20.0, queues={"w2c": 1, "n2c": 4}, peds_waiting=1, ped_wait_s=30.0))
    assert isinstance(decision, bool)


@pytest.mark.points(3)
def test_train_and_export(lab):
    lab.run(_check_train_and_export, timeout=180)


def _check_compare():
    from kit.control.evaluate import baselines, evaluate

    demand = dict(seeds=[1001], start="2026-10-15T17:10:00", hours=0.25)
    got = compare(**demand)
    assert {"max_pressure", "actuated", "learned"} <= set(got), f"expected those three names, got {sorted(got)}"
    assert got["max_pressure"] == evaluate(baselines()["max_pressure"], **demand), "max_pressure as the kit runs it"
    assert got["actuated"] == evaluate(baselines()["actuated"], **demand), "actuated as the kit runs it"
    from kit.control.learned import LearnedPolicy, shipped_policy

    assert got["learned"] == evaluate(LearnedPolicy.factory(shipped_policy()), **demand), "the shipped policy"


@pytest.mark.points(2)
def test_compare(lab):
    lab.run(_check_compare, timeout=120)

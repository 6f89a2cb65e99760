"""Grades lab 10 (learning to control): max-pressure, a reward design, a short DQN exported to int8, the table.

Each ``_observe_*`` function runs in the student's kernel and only gathers values; each test judges them here, in
the grader's process, on inputs drawn from ``grading_rng`` (fresh for every grading run): max-pressure on random
detector counts, the reward's properties on random moments, the exported policy loaded and run here, and the
comparison run again here (SUMO and the shipped int8 policy) on a demand seed and start the lab never shows.
"""

import itertools

import pytest

pytestmark = pytest.mark.notebook("10_learning_to_control", cell_timeout=240, call_timeout=180)


def _observe_max_pressure(cases):
    from kit.control.phases import View

    return [
        my_max_pressure(View(p, 15.0, vehicles={"w2c": w, "e2c": e, "n2c": n, "s2c": s}, peds_waiting=k))
        for p, w, e, n, s, k in cases
    ]


@pytest.mark.points(2)
def test_max_pressure(lab, grading_rng):
    cases = [
        list(case)
        for case in itertools.product(("car_green", "ped_green"), (0, 1, 4), (0, 3), (0, 2, 5), (0, 1), (0, 1, 3))
    ]
    for _ in range(40):
        cases.append(
            [grading_rng.choice(["car_green", "ped_green"])]
            + [grading_rng.randint(0, 12) for _ in range(4)]
            + [grading_rng.randint(0, 6)]
        )
    got = lab.observe(_observe_max_pressure, cases)
    assert len(got) == len(cases)
    for (phase, w, e, n, s, peds), g in zip(cases, got, strict=True):
        cars, side = w + e, n + s + peds
        expected = side > cars if phase == "car_green" else cars > side
        assert g is expected, (
            f"{phase} with vehicles w2c={w} e2c={e} n2c={n} s2c={s} and {peds} pedestrians "
            f"waiting: expected {'advance' if expected else 'keep'} ({expected}), got {g!r}"
        )


def _observe_reward(moments):
    return [float(my_reward(h, p, w)) for h, p, w in moments]


@pytest.mark.points(2)
def test_reward(lab, grading_rng):
    halted = sorted(grading_rng.sample(range(0, 40), 6))
    waits = sorted(round(grading_rng.uniform(1, 120), 1) for _ in range(3))
    base = [(h, p, w if p else 0.0) for h in halted for p in range(0, 4) for w in waits]
    needed = {(0, 0, 0.0), (20, 3, 30.0)}
    for h, p, w in base:
        needed |= {(h, p, w), (h + 1, p, w)}
        if p:
            needed |= {(h, p + 1, w), (h, p, w + 30.0)}
    moments = sorted(needed)
    values = dict(zip(moments, lab.observe(_observe_reward, [list(m) for m in moments]), strict=True))
    assert values[(0, 0, 0.0)] == 0, "nobody waits: the reward is 0"
    for h, p, w in base:
        r = values[(h, p, w)]
        assert r <= 0, f"my_reward({h}, {p}, {w}) = {r}: never positive"
        assert values[(h + 1, p, w)] < r, f"my_reward({h + 1}, {p}, {w}): one more halted vehicle must make it worse"
        if p:
            assert values[(h, p + 1, w)] < r, (
                f"my_reward({h}, {p + 1}, {w}): one more waiting pedestrian must make it worse"
            )
            assert values[(h, p, w + 30.0)] < r, (
                f"my_reward({h}, {p}, {w + 30.0}): a longer pedestrian wait must make it worse (fairness)"
            )
    assert -10 <= values[(20, 3, 30.0)] <= 0, "keep it small at a busy moment (between -10 and 0)"


def _observe_train_and_export(seed):
    import base64
    import tempfile
    from pathlib import Path

    path = Path(tempfile.mkdtemp(prefix="grade10-")) / "graded.tflite"
    result, out = train_and_export(seed, path)
    size = path.stat().st_size if path.exists() else None
    return {
        "same_path": Path(out) == path,
        "size": size,
        # the policy file itself, for the grader to load and run (at most 100 KB is read)
        "tflite": base64.b64encode(path.read_bytes()).decode() if size and size <= 100_000 else None,
        "settings": {key: str(result.settings.get(key)) for key in ("reward", "seed")},
    }


@pytest.mark.points(3)
def test_train_and_export(lab, grading_rng, tmp_path):
    import base64

    from kit.control.learned import LearnedPolicy
    from kit.control.phases import View

    seed = grading_rng.randint(1, 10_000)
    got = lab.observe(_observe_train_and_export, seed, timeout=180)
    assert got["same_path"] and got["size"] is not None, "the policy should be written to the path given"
    assert got["settings"]["reward"] == "my_reward", "train with reward=my_reward"
    assert got["settings"]["seed"] == str(seed), f"train with the seed given ({seed}), got {got['settings']['seed']}"
    assert got["size"] <= 100_000, f"{got['size']} bytes: the policy must fit in 100 KB"
    path = tmp_path / "policy.tflite"
    path.write_bytes(base64.b64decode(got["tflite"]))
    policy = LearnedPolicy(path)
    assert policy.host.quantized, "the exported policy should be int8"
    for _ in range(5):
        queues = {arm: grading_rng.randint(0, 8) for arm in ("w2c", "e2c", "n2c", "s2c")}
        view = View(
            grading_rng.choice(["car_green", "ped_green"]),
            round(grading_rng.uniform(5, 60), 1),
            queues=queues,
            peds_waiting=grading_rng.randint(0, 4),
            ped_wait_s=round(grading_rng.uniform(0, 90), 1),
        )
        assert isinstance(policy(view), bool)


def _observe_compare(demand):
    from dataclasses import asdict, is_dataclass

    got = compare(**demand)
    if not isinstance(got, dict):
        return {"type": type(got).__name__}
    return {str(name): asdict(r) if is_dataclass(r) else repr(r)[:200] for name, r in got.items()}


@pytest.mark.points(2)
def test_compare(lab, grading_rng):
    import math
    from dataclasses import asdict

    from kit.control.evaluate import baselines, evaluate
    from kit.control.learned import LearnedPolicy, shipped_policy

    # a demand the lab never shows: a fresh seed, a day in October, a time between 06:00 and 20:00
    demand = dict(
        seeds=[grading_rng.randint(2000, 1_000_000)],
        start=f"2026-10-{grading_rng.randint(1, 31):02d}T{grading_rng.randint(6, 19):02d}:{grading_rng.randint(0, 59):02d}:00",
        hours=0.2,
    )
    got = lab.observe(_observe_compare, demand, timeout=120)
    assert {"max_pressure", "actuated", "learned"} <= set(got), f"expected those three names, got {sorted(got)}"
    reference = {
        "max_pressure": baselines()["max_pressure"],
        "actuated": baselines()["actuated"],
        "learned": LearnedPolicy.factory(shipped_policy()),
    }
    for name, policy in reference.items():
        want = asdict(evaluate(policy, **demand))
        mine = got[name]
        assert (
            isinstance(mine, dict)
            and set(mine) == set(want)
            and all(math.isclose(mine[k], v, rel_tol=1e-9, abs_tol=1e-9) for k, v in want.items())
        ), (
            f"{name} on {demand}: expected the kit's evaluate (its own policy{', the shipped file' if name == 'learned' else ''}): {want}, got {mine}"
        )

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from kit.control.learned import N_FEATURES, LearnedPolicy, camera_class, features, queue_echo, shipped_policy
from kit.control.phases import View
from kit.ml.card import ModelCard


def test_features_are_the_kits_sensors_only():
    base = View(
        "car_green", 30.0, queues={"w2c": 2, "e2c": 0, "n2c": 9, "s2c": 4}, peds_waiting=1, ped_wait_s=12.0, hour=8.0
    )
    x = features(base)
    assert x.shape == (N_FEATURES,) and x.dtype == np.float32
    assert [camera_class(n) for n in (0, 1, 3, 4, 40)] == [0, 1, 1, 2, 2]
    # Ground truth the kit cannot see changes nothing: the loops' and the whole arm's counts, exact counts within
    # a camera class.
    hidden = View(
        "car_green",
        30.0,
        queues={"w2c": 2, "e2c": 0, "n2c": 25, "s2c": 5},
        peds_waiting=1,
        ped_wait_s=12.0,
        hour=8.0,
        approaching={"w2c": 7},
        vehicles={"w2c": 30, "n2c": 40},
    )
    assert np.array_equal(features(hidden), x)
    # The ultrasonic count on the kit's own approach does show, up to its 8-car floor.
    assert not np.array_equal(
        features(View("car_green", 30.0, queues={"w2c": 3})), features(View("car_green", 30.0, queues={"w2c": 2}))
    )
    assert np.array_equal(
        features(View("car_green", 30.0, queues={"w2c": 9})), features(View("car_green", 30.0, queues={"w2c": 30}))
    )
    # So does its echo: without a reading it is the standing queue's tail; a nearer echo is a car still driving in.
    assert np.array_equal(features(dataclasses.replace(base, echo_m=queue_echo(2))), x)
    coming = features(View("car_green", 30.0, queues={"w2c": 0}, echo_m=0.9))
    assert not np.array_equal(coming, features(View("car_green", 30.0, queues={"w2c": 0})))
    # The camera's cars driving in show on every arm: how many (up to four) and how near the nearest is.
    seen = [features(dataclasses.replace(base, moving={"e2c": m})) for m in ((50.0,), (10.0,), (10.0, 30.0))]
    assert not any(np.array_equal(a, b) for a, b in ((seen[0], x), (seen[0], seen[1]), (seen[1], seen[2])))
    many = features(dataclasses.replace(base, moving={"n2c": (5.0, 9.0, 20.0, 30.0, 41.0)}))
    assert np.array_equal(many, features(dataclasses.replace(base, moving={"n2c": (5.0, 9.0, 20.0, 30.0, 55.0)})))


def test_the_shipped_policy_is_small_int8_and_matches_its_card():
    path = shipped_policy()
    card = ModelCard.load(path.with_suffix(".json"))
    assert card.check_files() == [] and card.precision == "int8"
    assert path.stat().st_size <= 100_000
    assert "python -m kit.control.rl.dqn --seed" in card.reproduce
    policy = LearnedPolicy(path)
    assert policy.host.quantized
    busy_side = View(
        "car_green", 40.0, queues={"w2c": 0, "e2c": 0, "n2c": 8, "s2c": 6}, peds_waiting=3, ped_wait_s=60.0, hour=8.0
    )
    assert policy(busy_side) is True  # an empty main road and a full side road: end the green
    assert isinstance(policy(View("ped_green", 7.0, hour=3.0)), bool)


@pytest.mark.slow
def test_a_short_training_run_exports_a_hostable_policy(tmp_path):
    pytest.importorskip("libsumo", reason="SUMO is the optional [sumo] extra")
    pytest.importorskip("tensorflow", reason="training needs the [train] extra")
    from kit.control.rl.dqn import centred, export, train

    # Snapshots scored on a few minutes of validation demand (the shipped run scores whole days).
    short = dict(seed=3, steps=300, warmup=60, minutes=4, validate_every=60, validate_hours=0.05, log=None)
    result, again = train(**short), train(**short)
    assert result.episodes == again.episodes  # one seed, one run
    steps = [s["step"] for s in result.settings["snapshots"]]
    assert result.settings["chosen_step"] in steps and steps[-1] == 300 and len(steps) >= 2
    for a, b in zip(result.model.get_weights(), again.model.get_weights()):
        np.testing.assert_array_equal(a, b)
    path = export(result, tmp_path / "p.tflite")
    policy = LearnedPolicy(path)
    assert policy.host.quantized and path.stat().st_size < 100_000
    x = features(View("car_green", 20.0, queues={"n2c": 5}, hour=8.0))[None, :]
    want = centred(result.model)(x).numpy()[0]  # the file holds the centred action values
    got = policy.values(View("car_green", 20.0, queues={"n2c": 5}, hour=8.0))
    assert np.allclose(got, want, atol=0.05 * (np.abs(want).max() + 1))  # int8 stays close to float


def test_the_stored_limits_bind_the_learned_policy_in_the_app():
    # A request with a queue standing: the network keeps the green early on; past the maker's limits it cannot.
    from kit.control.adaptive import AdaptiveTimings, Observation
    from kit.control.learned import adaptive_policy

    policy = adaptive_policy()
    timings = AdaptiveTimings()
    early = [
        Observation(phase_s=s, queue=True, ped_request=True, ped_wait_s=w, night=False)
        for s in (12, 14, 16)
        for w in (1, 2, 3)
    ]
    kept = [obs for obs in early if not policy(obs, timings)]
    assert kept, "the network ends the green at once for every early request: nothing to cap here"
    obs = kept[0]
    late_wait = Observation(obs.phase_s, obs.queue, obs.ped_request, timings.ped_max_wait_s, obs.night)
    long_green = Observation(timings.max_green_s, obs.queue, obs.ped_request, obs.ped_wait_s, obs.night)
    assert policy(late_wait, timings) and policy(long_green, timings)
    # and nobody waiting: the limits ask nothing of it (rest on green is the network's call, as the rule's)
    rest = Observation(timings.max_green_s, True, False, 0.0, False)
    assert policy(rest, timings) is learned_verdict(policy, rest)


def learned_verdict(policy, obs) -> bool:
    from kit.control.learned import LONG_QUEUE
    from kit.control.phases import View

    view = View(
        "car_green",
        obs.phase_s,
        queues={"w2c": LONG_QUEUE if obs.queue else 0},
        peds_waiting=0,
        ped_wait_s=obs.ped_wait_s,
        hour=12.0,
    )
    return policy.learned(view)


def test_the_int8_export_keeps_the_float_networks_choices(tmp_path):
    # Two action values tens of units below zero that differ by a few tenths (a busy hour's values): quantized
    # as they are, both fall on one int8 step and read as a tie ("keep"); centred, the difference has the steps.
    pytest.importorskip("tensorflow", reason="exporting needs the [train] extra")
    from kit.control.rl.dqn import build_model, centred
    from kit.ml import tflite

    model = build_model(hidden=8, seed=0)
    rng = np.random.default_rng(0)
    weights = model.get_weights()
    weights[-2] = rng.normal(0, 0.02, weights[-2].shape).astype(np.float32)
    weights[-1] = np.array([-40.0, -40.0], np.float32)
    model.set_weights(weights)
    x = rng.uniform(0, 1, (400, N_FEATURES)).astype(np.float32)
    want = np.argmax(model.predict(x, verbose=0), axis=1)
    assert 0.2 < want.mean() < 0.8, "both choices occur"

    def choices(network, name):
        policy = LearnedPolicy(tmp_path / name, content=tflite.convert(network, "int8", representative=x))
        return np.array([np.argmax(policy.host.run(row[None, :])[policy.output][0]) for row in x])

    assert (choices(centred(model), "centred.tflite") == want).mean() >= 0.97
    assert (choices(model, "raw.tflite") == want).mean() < 0.9  # what the centring is for


def test_a_maximum_green_ends_the_green_whatever_the_network_says(tmp_path):
    pytest.importorskip("tensorflow", reason="exporting needs the [train] extra")
    from kit.control.learned import MAX_GREEN_S
    from kit.control.rl.dqn import build_model, centred
    from kit.ml import tflite

    model = build_model(hidden=8, seed=0)  # a network that always says keep
    weights = model.get_weights()
    weights[-2][:] = 0.0
    weights[-1][:] = (5.0, -5.0)
    model.set_weights(weights)
    x = np.random.default_rng(0).uniform(0, 1, (50, N_FEATURES)).astype(np.float32)
    policy = LearnedPolicy(tmp_path / "keep.tflite", content=tflite.convert(centred(model), "int8", representative=x))
    limit = MAX_GREEN_S["car_green"]
    side = {"n2c": 1}
    assert not policy(View("car_green", limit - 1, queues=side))  # before the maximum: the network's call
    assert policy(View("car_green", limit, queues=side))  # a car waits on the side road
    assert policy(View("car_green", limit, moving={"s2c": (30.0,)}))  # one drives in there
    assert policy(View("car_green", limit, peds_waiting=1))  # someone at the kerb
    assert not policy(View("car_green", limit + 60, queues={"w2c": 5, "e2c": 3}))  # nobody waits elsewhere: rest
    assert policy(View("ped_green", MAX_GREEN_S["ped_green"], queues={"w2c": 1}))
    assert not policy(View("ped_green", MAX_GREEN_S["ped_green"], peds_waiting=3))  # the walk serves them already


@pytest.mark.slow
def test_dqn_learns_the_teachers_choices_from_demonstrations():
    pytest.importorskip("libsumo", reason="SUMO is the optional [sumo] extra")
    pytest.importorskip("tensorflow", reason="training needs the [train] extra")
    from kit.control.rl.dqn import DEMONSTRATOR, build_model, demonstrate, train
    from kit.control.rl.env import SignalEnv

    def agreement(model, replay) -> tuple[float, float]:
        """How often the network picks what the teacher did, for the teacher's keeps and for its advances."""
        s, a = replay.S[: replay.filled()], replay.A[: replay.filled()]
        chose = np.argmax(model(s).numpy(), axis=1)
        return float(np.mean(chose[a == 0] == 0)), float(np.mean(chose[a == 1] == 1))

    fresh = demonstrate(SignalEnv(minutes=4), 300, seed=77, n_step=3, gamma=0.99)  # episodes not trained on
    assert fresh.filled() == 300 and 0 < fresh.A.mean() < 1 and (fresh.R <= 0).all()
    result = train(
        seed=3,
        steps=200,
        warmup=60,
        minutes=4,
        demonstrations=600,
        pretrain=1600,
        validate_every=100,
        validate_hours=0.05,
        log=None,
    )
    assert result.settings["demonstrator"] == DEMONSTRATOR and result.settings["snapshots"][0]["step"] == 0
    keeps, advances = agreement(result.model, fresh)
    assert keeps > 0.8 and advances > 0.6, (keeps, advances)
    assert min(agreement(build_model(64, 3), fresh)) < 0.6  # what the untrained network does

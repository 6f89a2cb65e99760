"""The learned signal policy on the device: what it sees, and how ModelHost runs it.

The policy sees only what the kit can sense, never SUMO's ground truth: per arm the camera model's
queue class (empty / short / long, :data:`kit.ml.data.QUEUE_CLASSES`) and the cars it sees driving in
(how many, and how near the nearest is, within :data:`CAMERA_REACH_M` of the stop line: the 8 car
lengths of lane the kit's model junction has), the ultrasonic sensor's queue on the kit's own approach
(it saturates at 8 cars) and its echo, whether the PIR sees someone at the kerb and how long the oldest
crossing request has waited (the button's timer), the controller's own phase and time in phase, and
the time of day. It answers with two action values, *keep* and *advance*; the
:class:`~kit.control.phases.PhaseMachine` applies *advance* only past the minimum green, so the
conflict monitor's rules hold whatever the network says.

    >>> from kit.control.phases import View
    >>> x = features(View("car_green", 15.0, queues={"w2c": 5, "e2c": 0, "n2c": 2, "s2c": 0}, hour=8.0))
    >>> x.shape, x.dtype.name
    ((29,), 'float32')
    >>> policy = LearnedPolicy(shipped_policy())     # kit/models/signal_policy.tflite, int8
    >>> policy(View("car_green", 15.0, queues={"w2c": 0, "e2c": 0, "n2c": 6, "s2c": 4}, peds_waiting=2,
    ...             ped_wait_s=50.0, hour=8.0))
    True
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from kit.control.actuated import ARMS, SERVED
from kit.control.phases import View
from kit.sim.sumo.junction import CAMERA_REACH_M
from kit.sim.world import CAR_SPACING_M, LANE_M, MIN_ECHO_M

LONG_QUEUE = 4  # as kit.ml.data.LONG_QUEUE: the camera model calls 4+ cars a long queue
ULTRASONIC_CARS = 8  # 1.6 m lane / 0.2 m per model car: beyond 8 the echo is at its floor
N_FEATURES = 1 + 1 + 3 * len(ARMS) + 1 + 1 + 1 + 2 + 2 + 2 * len(ARMS)
MOVING_CARS = 4  # the camera's count of cars driving in saturates here
POLICY_NAME = "signal_policy"
ACTIONS = ("keep", "advance")


def camera_class(n: int) -> int:
    """The camera model's queue class for n queued cars (0 empty, 1 short, 2 long)."""
    return 0 if n <= 0 else (1 if n < LONG_QUEUE else 2)


def features(view: View) -> np.ndarray:
    """The policy's input: only what the kit's sensors and camera model report (see the module doc)."""
    x = np.zeros(N_FEATURES, dtype=np.float32)
    x[0] = 1.0 if view.phase == "car_green" else 0.0
    x[1] = min(view.phase_s / 60.0, 2.0)
    for i, arm in enumerate(ARMS):
        x[2 + 3 * i + camera_class(view.queues.get(arm, 0))] = 1.0
    k = 2 + 3 * len(ARMS)
    x[k] = min(view.queues.get("w2c", 0), ULTRASONIC_CARS) / ULTRASONIC_CARS
    x[k + 1] = 1.0 if view.peds_waiting > 0 else 0.0
    x[k + 2] = min(view.ped_wait_s / 60.0, 2.0)
    x[k + 3] = math.sin(2 * math.pi * view.hour / 24)
    x[k + 4] = math.cos(2 * math.pi * view.hour / 24)
    # The ultrasonic echo: the nearest vehicle to the sensor, standing or still driving in.
    x[k + 5] = _echo(view) / LANE_M
    x[k + 6] = float(car_driving_in(view))
    # The camera's view of each arm's moving cars: how many, and how near the nearest is to the stop line.
    k += 7
    for i, arm in enumerate(ARMS):
        moving = view.moving.get(arm, ())
        x[k + 2 * i] = min(len(moving), MOVING_CARS) / MOVING_CARS
        x[k + 2 * i + 1] = min(moving[0], CAMERA_REACH_M) / CAMERA_REACH_M if moving else 1.0
    return x


#: The longest green a learned policy may hold while the other phase has someone waiting (actuated control's maxima).
MAX_GREEN_S = {"car_green": 60.0, "ped_green": 30.0}


def past_max_green(view: View) -> bool:
    """True once the green has run its :data:`MAX_GREEN_S` and the kit sees someone waiting for the other phase
    (a queue or a car driving in on the camera, or someone at the kerb during the car green): then the green ends
    whatever the network says, as every signal controller's maximum green ends it."""
    if view.phase not in MAX_GREEN_S or view.phase_s < MAX_GREEN_S[view.phase]:
        return False
    other = [arm for arm in ARMS if arm not in SERVED[view.phase]]
    seen = any(view.queues.get(arm, 0) or view.moving.get(arm) for arm in other)
    return seen or (view.phase == "car_green" and view.peds_waiting > 0)


def _echo(view: View) -> float:
    return queue_echo(view.queues.get("w2c", 0)) if view.echo_m is None else view.echo_m


def car_driving_in(view: View) -> int:
    """1 if the ultrasonic echo on the kit's approach is nearer than the standing queue's tail: a car is coming
    (what an upstream loop detector tells actuated control), else 0."""
    return int(_echo(view) < queue_echo(view.queues.get("w2c", 0)) - CAR_SPACING_M / 2)


def queue_echo(cars: int) -> float:
    """The ultrasonic reading with ``cars`` standing on the kit's approach and nothing else in range."""
    return max(MIN_ECHO_M, LANE_M - CAR_SPACING_M * cars)


def shipped_policy() -> Path:
    """Path of the shipped int8 policy (``kit/models/signal_policy.tflite``)."""
    from kit.ml import shipped_model

    return shipped_model(POLICY_NAME)


class LearnedPolicy:
    """A keep/advance policy from a ``.tflite`` file, run by :class:`kit.ml.host.ModelHost`.

    :param path: the policy file (input ``features`` of :data:`N_FEATURES` floats; one output of 2 action values).
    :param content: the file's bytes, when they are already in memory (``path`` then only names them).
    """

    def __init__(self, path: str | Path, *, num_threads: int = 1, content: bytes | None = None) -> None:
        from kit.ml.host import ModelHost, ModelInputError

        self.host = ModelHost(path, num_threads=num_threads, content=content)
        if self.host.input.shape[1:] != (N_FEATURES,):
            raise ModelInputError(
                f"{path} takes input of shape {self.host.input.shape[1:]}; a signal policy "
                f"takes ({N_FEATURES},) features: train one with python -m kit.control.rl.dqn"
            )
        self.output = self.host.output_names[0]
        self.__name__ = "learned"

    def values(self, view: View) -> np.ndarray:
        """The two action values (keep, advance) for this view."""
        return self.host.run(features(view)[None, :])[self.output][0]

    def __call__(self, view: View) -> bool:
        if past_max_green(view):
            return True
        q = self.values(view)
        return bool(q[1] > q[0])

    @classmethod
    def factory(cls, path: str | Path):
        """A zero-argument factory the evaluator calls per run (one interpreter per run)."""

        def make() -> LearnedPolicy:
            return cls(path)

        make.is_factory = True
        make.__name__ = "learned"
        return make


def adaptive_policy(path: str | Path | None = None):
    """The learned policy as a policy of the kit's :class:`~kit.control.adaptive.AdaptiveController`.

    The app's controller asks ``policy(Observation, AdaptiveTimings)`` once a second during the car green; its
    observation says whether a queue stands on the kit's approach (ultrasonic sensor or camera model), whether a
    crossing was requested and for how long, and night mode. Those become the policy's features: a standing queue as
    the camera's *long* class on the kit's approach, a request as one pedestrian at the kerb, night as 02:00 and day
    as 12:00; arms the kit cannot see read empty. The controller's minimum green still holds (it never asks
    before it), every clearance keeps its stored time, and a crossing request is served once it has waited
    ``ped_max_wait_s`` or the green has run ``max_green_s``, whatever the network says (the parameters a maker
    sets bind a learned controller too).

        >>> from kit.control.adaptive import AdaptiveTimings, Observation
        >>> policy = adaptive_policy()
        >>> policy(Observation(phase_s=30, queue=False, ped_request=True, ped_wait_s=40, night=False), AdaptiveTimings())
        True
    """
    learned = LearnedPolicy(path or shipped_policy())

    def policy(obs, timings) -> bool:
        min_green = timings.night_min_green_s if obs.night else timings.min_green_s
        if obs.phase_s < min_green:
            return False  # the conflict monitor's minimum: not the network's to decide
        if obs.ped_request and (obs.ped_wait_s >= timings.ped_max_wait_s or obs.phase_s >= timings.max_green_s):
            return True  # the stored limits bind every controller: no network keeps a request waiting past them
        view = View(
            "car_green",
            obs.phase_s,
            queues={"w2c": LONG_QUEUE if obs.queue else 0},
            peds_waiting=1 if obs.ped_request else 0,
            ped_wait_s=obs.ped_wait_s,
            hour=2.0 if obs.night else 12.0,
        )
        return learned(view)

    policy.__name__ = "learned"
    policy.learned = learned
    return policy

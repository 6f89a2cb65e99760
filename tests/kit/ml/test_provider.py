"""kit.ml.provider: one capture per tick shared by concurrent tasks vs each task capturing its own frame."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from kit.ml.provider import FrameProvider, run_tasks

pytestmark = pytest.mark.tflite  # numpy only: also runs in the tflite-runtime environment


class FakeCamera:
    def __init__(self):
        self.captures = 0
        self._lock = threading.Lock()

    def capture(self):
        with self._lock:
            self.captures += 1
            return np.full((8, 8), self.captures % 256, np.uint8)


def _tasks(seen):
    def make(name):
        def task(frame):
            seen.setdefault(name, []).append(int(frame[0, 0]))
            return int(frame.sum())

        return task

    return {name: make(name) for name in ("queue", "pedestrian", "logger")}


def test_one_capture_per_tick_shared_by_all_callers():
    cam = FakeCamera()
    provider = FrameProvider(cam)
    assert provider.tick() == 1
    a, b = provider.frame(), provider.frame()
    assert a is b and cam.captures == 1 and provider.captures == 1
    with pytest.raises(ValueError):
        a[0, 0] = 1  # read-only: one task cannot spoil the frame for the others
    provider.tick()
    assert provider.frame() is not a and cam.captures == 2


def test_shared_run_captures_once_per_tick_and_tasks_agree():
    cam, seen = FakeCamera(), {}
    stats = run_tasks(cam, _tasks(seen), ticks=20, shared=True)
    assert stats.captures == cam.captures == 20 and stats.captures_per_tick == 1
    assert stats.same_frame_ticks == 20
    assert seen["queue"] == seen["pedestrian"] == seen["logger"]
    assert stats.wall_s > 0 and stats.cpu_s >= 0 and stats.captures_per_s > 0


def test_separate_run_captures_once_per_task():
    cam, seen = FakeCamera(), {}
    stats = run_tasks(cam, _tasks(seen), ticks=20, shared=False)
    assert stats.captures == cam.captures == 60 and stats.captures_per_tick == 3
    assert stats.same_frame_ticks == 0
    assert len(stats.results["logger"]) == 20


def test_with_the_simulated_world_and_camera():
    from kit.sim.camera import SimCamera
    from kit.sim.world import World

    world = World(seed=0)
    start = world.elapsed
    stats = run_tasks(
        SimCamera(world, seed=0), {"mean": lambda f: float(f.mean())}, ticks=3, world=world, seconds_per_tick=2.0
    )
    assert stats.captures == 3 and world.elapsed == pytest.approx(start + 6.0)


def test_bad_arguments_say_what_to_do():
    with pytest.raises(TypeError, match="capture"):
        FrameProvider(object())
    with pytest.raises(ValueError, match="tasks is empty"):
        run_tasks(FakeCamera(), {}, ticks=1)
    with pytest.raises(ValueError, match="ticks must be >= 1"):
        run_tasks(FakeCamera(), {"a": lambda f: 0}, ticks=0)


def test_standard_tasks_use_the_model_host():
    from kit.ml.provider import standard_tasks

    class Host:
        def predict(self, frame):
            return {"queue": np.array([[0.1, 0.7, 0.2]]), "pedestrian": np.array([[0.8]])}

    log = []
    tasks = standard_tasks(Host(), log)
    frame = np.full((8, 8), 10, np.uint8)
    assert tasks["queue"](frame) == 1 and tasks["pedestrian"](frame) is True and tasks["logger"](frame) == 10.0
    assert log == [10.0]

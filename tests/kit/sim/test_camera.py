"""The simulated camera: scenes, deterministic rendering, degradations, and SimCamera on a world."""

from __future__ import annotations

import numpy as np
import pytest

from kit.sim.camera import Scene, SimCamera, render


def day(**kw):
    base = dict(queue_length=2, pedestrians_waiting=1, daylight=0.9, leaves=0.0)
    base.update(kw)
    return Scene(**base)


def test_render_shape_dtype_and_size():
    frame = render(day(), seed=0)
    assert frame.shape == (64, 64) and frame.dtype == np.uint8
    assert render(day(), seed=0, size=32).shape == (32, 32)
    assert 20 < frame.mean() < 235, "a daylight frame is neither black nor white"


def test_same_scene_and_seed_same_frame_other_seed_differs():
    assert np.array_equal(render(day(), seed=5), render(day(), seed=5))
    assert not np.array_equal(render(day(), seed=5), render(day(), seed=6))


def test_scene_is_frozen_and_validated():
    s = day()
    with pytest.raises(Exception):  # noqa: B017 - whatever a frozen dataclass raises
        s.queue_length = 3  # type: ignore[misc]
    with pytest.raises(ValueError, match="daylight"):
        Scene(1, 0, daylight=1.5, leaves=0.0)
    with pytest.raises(ValueError, match="queue_length"):
        Scene(-1, 0, 0.5, 0.0)
    with pytest.raises(TypeError, match="Scene"):
        render({"queue_length": 1}, seed=0)  # type: ignore[arg-type]


def test_cars_show_in_the_lane_above_the_stop_line():
    # same seed: the only difference is the queue, so the frames differ in the inbound lane only
    empty = render(day(queue_length=0, pedestrians_waiting=0), seed=3).astype(int)
    four = render(day(queue_length=4, pedestrians_waiting=0), seed=3).astype(int)
    diff = np.abs(four - empty) > 20
    assert diff.sum() > 60, "four cars change many pixels"
    rows, cols = np.nonzero(diff)
    assert rows.max() < 0.82 * 64, "cars stay above the crossing"
    assert cols.mean() < 32, "the inbound lane is the left half of the road"


def test_a_diverted_queue_waits_in_the_other_lane_behind_a_temporary_stop_line():
    # the works close the inbound lane: the same four cars now change pixels right of the centre line and well
    # above the usual stop line, where the shipped models never saw a queue
    empty = render(day(queue_length=0, pedestrians_waiting=0, diverted=True), seed=3).astype(int)
    four = render(day(queue_length=4, pedestrians_waiting=0, diverted=True), seed=3).astype(int)
    rows, cols = np.nonzero(np.abs(four - empty) > 20)
    assert len(rows) > 20 and cols.mean() > 32 and rows.max() < 0.7 * 64
    assert not np.array_equal(empty, render(day(queue_length=0, pedestrians_waiting=0, road_works=True), seed=3))
    # scenes that do not ask for it are drawn as before, pixel for pixel
    assert np.array_equal(render(day(road_works=True), seed=4), render(day(road_works=True, diverted=False), seed=4))


def test_more_cars_reach_farther_up_the_road():
    base = render(day(queue_length=0, pedestrians_waiting=0), seed=9).astype(int)
    tops = []
    for n in (1, 3, 6):
        diff = np.abs(render(day(queue_length=n, pedestrians_waiting=0), seed=9).astype(int) - base) > 20
        tops.append(np.nonzero(diff)[0].min())
    assert tops[0] > tops[1] > tops[2], f"top rows of the queue {tops} should rise with more cars"


def test_pedestrians_stand_beside_the_crossing():
    none = render(day(queue_length=0, pedestrians_waiting=0), seed=4).astype(int)
    two = render(day(queue_length=0, pedestrians_waiting=2), seed=4).astype(int)
    rows, _ = np.nonzero(np.abs(two - none) > 20)
    assert rows.size > 5 and rows.min() > 0.6 * 64


def test_night_is_darker_and_noisier_and_shows_headlights():
    d = render(day(queue_length=3, daylight=1.0), seed=2)
    n = render(day(queue_length=3, daylight=0.0), seed=2)
    assert n.mean() < 0.5 * d.mean()
    assert n.max() > 200, "headlights glare at night"


def test_leaves_cover_about_the_requested_share():
    clean = render(day(), seed=1).astype(int)
    leafy = render(day(leaves=0.5), seed=1).astype(int)
    changed = (np.abs(leafy - clean) > 25).mean()
    assert 0.3 < changed < 0.9, f"leaves changed {changed:.0%} of the frame"


def test_blur_noise_and_road_works_change_the_frame():
    ref = render(day(), seed=8).astype(float)
    blurred = render(day(blur=1.5), seed=8).astype(float)
    noisy = render(day(noise=0.08), seed=8).astype(float)
    works = render(day(road_works=True), seed=8).astype(float)
    grad = lambda im: np.abs(np.diff(im, axis=1)).mean()  # noqa: E731
    assert grad(blurred) < 0.8 * grad(ref)
    assert 10 < np.std(noisy - ref) < 30
    assert np.abs(works - ref).mean() > 2


class FakeWorld:
    def __init__(self):
        self.queue = 0

    def scene(self):
        return Scene(self.queue, 0, 0.8, 0.0)


def test_simcamera_renders_the_worlds_current_scene_deterministically():
    world = FakeWorld()
    cam = SimCamera(world, seed=1)
    first = cam.capture()
    world.queue = 5
    second = cam.capture()
    assert first.shape == (64, 64) and not np.array_equal(first, second)
    again = SimCamera(FakeWorld(), seed=1).capture()
    assert np.array_equal(first, again), "same world state and camera seed => same first frame"
    assert cam.resolution == (64, 64)
    cam.close()
    with pytest.raises(RuntimeError, match="closed"):
        cam.capture()


def test_simcamera_needs_a_world():
    with pytest.raises(TypeError, match="scene"):
        SimCamera(object())


def test_simcamera_on_the_real_world():
    world_mod = pytest.importorskip("kit.sim.world")
    world = world_mod.World(seed=3)
    cam = SimCamera(world, seed=0)
    assert cam.capture().shape == (64, 64)
    assert isinstance(world.scene(), Scene)


@pytest.mark.parametrize("condition", ["glare", "fog", "rain", "dirt", "shake"])
def test_weather_and_lens_change_the_frame_and_zero_changes_nothing(condition):
    plain = render(day(), seed=4)
    assert np.array_equal(render(day(**{condition: 0.0}), seed=4), plain), "older scenes keep their frames"
    spoiled = render(day(**{condition: 0.8}), seed=4)
    assert np.array_equal(spoiled, render(day(**{condition: 0.8}), seed=4))
    assert np.abs(spoiled.astype(int) - plain).mean() > 2, f"{condition} shows in the frame"
    with pytest.raises(ValueError, match=condition):
        day(**{condition: 1.5})


def test_fog_and_dirt_lower_contrast_glare_brightens_shake_blurs():
    plain = render(day(), seed=8).astype(float)

    def edges(f):
        return np.abs(np.diff(f, axis=1)).mean()

    assert render(day(fog=0.8), seed=8).std() < plain.std()
    assert render(day(dirt=0.9), seed=8).std() < plain.std()
    assert render(day(glare=0.8), seed=8).mean() > plain.mean() + 10
    assert edges(render(day(shake=1.0), seed=8).astype(float)) < edges(plain)


def test_sim_camera_adds_its_own_lens_to_the_worlds_scene():
    from kit.sim.world import World

    camera = SimCamera(World(seed=1, start="2026-10-15T12:00:00"), seed=0, dirt=0.7)
    assert camera.scene().dirt == 0.7 and camera.scene().daylight > 0.3
    camera.dirt = 0.0
    assert camera.scene() == camera.world.scene()
    with pytest.raises(TypeError, match="snow"):
        SimCamera(World(seed=1), snow=1.0)

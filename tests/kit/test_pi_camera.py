"""open_camera chooses the simulated camera with a world and the Pi Camera otherwise."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from kit.camera import PiCamera, open_camera, to_gray
from kit.sim.camera import Scene, SimCamera


class FakeWorld:
    def scene(self):
        return Scene(1, 1, 0.7, 0.0)


def test_open_camera_with_a_world_is_a_simcamera():
    cam = open_camera(FakeWorld(), seed=2, size=32)
    assert isinstance(cam, SimCamera)
    assert cam.capture().shape == (32, 32)


def test_pi_camera_without_picamera2_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "picamera2", None)  # makes `import picamera2` fail here
    with pytest.raises(RuntimeError, match="python3-picamera2"):
        open_camera()


def test_pi_camera_reads_picamera2_and_converts_to_gray(monkeypatch):
    class FakePicamera2:
        def __init__(self, num):
            self.started = False

        def create_still_configuration(self, main):
            return {"main": main}

        def configure(self, config):
            self.size = config["main"]["size"]

        def start(self):
            self.started = True

        def capture_array(self, stream):
            w, h = self.size
            img = np.zeros((h, w, 3), np.uint8)
            img[..., 1] = 200  # green
            img[..., 0] = 100  # blue: Picamera2's RGB888 is stored B, G, R
            return img

        def stop(self):
            self.started = False

        def close(self):
            pass

    fake = type(sys)("picamera2")
    fake.Picamera2 = FakePicamera2
    monkeypatch.setitem(sys.modules, "picamera2", fake)
    with PiCamera(size=16) as cam:
        frame = cam.capture()
    assert frame.shape == (16, 16) and frame.dtype == np.uint8
    assert int(frame[0, 0]) == round(0.587 * 200 + 0.114 * 100)
    with pytest.raises(RuntimeError, match="closed"):
        cam.capture()


def test_to_gray_accepts_common_layouts_and_rejects_others():
    gray = np.full((4, 4), 7, np.uint8)
    assert np.array_equal(to_gray(gray), gray)
    assert np.array_equal(to_gray(gray[..., None]), gray)
    assert to_gray(np.full((4, 4, 4), 100, np.uint8)).shape == (4, 4)
    with pytest.raises(ValueError, match="shape"):
        to_gray(np.zeros((2, 2, 2, 2)))

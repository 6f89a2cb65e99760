"""The kit's camera: the Pi Camera on a Raspberry Pi, rendered frames of the simulated world elsewhere.

Both cameras have the same small surface: ``capture()`` returns one grayscale frame as a uint8
numpy array of shape (height, width), and ``close()`` releases the device.

    >>> from kit.camera import open_camera
    >>> from kit.sim.world import World
    >>> camera = open_camera(World(seed=1))       # simulation: a kit.sim.camera.SimCamera
    >>> camera.capture().shape
    (64, 64)

On a Pi, ``open_camera()`` (no world) opens the Pi Camera through Picamera2, which Raspberry Pi OS
ships as ``python3-picamera2`` (``sudo apt install python3-picamera2``; create the virtual
environment with ``--system-site-packages`` so that it is visible).
"""

from __future__ import annotations

from typing import Any

import numpy as np

PICAMERA2_HELP = (
    "the Pi Camera needs Picamera2, which is not installed in this Python. On Raspberry Pi OS: "
    "`sudo apt install python3-picamera2` and create the venv with `python3 -m venv --system-site-packages .venv`. "
    "Without a Pi, pass the simulated world instead: open_camera(board.world) or Board().camera."
)


def to_gray(frame: np.ndarray) -> np.ndarray:
    """A grayscale uint8 (H, W) frame from an (H, W), (H, W, 1), RGB or RGBA/XBGR (H, W, 3|4) array."""
    frame = np.asarray(frame)
    if frame.ndim == 3 and frame.shape[2] == 1:
        frame = frame[:, :, 0]
    elif frame.ndim == 3 and frame.shape[2] in (3, 4):
        rgb = frame[:, :, :3].astype(np.float32)
        frame = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R BT.601 luma
    elif frame.ndim != 2:
        raise ValueError(f"a camera frame is (H, W) or (H, W, channels); got shape {frame.shape}")
    if frame.dtype != np.uint8:
        frame = np.clip(frame + 0.5, 0, 255).astype(np.uint8)
    return frame


class PiCamera:
    """The Raspberry Pi camera module through Picamera2, giving the same grayscale frames as the simulation.

        >>> camera = PiCamera(size=64)          # on a Pi with a camera attached  # doctest: +SKIP
        >>> frame = camera.capture()            # uint8, (64, 64)  # doctest: +SKIP
        >>> camera.close()  # doctest: +SKIP

    The sensor is read at a small RGB resolution and converted to grayscale (BT.601 luma) here,
    so models trained on the simulated frames see the same kind of input.
    """

    def __init__(self, *, size: int = 64, camera_num: int = 0) -> None:
        try:
            from picamera2 import Picamera2  # only on Raspberry Pi OS
        except ImportError as exc:
            raise RuntimeError(PICAMERA2_HELP) from exc
        self.size = int(size)
        self._cam = Picamera2(camera_num)
        config = self._cam.create_still_configuration(main={"size": (self.size, self.size), "format": "RGB888"})
        self._cam.configure(config)
        self._cam.start()
        self.closed = False

    @property
    def resolution(self) -> tuple[int, int]:
        return (self.size, self.size)

    def capture(self) -> np.ndarray:
        """One grayscale frame (uint8, (size, size))."""
        if self.closed:
            raise RuntimeError("this camera is closed; open a new one with kit.camera.open_camera()")
        bgr = self._cam.capture_array("main")
        # Picamera2's "RGB888" stores pixels as B, G, R: flip to R, G, B before the luma weights
        return to_gray(bgr[:, :, 2::-1])

    def close(self) -> None:
        if not self.closed:
            self._cam.stop()
            self._cam.close()
            self.closed = True

    def __enter__(self) -> PiCamera:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_camera(world: Any = None, **kw: Any) -> Any:
    """The right camera for where the kit runs: a SimCamera on `world` if given, else the Pi Camera.

    Keyword arguments go to the camera (``seed`` and ``size`` for the simulation, ``size`` and
    ``camera_num`` for the Pi Camera).
    """
    if world is not None:
        from kit.sim.camera import SimCamera

        return SimCamera(world, **kw)
    return PiCamera(**kw)

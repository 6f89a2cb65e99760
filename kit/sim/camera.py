"""The simulated camera: grayscale frames of the intersection approach, drawn from the world's state.

The camera hangs on the signal pole above the stop line and looks down the approach. It sees the
queue of cars waiting in the inbound lane (nearest car at the bottom of the frame, farther cars
smaller and higher up), the zebra crossing, and pedestrians waiting on either kerb. What it sees
is spoiled the way real frames are: daylight and night (gain noise, headlights, a street lamp),
shadows of buildings, blur, sensor noise, background clutter, autumn leaves stuck on the lens,
road works that change the scene, and the weather and the pole: low-sun glare, fog, rain, a dirty
lens, and camera shake when the wind moves the pole.

    >>> from kit.sim.camera import Scene, render
    >>> frame = render(Scene(queue_length=3, pedestrians_waiting=1, daylight=0.9, leaves=0.0), seed=1)
    >>> frame.shape, frame.dtype.name
    ((64, 64), 'uint8')

Rendering uses numpy only and takes well under a millisecond per 64x64 frame, so datasets of
thousands of frames are made in seconds.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

import numpy as np

# Geometry of the approach, in frame units (0..1 left to right, 0..1 top to bottom).
_HORIZON = 0.12  # where the road meets the buildings
_STOP = 0.80  # stop line; the queue grows upwards from here
_DEPTH_M = 30.0  # metres of road over which the view compresses by e
_ROAD_HALF_M = 3.5  # one lane each way
_M = 0.08  # frame width per metre at the stop line
_MAX_DRAWN_CARS = 14  # beyond this the queue is past the horizon anyway
DIVERTED_STOP_M = 12.0  # the temporary stop line of a diverted queue, metres up the road from the usual one


@dataclass(frozen=True)
class Scene:
    """What the camera is looking at: the world's state plus the conditions of the picture.

    ``daylight`` runs from 0 (night) to 1 (noon); ``leaves`` is the share of the lens covered (0..1);
    ``blur`` is in pixels (Gaussian sigma at 64x64) and ``noise`` is the sensor noise (std, 0..1 scale).
    ``glare`` (a low sun or a lamp flaring into the lens), ``fog``, ``rain``, ``dirt`` (a smeared
    lens) and ``shake`` (the pole moving in the wind, motion blur and an offset) run from 0 (none)
    to 1 (strong); at 0 they change nothing, so frames of older scenes stay the same.

        >>> Scene(queue_length=5, pedestrians_waiting=0, daylight=0.1, leaves=0.3, road_works=True)
        Scene(queue_length=5, pedestrians_waiting=0, daylight=0.1, leaves=0.3, road_works=True, blur=0.0, noise=0.0, glare=0.0, fog=0.0, rain=0.0, dirt=0.0, shake=0.0, diverted=False)
    """

    queue_length: int
    pedestrians_waiting: int
    daylight: float
    leaves: float
    road_works: bool = False
    blur: float = 0.0
    noise: float = 0.0
    glare: float = 0.0
    fog: float = 0.0
    rain: float = 0.0
    dirt: float = 0.0
    shake: float = 0.0
    #: the works close the inbound lane: the queue waits in the other lane behind a temporary stop line
    #: ``DIVERTED_STOP_M`` metres up the road (a layout the shipped models never saw; implies road works)
    diverted: bool = False

    def __post_init__(self) -> None:
        for name in ("queue_length", "pedestrians_waiting"):
            value = getattr(self, name)
            if int(value) != value or value < 0:
                raise ValueError(f"Scene.{name} must be a whole number >= 0, got {value!r}")
        for name in ("daylight", "leaves", *WEATHER):
            value = getattr(self, name)
            if not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"Scene.{name} must be between 0 and 1, got {value!r}")
        for name in ("blur", "noise"):
            value = getattr(self, name)
            if float(value) < 0:
                raise ValueError(f"Scene.{name} must be >= 0, got {value!r}")


WEATHER = ("glare", "fog", "rain", "dirt", "shake")
"""Scene fields for the weather, the lens and the pole (0 = none, 1 = strong)."""


@lru_cache(maxsize=8)
def _axes(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel centres in frame units along x and y (read-only, shared)."""
    a = (np.arange(size, dtype=np.float32) + 0.5) / size
    a.setflags(write=False)
    return a, a


@lru_cache(maxsize=8)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    x, y = _axes(size)
    gx, gy = np.meshgrid(x, y)
    gx.setflags(write=False)
    gy.setflags(write=False)
    return gx, gy


def _ramp(axis: np.ndarray, lo: float, hi: float, px: float) -> np.ndarray:
    """Soft 0..1 coverage of the interval [lo, hi] along one axis (anti-aliased over one pixel)."""
    r = np.minimum(axis - lo, hi - axis)
    r *= 1.0 / px
    r += 0.5
    np.maximum(r, 0.0, out=r)  # ufuncs, not np.clip: its wrapper costs more than the maths here
    np.minimum(r, 1.0, out=r)
    return r


class _Canvas:
    """A float image in 0..1 with a few anti-aliased painting primitives."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.px = 1.0 / size
        self.x, self.y = _axes(size)
        self.img = np.zeros((size, size), dtype=np.float32)

    def rect(self, x0: float, x1: float, y0: float, y1: float, value: float, alpha: float = 1.0) -> None:
        n = self.size
        # only the pixels the rectangle can touch: keeps the many small shapes cheap
        i0, i1 = max(0, int(x0 * n) - 1), min(n, int(x1 * n) + 2)
        j0, j1 = max(0, int(y0 * n) - 1), min(n, int(y1 * n) + 2)
        if i0 >= i1 or j0 >= j1:
            return
        cx = _ramp(self.x[i0:i1], x0, x1, self.px)
        cy = _ramp(self.y[j0:j1], y0, y1, self.px)
        cov = np.multiply.outer(cy, cx)
        if alpha != 1.0:
            cov *= alpha
        patch = self.img[j0:j1, i0:i1]
        patch += cov * (value - patch)

    def ellipse(
        self,
        cx: float,
        cy: float,
        rx: float,
        ry: float,
        value: float,
        alpha: float = 1.0,
        angle: float = 0.0,
        soft: float = 1.0,
    ) -> np.ndarray:
        n = self.size
        cov_full = np.zeros((n, n), dtype=np.float32)
        # only the box the ellipse (any rotation) and its soft rim can touch
        reach = max(rx, ry) + self.px * soft
        i0, i1 = max(0, int((cx - reach) * n) - 1), min(n, int((cx + reach) * n) + 2)
        j0, j1 = max(0, int((cy - reach) * n) - 1), min(n, int((cy + reach) * n) + 2)
        if i0 >= i1 or j0 >= j1:
            return cov_full
        gx, gy = _grid(n)
        dx, dy = gx[j0:j1, i0:i1] - cx, gy[j0:j1, i0:i1] - cy
        if angle:
            c, s = np.cos(angle), np.sin(angle)
            dx, dy = c * dx + s * dy, -s * dx + c * dy
        r = np.sqrt((dx / rx) ** 2 + (dy / ry) ** 2)
        # distance to the rim in pixels, approximately: (1 - r) * min radius
        cov = np.clip((1.0 - r) * min(rx, ry) / (self.px * soft) + 0.5, 0.0, 1.0) * alpha
        patch = self.img[j0:j1, i0:i1]
        patch += cov * (value - patch)
        cov_full[j0:j1, i0:i1] = cov
        return cov_full


def _depth_to_y(d: np.ndarray | float) -> np.ndarray | float:
    """Frame row of a point d metres up the road from the stop line (the pole camera's mild perspective)."""
    return _STOP - (_STOP - _HORIZON) * (1.0 - np.exp(-np.asarray(d) / _DEPTH_M))


def _scale(d: float) -> float:
    return float(np.exp(-d / _DEPTH_M))


def _road_half(y: np.ndarray) -> np.ndarray:
    """Half width of the road (frame units) at frame row y; constant below the stop line."""
    t = np.clip((_STOP - y) / (_STOP - _HORIZON), 0.0, 0.999)
    s = 1.0 - t  # == exp(-d / depth)
    return _ROAD_HALF_M * _M * s


def _blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur with edge padding (sigma in pixels)."""
    if sigma <= 0.05:
        return img
    r = max(1, int(np.ceil(2.5 * sigma)))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2).astype(np.float32)
    k /= k.sum()
    n = img.shape[0]
    p = np.pad(img, ((0, 0), (r, r)), mode="edge")
    out = np.zeros_like(img)
    for i, w in enumerate(k):
        out += w * p[:, i : i + n]
    p = np.pad(out, ((r, r), (0, 0)), mode="edge")
    out = np.zeros_like(img)
    for i, w in enumerate(k):
        out += w * p[i : i + n, :]
    return out


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Low-frequency texture: a coarse random grid upsampled bilinearly to the frame."""
    g = rng.standard_normal((cells + 1, cells + 1)).astype(np.float32)
    t = np.linspace(0, cells, size, dtype=np.float32)
    i = np.minimum(t.astype(int), cells - 1)
    f = t - i
    rows = g[i] * (1 - f)[:, None] + g[i + 1] * f[:, None]
    return rows[:, i] * (1 - f)[None, :] + rows[:, i + 1] * f[None, :]


@lru_cache(maxsize=8)
def _ground(size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Masks that depend on the frame size only: below the horizon, road coverage, kerb lines (read-only)."""
    gx, gy = _grid(size)
    px = 1.0 / size
    below = gy > _HORIZON
    half = _road_half(gy)
    road = np.clip((half - np.abs(gx - 0.5)) / px + 0.5, 0.0, 1.0) * below
    kerb = (np.abs(np.abs(gx - 0.5) - half) < 0.6 * px) & below
    for a in (below, road, kerb):
        a.setflags(write=False)
    return below, road, kerb


def _draw_background(c: _Canvas, rng: np.random.Generator, road_works: bool) -> None:
    size = c.size
    below, road, kerb = _ground(size)
    # sky band and buildings along the horizon
    c.img[:] = 0.55 + 0.1 * rng.random()
    x = 0.0
    while x < 1.0:
        w = rng.uniform(0.06, 0.2)
        top = rng.uniform(0.0, _HORIZON - 0.02)
        c.rect(x, x + w, top, _HORIZON + 0.02, rng.uniform(0.25, 0.75))
        if rng.random() < 0.6:  # a row of windows
            wy = top + rng.uniform(0.01, 0.04)
            c.rect(x + 0.01, x + w - 0.01, wy, wy + 0.015, rng.uniform(0.1, 0.9), alpha=0.7)
        x += w
    # pavements (both sides), then the road surface as a trapezoid
    c.img[below] = rng.uniform(0.55, 0.7)
    asphalt = rng.uniform(0.32, 0.45)
    c.img += road * (asphalt - c.img)
    # worn asphalt: a little low-frequency texture on everything below the horizon
    c.img += below * 0.035 * _smooth_noise(rng, size, int(rng.integers(4, 9)))
    # kerb lines
    c.img[kerb] = 0.75
    # dashed centre line up the road (none where road works have it painted out)
    if not road_works:
        phase = rng.uniform(0, 6)
        for k in range(10):
            d0, d1 = phase + 6 * k, phase + 6 * k + 3
            c.rect(0.5 - 0.004, 0.5 + 0.004, float(_depth_to_y(d1)), float(_depth_to_y(d0)), 0.85, alpha=0.8)
    # stop line across the inbound lane and the zebra crossing below it
    c.rect(0.5 - _ROAD_HALF_M * _M, 0.5, _STOP, _STOP + 0.012, 0.85)
    stripes = int(rng.integers(6, 9))
    for k in range(stripes):
        x0 = 0.5 - _ROAD_HALF_M * _M + (2 * _ROAD_HALF_M * _M) * k / stripes
        c.rect(x0, x0 + 0.5 * (2 * _ROAD_HALF_M * _M) / stripes, _STOP + 0.035, _STOP + 0.13, 0.8, alpha=0.9)
    # clutter: trees and lamp posts along the far pavements, litter bins near the edges
    for _ in range(int(rng.integers(1, 5))):
        d = rng.uniform(12, 60)
        y = float(_depth_to_y(d))
        side = rng.choice((-1.0, 1.0))
        x = 0.5 + side * (_ROAD_HALF_M * _M * _scale(d) + rng.uniform(0.03, 0.15))
        r = rng.uniform(0.03, 0.07) * (0.5 + _scale(d))
        c.ellipse(x, y - r, r, r * 1.2, rng.uniform(0.15, 0.4))
    for _ in range(int(rng.integers(0, 3))):
        x = rng.choice((rng.uniform(0.0, 0.06), rng.uniform(0.94, 1.0)))
        y = rng.uniform(0.3, 0.7)
        c.rect(x - 0.01, x + 0.01, y - 0.2, y, rng.uniform(0.2, 0.5))


def _draw_road_works(c: _Canvas, rng: np.random.Generator) -> None:
    # fresh dark asphalt patch and a barrier across the outbound lane, cones along the centre line
    d0 = rng.uniform(4, 14)
    d1 = d0 + rng.uniform(8, 20)
    y0, y1 = float(_depth_to_y(d1)), float(_depth_to_y(d0))
    c.rect(0.5, 0.5 + _ROAD_HALF_M * _M * _scale(d0), y0, y1, 0.2, alpha=0.8)
    for d in np.arange(d0, d1, rng.uniform(2.5, 4.0)):
        s = _scale(d)
        y = float(_depth_to_y(d))
        h = 0.06 * s
        c.rect(0.5 - 0.012 * s, 0.5 + 0.012 * s, y - h, y, 0.95)
        c.rect(0.5 - 0.006 * s, 0.5 + 0.006 * s, y - h, y - 0.6 * h, 0.3)
    yb = float(_depth_to_y(d0))
    sb = _scale(d0)
    for k in range(6):
        x0 = 0.5 + k * 0.045 * sb
        c.rect(x0, x0 + 0.045 * sb, yb - 0.05 * sb, yb - 0.02 * sb, 0.95 if k % 2 else 0.15)
    # a works sign on the kerb
    c.rect(0.5 + _ROAD_HALF_M * _M + 0.02, 0.5 + _ROAD_HALF_M * _M + 0.08, 0.62, 0.68, 0.9)


def _draw_diverted(c: _Canvas, rng: np.random.Generator) -> None:
    """The inbound lane closed from the crossing up: barriers across it, a dug-up patch, cones along the centre
    line, and the temporary stop line (with its signal post) across the outbound lane, where the queue now waits."""
    half = _ROAD_HALF_M * _M
    d1 = DIVERTED_STOP_M + rng.uniform(2, 8)
    c.rect(0.5 - half, 0.5, float(_depth_to_y(d1)), _STOP, 0.22, alpha=0.85)
    for d in np.arange(0.5, d1, rng.uniform(2.0, 3.0)):
        s = _scale(d)
        y = float(_depth_to_y(d))
        h = 0.06 * s
        c.rect(0.5 - 0.012 * s, 0.5 + 0.012 * s, y - h, y, 0.95)
        c.rect(0.5 - 0.006 * s, 0.5 + 0.006 * s, y - h, y - 0.6 * h, 0.3)
    for d in (0.3, d1):
        y, s = float(_depth_to_y(d)), _scale(d)
        for k in range(6):
            x0 = 0.5 - half * s + k * half * s / 6
            c.rect(x0, x0 + half * s / 6, y - 0.05 * s, y - 0.02 * s, 0.95 if k % 2 else 0.15)
    ys, ss = float(_depth_to_y(DIVERTED_STOP_M)), _scale(DIVERTED_STOP_M)
    c.rect(0.5, 0.5 + half * ss, ys, ys + 0.01, 0.85)
    c.rect(0.5 + half * ss + 0.01, 0.5 + half * ss + 0.02, ys - 0.12 * ss, ys, 0.1)
    c.rect(0.5 + half * ss + 0.005, 0.5 + half * ss + 0.025, ys - 0.16 * ss, ys - 0.1 * ss, 0.05)


def _draw_queue(
    c: _Canvas, rng: np.random.Generator, n: int, *, diverted: bool = False
) -> list[tuple[float, float, float]]:
    """Paint n queued cars; return headlight positions (x, y, radius) for the night pass."""
    lights = []
    d = rng.uniform(0.3, 1.2)  # the first car stops a little short of the line
    lane_centre_m = -_ROAD_HALF_M / 2
    if diverted:  # in the outbound lane, behind the temporary stop line
        d += DIVERTED_STOP_M
        lane_centre_m = _ROAD_HALF_M / 2
    for _ in range(min(n, _MAX_DRAWN_CARS)):
        length = rng.uniform(3.8, 5.0)
        width = rng.uniform(1.6, 1.9)
        offset = rng.normal(0, 0.15)
        y_front, y_back = float(_depth_to_y(d)), float(_depth_to_y(d + length))
        s = _scale(d + length / 2)
        xc = 0.5 + (lane_centre_m + offset) * _M * s
        hw = width / 2 * _M * s
        body = rng.choice((rng.uniform(0.05, 0.2), rng.uniform(0.7, 0.95)))
        h = y_front - y_back
        # shadow under the car, body, roof + windscreen
        c.rect(xc - hw, xc + hw + 0.01 * s, y_back + 0.2 * h, y_front + 0.02 * s, 0.1, alpha=0.6)
        c.rect(xc - hw, xc + hw, y_back, y_front, body)
        c.rect(xc - 0.8 * hw, xc + 0.8 * hw, y_back + 0.35 * h, y_front - 0.2 * h, 0.5 * body + 0.05)
        c.rect(xc - 0.75 * hw, xc + 0.75 * hw, y_front - 0.35 * h, y_front - 0.2 * h, 0.12)
        lights.append((xc - 0.7 * hw, y_front - 0.08 * h, 0.25 * hw))
        lights.append((xc + 0.7 * hw, y_front - 0.08 * h, 0.25 * hw))
        d += length + rng.uniform(0.8, 2.2)
    return lights


def _draw_pedestrians(c: _Canvas, rng: np.random.Generator, n: int) -> None:
    edge = _ROAD_HALF_M * _M
    for _k in range(min(n, 5)):
        side = -1.0 if rng.random() < 0.5 else 1.0
        x = 0.5 + side * (edge + rng.uniform(0.03, 0.12))
        y = _STOP + rng.uniform(0.02, 0.14)  # feet on the kerb beside the crossing
        h = rng.uniform(0.11, 0.15)
        w = h * rng.uniform(0.22, 0.3)
        coat = rng.choice((rng.uniform(0.02, 0.2), rng.uniform(0.8, 1.0)))
        c.ellipse(x, y - 0.45 * h, w / 2, 0.4 * h, coat)
        c.ellipse(x, y - 0.92 * h, 0.3 * w, 0.1 * h, rng.uniform(0.1, 0.3))


def _draw_leaves(c: _Canvas, rng: np.random.Generator, cover: float, light: float) -> None:
    """Leaves on the lens: large, out-of-focus, backlit blobs until `cover` of the frame is hidden."""
    hidden = np.zeros_like(c.img)
    for _ in range(40):
        if hidden.mean() >= cover:
            break
        r = rng.uniform(0.08, 0.22)
        cov = c.ellipse(
            rng.uniform(-0.05, 1.05),
            rng.uniform(-0.05, 1.05),
            r,
            r * rng.uniform(0.4, 0.7),
            rng.uniform(0.08, 0.3) * (0.4 + 0.6 * light),
            alpha=rng.uniform(0.85, 1.0),
            angle=rng.uniform(0, np.pi),
            soft=3.0,
        )
        np.maximum(hidden, cov, out=hidden)


def render(scene: Scene, *, seed: int, size: int = 64) -> np.ndarray:
    """Draw one grayscale frame (uint8, shape (size, size)) of `scene`.

    The seed picks everything the scene leaves open (cars' shades and spacing, where pedestrians
    stand, clutter, shadows, noise): same scene and seed => same frame.

        >>> a = render(Scene(2, 0, 0.8, 0.0), seed=3)
        >>> b = render(Scene(2, 0, 0.8, 0.0), seed=3)
        >>> bool((a == b).all())
        True
    """
    if not isinstance(scene, Scene):
        raise TypeError(f"render() needs a kit.sim.camera.Scene, got {type(scene).__name__}")
    if int(size) != size or size < 16:
        raise ValueError(f"size must be a whole number of pixels >= 16, got {size!r}")
    size = int(size)
    # one stream per layer, so that e.g. one more car leaves the background and the noise unchanged
    bg, works, cars, people, light_rng, lens = (np.random.default_rng([int(seed), k]) for k in range(6))
    c = _Canvas(size)
    light = float(scene.daylight)
    night = float(np.clip((0.35 - light) / 0.35, 0.0, 1.0))  # 0 by day, 1 in the dead of night
    _draw_background(c, bg, scene.road_works or scene.diverted)
    if scene.diverted:
        _draw_diverted(c, works)
    elif scene.road_works:
        _draw_road_works(c, works)
    lights = _draw_queue(c, cars, int(scene.queue_length), diverted=scene.diverted)
    _draw_pedestrians(c, people, int(scene.pedestrians_waiting))
    rng = light_rng

    gx, gy = _grid(size)
    # shading: a soft gradient across the frame and, often, a building's shadow over part of the road
    a, b = rng.normal(0, 0.15, 2)
    shade = 1.0 + a * (gx - 0.5) + b * (gy - 0.5)
    if rng.random() < 0.5 * light:
        ang = rng.uniform(0, 2 * np.pi)
        edge = (gx - 0.5) * np.cos(ang) + (gy - 0.5) * np.sin(ang) - rng.uniform(-0.3, 0.3)
        shade *= 1.0 - rng.uniform(0.2, 0.4) * np.clip(edge / 0.03 + 0.5, 0.0, 1.0)
    # illumination: ambient light follows the day; by night the camera's gain brings noise
    exposure = (0.18 + 0.82 * light) * rng.uniform(0.92, 1.08)
    img = c.img * shade * exposure
    if night > 0:
        lamp = np.exp(-(((gx - rng.uniform(0.2, 0.8)) / 0.25) ** 2 + ((gy - 0.75) / 0.2) ** 2))
        img += night * 0.12 * lamp * c.img
        for x, y, r in lights:  # headlights glare whatever the car's colour
            img += night * 0.9 * np.exp(-(((gx - x) ** 2 + (gy - y) ** 2) / (2 * max(r, c.px) ** 2)))
    if any(getattr(scene, name) > 0 for name in WEATHER):
        img = _weather(img, scene, np.random.default_rng([int(seed), 6]), night)
    canvas = _Canvas(size)
    canvas.img = img
    if scene.leaves > 0:
        _draw_leaves(canvas, lens, float(scene.leaves), light)
    img = _blur(canvas.img, float(scene.blur) * size / 64)
    sigma = float(scene.noise) + 0.05 * night
    if sigma > 0:
        img = img + lens.normal(0.0, sigma, img.shape).astype(np.float32)
    return (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _shift(img: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """The frame moved by whole pixels, edges repeated (the pole swaying)."""
    out = np.roll(img, (dy, dx), axis=(0, 1))
    if dy > 0:
        out[:dy] = out[dy]
    elif dy < 0:
        out[dy:] = out[dy - 1]
    if dx > 0:
        out[:, :dx] = out[:, dx : dx + 1]
    elif dx < 0:
        out[:, dx:] = out[:, dx - 1 : dx]
    return out


def _weather(img: np.ndarray, scene: Scene, rng: np.random.Generator, night: float) -> np.ndarray:
    """Glare, fog, rain, a dirty lens and shake over a lit frame (float 0..1); one rng stream for all."""
    size = img.shape[0]
    gx, gy = _grid(size)
    if scene.fog > 0:
        # fog thickens with distance: far rows (near the horizon) fade to the fog's own brightness
        depth = np.clip((_STOP + 0.1 - gy) / (_STOP + 0.1 - _HORIZON), 0.0, 1.0)
        veil = np.clip(scene.fog * (0.35 + 0.65 * depth), 0.0, 0.9)
        grey = 0.2 + 0.5 * (1 - night)
        img = img + veil * (grey - img)
    if scene.glare > 0:
        # a low sun (or a lamp) just outside the frame: a bright bloom and a veil over everything
        sx, sy = rng.uniform(-0.1, 1.1), rng.uniform(-0.15, 0.25)
        bloom = np.exp(-((gx - sx) ** 2 + (gy - sy) ** 2) / (2 * 0.18**2))
        img = img + scene.glare * (0.8 * bloom + 0.2 * (1 - img))
        streak = np.exp(-((((gy - sy) - 0.3 * (gx - sx)) / 0.02) ** 2))  # a flare streak across the lens
        img = img + 0.25 * scene.glare * streak
    if scene.rain > 0:
        img = img * (1 - 0.25 * scene.rain)  # overcast
        n = int(60 * scene.rain)
        xs, ys = rng.uniform(0, 1, n), rng.uniform(0, 1, n)
        lengths = rng.uniform(0.03, 0.09, n)
        cols = (xs * size).astype(int)
        for _x, y, length, col in zip(xs, ys, lengths, cols):
            r0, r1 = int(y * size), min(size, int((y + length) * size) + 1)
            img[r0:r1, col] += 0.25 * scene.rain
    if scene.dirt > 0:
        # a smeared lens is out of focus and scatters light: blur, a patchy low-contrast haze, dark specks
        img = _blur(img, 1.6 * scene.dirt * size / 64)
        haze = np.clip(0.5 + 0.5 * _smooth_noise(rng, size, 3), 0.0, 1.0) * scene.dirt
        img = img + 0.7 * haze * (img.mean() + 0.15 - img)
        for _ in range(int(8 * scene.dirt)):
            cx, cy, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.02, 0.06)
            img = img * (1 - 0.6 * np.exp(-((gx - cx) ** 2 + (gy - cy) ** 2) / (2 * r**2)))
    if scene.shake > 0:
        # the pole sways: motion blur along one direction plus a small offset of the whole view
        reach = max(1, int(round(3 * scene.shake * size / 64)))
        ang = rng.uniform(0, np.pi)
        dy, dx = np.sin(ang), np.cos(ang)
        acc = np.zeros_like(img)
        for k in range(-reach, reach + 1):
            acc += _shift(img, int(round(k * dy)), int(round(k * dx)))
        img = acc / (2 * reach + 1)
        oy, ox = (int(v) for v in rng.integers(-reach, reach + 1, 2))
        img = _shift(img, oy, ox)
    return img.astype(np.float32)


class SimCamera:
    """The kit's camera in simulation: each capture renders what the world looks like right now.

        >>> from kit.sim.world import World
        >>> camera = SimCamera(World(seed=1), seed=0)
        >>> camera.capture().shape
        (64, 64)

    Successive captures differ (new noise, slightly different placement) but the whole sequence
    is fixed by the world's seed and the camera's seed. The camera's own troubles are its
    attributes, 0 (none) to 1, added to what the world shows: ``dirt`` (a smeared lens),
    ``shake`` (the pole in the wind), ``glare``, ``fog``, ``rain``:

        >>> camera.dirt = 0.6                      # someone should clean the lens
    """

    def __init__(self, world: Any, *, seed: int = 0, size: int = 64, **lens: float) -> None:
        unknown = set(lens) - set(WEATHER)
        if unknown:
            raise TypeError(f"SimCamera has no condition {sorted(unknown)}; known: {', '.join(WEATHER)}")
        for name in WEATHER:
            setattr(self, name, float(lens.get(name, 0.0)))
        if not hasattr(world, "scene"):
            raise TypeError(f"SimCamera needs a world with a scene() method (kit.sim.world.World), got {world!r}")
        self.world = world
        self.seed = int(seed)
        self.size = int(size)
        self._count = itertools.count()
        self.closed = False

    @property
    def resolution(self) -> tuple[int, int]:
        """(width, height) of the frames, like a camera's resolution."""
        return (self.size, self.size)

    def scene(self) -> Scene:
        """The scene the next capture would show: the world's, plus the camera's own conditions."""
        scene = self.world.scene()
        extra = {name: max(getattr(scene, name), float(getattr(self, name, 0.0))) for name in WEATHER}
        return replace(scene, **extra) if any(extra.values()) else scene

    def capture(self) -> np.ndarray:
        """One grayscale frame (uint8, (size, size)) of the world as it is now."""
        if self.closed:
            raise RuntimeError("this camera is closed; open a new one with kit.camera.open_camera(world)")
        frame_seed = np.random.SeedSequence([self.seed, next(self._count)]).generate_state(1)[0]
        return render(self.scene(), seed=int(frame_seed), size=self.size)

    def close(self) -> None:
        self.closed = True

    def __enter__(self) -> SimCamera:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<SimCamera {self.size}x{self.size} seed={self.seed}>"

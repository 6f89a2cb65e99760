"""Data augmentation for camera frames: the degradations the intersection meets in the field.

A model trained on clear daylight frames fails at night and under autumn leaves. Augmentation
shows it those conditions during training, synthesised from clean frames: illumination (gain
and gamma, down to dusk), shading (a smooth light gradient across the scene), blur (a lens out
of focus, rain), night glare (bright spots and sensor noise on dark frames) and leaves (big,
soft, dark blobs stuck on the lens). Everything is numpy, seeded, and works
on the kit's uint8 grayscale frames, shape ``(size, size)`` or a batch ``(n, size, size)``.

    >>> import numpy as np
    >>> from kit.ml.augment import Augmenter
    >>> frames = np.full((4, 32, 32), 128, dtype=np.uint8)
    >>> out = Augmenter().apply(frames, seed=0)
    >>> out.shape, out.dtype
    ((4, 32, 32), dtype('uint8'))
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Augmenter", "illumination", "shading", "blur", "leaves", "glare"]


def _as_float(frame: np.ndarray) -> np.ndarray:
    return frame.astype(np.float32) / 255.0


def _as_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)


def illumination(frame: np.ndarray, *, gain: float, gamma: float = 1.0) -> np.ndarray:
    """Scale the light of one frame: ``out = gain * in ** gamma`` (on 0..1 intensities).

    ``gain < 1`` darkens (dusk, night), ``gamma > 1`` crushes the shadows the way a small sensor does.

        >>> import numpy as np
        >>> int(illumination(np.full((2, 2), 200, np.uint8), gain=0.5)[0, 0])
        100
    """
    if gain < 0 or gamma <= 0:
        raise ValueError(f"illumination needs gain >= 0 and gamma > 0, got gain={gain}, gamma={gamma}")
    return _as_uint8(gain * _as_float(frame) ** gamma)


def shading(frame: np.ndarray, *, strength: float, angle: float) -> np.ndarray:
    """Multiply one frame by a linear light gradient (a shadow of a building, low sun).

    ``strength`` 0 leaves the frame alone, 1 makes the darker side black; ``angle`` in radians
    is the direction the light falls off.
    """
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"shading strength must be in 0..1, got {strength}")
    size_y, size_x = frame.shape[-2:]
    yy, xx = np.mgrid[0:size_y, 0:size_x].astype(np.float32)
    # position along the gradient, normalised to 0..1 across the frame
    t = np.cos(angle) * xx / max(size_x - 1, 1) + np.sin(angle) * yy / max(size_y - 1, 1)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    return _as_uint8(_as_float(frame) * (1.0 - strength * t))


def _gaussian_kernel(sigma: float) -> np.ndarray:
    radius = max(1, int(np.ceil(3 * sigma)))
    x = np.arange(-radius, radius + 1, dtype=np.float32)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def blur(frame: np.ndarray, *, sigma: float) -> np.ndarray:
    """Gaussian blur of one frame (separable, edges padded by reflection). ``sigma`` in pixels."""
    if sigma < 0:
        raise ValueError(f"blur sigma must be >= 0 pixels, got {sigma}")
    if sigma == 0:
        return frame.copy()
    k = _gaussian_kernel(sigma)
    r = len(k) // 2
    x = _as_float(frame)
    pad = np.pad(x, ((r, r), (0, 0)), mode="reflect")
    x = sum(k[i] * pad[i : i + x.shape[0], :] for i in range(len(k)))
    pad = np.pad(x, ((0, 0), (r, r)), mode="reflect")
    x = sum(k[i] * pad[:, i : i + x.shape[1]] for i in range(len(k)))
    return _as_uint8(x)


def leaves(frame: np.ndarray, *, cover: float, rng: np.random.Generator) -> np.ndarray:
    """Stick large, out-of-focus dark leaves on the lens until about ``cover`` (0..1) of the frame is hidden.

    A leaf on the lens is far out of focus: a big soft-edged blob, dark because it is backlit,
    darker still when the scene is dark.
    """
    if not 0.0 <= cover <= 1.0:
        raise ValueError(f"leaf cover must be a fraction 0..1, got {cover}")
    out = _as_float(frame)
    size_y, size_x = out.shape
    yy, xx = np.mgrid[0:size_y, 0:size_x].astype(np.float32)
    yy, xx = yy / size_y, xx / size_x
    hidden = np.zeros_like(out)
    brightness = float(out.mean()) / 0.5
    for _ in range(60):  # bounded: a leaf each time until the target cover is reached
        if hidden.mean() >= cover:
            break
        cy, cx = rng.uniform(-0.05, 1.05), rng.uniform(-0.05, 1.05)
        a = rng.uniform(0.08, 0.22)  # semi-axes as a share of the frame
        b = a * rng.uniform(0.4, 0.7)
        theta = rng.uniform(0, np.pi)
        dx, dy = xx - cx, yy - cy
        u = dx * np.cos(theta) + dy * np.sin(theta)
        v = -dx * np.sin(theta) + dy * np.cos(theta)
        r = np.sqrt((u / a) ** 2 + (v / b) ** 2)
        alpha = np.clip((1.0 - r) / 0.25, 0.0, 1.0) * rng.uniform(0.85, 1.0)  # soft rim: out of focus
        tone = rng.uniform(0.08, 0.3) * min(1.0, 0.4 + 0.6 * brightness)
        out = out * (1 - alpha) + tone * alpha
        np.maximum(hidden, alpha, out=hidden)
    return _as_uint8(out)


def glare(frame: np.ndarray, *, spots: int, rng: np.random.Generator, noise: float = 0.03) -> np.ndarray:
    """Night-camera artefacts: a few bright round spots (headlights, lamps) and sensor noise."""
    out = _as_float(frame)
    size_y, size_x = out.shape
    yy, xx = np.mgrid[0:size_y, 0:size_x].astype(np.float32)
    yy, xx = yy / size_y, xx / size_x
    for _ in range(spots):
        cy, cx, r = rng.uniform(0.4, 1.0), rng.uniform(0.1, 0.9), rng.uniform(0.01, 0.03)
        out += 0.9 * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r))
    out += rng.normal(0.0, noise, out.shape).astype(np.float32)
    return _as_uint8(out)


@dataclass(frozen=True)
class Augmenter:
    """Random field conditions applied to training frames; each transform fires with probability ``p``.

    Ranges are chosen to cover what the kit's camera meets: dusk and night (gain down to 0.15,
    with glare and noise below 0.4), a shadow across the road, slight defocus, and up to half of
    the lens under leaves.

        >>> import numpy as np
        >>> aug = Augmenter(p=1.0)
        >>> frames = np.full((2, 32, 32), 180, dtype=np.uint8)
        >>> bool((aug.apply(frames, seed=1) != frames).any())
        True
    """

    p: float = 0.5
    gain: tuple[float, float] = (0.15, 1.2)
    gamma: tuple[float, float] = (0.8, 1.6)
    shading: tuple[float, float] = (0.2, 0.7)
    blur_sigma: tuple[float, float] = (0.5, 1.5)
    leaf_cover: tuple[float, float] = (0.05, 0.5)
    max_glare_pairs: int = 4

    def __post_init__(self) -> None:
        if not 0.0 <= self.p <= 1.0:
            raise ValueError(f"Augmenter p is a probability 0..1, got {self.p}")

    def apply_one(self, frame: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Augment one frame with a caller-owned random generator."""
        out = frame
        if rng.random() < self.p:
            gain = rng.uniform(*self.gain)
            out = illumination(out, gain=gain, gamma=rng.uniform(*self.gamma))
            if gain < 0.4:  # a dark frame comes with the night camera's glare and noise
                out = glare(out, spots=int(rng.integers(0, 2 * self.max_glare_pairs + 1)), rng=rng)
        if rng.random() < self.p:
            out = shading(out, strength=rng.uniform(*self.shading), angle=rng.uniform(0, 2 * np.pi))
        if rng.random() < self.p:
            out = blur(out, sigma=rng.uniform(*self.blur_sigma))
        if rng.random() < self.p:
            out = leaves(out, cover=rng.uniform(*self.leaf_cover), rng=rng)
        return out

    def apply(self, frames: np.ndarray, *, seed: int) -> np.ndarray:
        """Augment a frame ``(h, w)`` or a batch ``(n, h, w)`` of uint8 frames; same seed, same result."""
        frames = np.asarray(frames)
        if frames.dtype != np.uint8 or frames.ndim not in (2, 3):
            raise ValueError(
                f"Augmenter expects uint8 frames shaped (h, w) or (n, h, w), got {frames.dtype} {frames.shape}; "
                "pass camera frames or Dataset.x"
            )
        rng = np.random.default_rng(seed)
        if frames.ndim == 2:
            return self.apply_one(frames, rng)
        return np.stack([self.apply_one(f, rng) for f in frames])

    def expand(
        self, frames: np.ndarray, labels: np.ndarray, *, copies: int = 1, seed: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """The original frames plus ``copies`` augmented copies of each, with the labels repeated."""
        xs = [frames] + [self.apply(frames, seed=seed + 1 + i) for i in range(copies)]
        return np.concatenate(xs), np.concatenate([labels] * (copies + 1))

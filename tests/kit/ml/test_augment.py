import numpy as np
import pytest

from kit.ml.augment import Augmenter, blur, illumination, leaves, shading
from kit.ml.data import make_dataset

FRAMES = make_dataset(8, seed=0, size=32).x


def test_same_seed_same_frames_other_seed_other_frames():
    aug = Augmenter(p=1.0)
    a, b, c = aug.apply(FRAMES, seed=3), aug.apply(FRAMES, seed=3), aug.apply(FRAMES, seed=4)
    assert a.dtype == np.uint8 and a.shape == FRAMES.shape
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_p_zero_changes_nothing():
    assert np.array_equal(Augmenter(p=0.0).apply(FRAMES, seed=0), FRAMES)


def test_single_frame_in_single_frame_out():
    assert Augmenter(p=1.0).apply(FRAMES[0], seed=0).shape == FRAMES[0].shape


def test_illumination_scales_light():
    frame = np.full((4, 4), 200, np.uint8)
    assert int(illumination(frame, gain=0.25)[0, 0]) == 50
    assert int(illumination(frame, gain=1.0, gamma=2.0)[0, 0]) == round(255 * (200 / 255) ** 2)
    with pytest.raises(ValueError, match="gamma"):
        illumination(frame, gain=1.0, gamma=0)


def test_shading_darkens_one_side_only():
    frame = np.full((16, 16), 200, np.uint8)
    out = shading(frame, strength=0.5, angle=0.0)  # falls off from left to right
    assert out[:, 0].mean() == 200 and out[:, -1].mean() == pytest.approx(100, abs=1)
    with pytest.raises(ValueError, match="0..1"):
        shading(frame, strength=1.5, angle=0.0)


def test_blur_keeps_the_mean_and_removes_detail():
    frame = FRAMES[0]
    out = blur(frame, sigma=1.5)
    assert abs(float(out.mean()) - float(frame.mean())) < 2
    assert np.abs(np.diff(out.astype(float), axis=1)).mean() < np.abs(np.diff(frame.astype(float), axis=1)).mean()
    assert np.array_equal(blur(frame, sigma=0), frame)


def test_leaves_cover_about_the_share_asked_for():
    frame = np.full((32, 32), 250, np.uint8)
    out = leaves(frame, cover=0.3, rng=np.random.default_rng(0))
    hidden = float((out < 150).mean())
    assert 0.3 <= hidden <= 0.6
    with pytest.raises(ValueError, match="fraction"):
        leaves(frame, cover=2, rng=np.random.default_rng(0))


def test_wrong_input_is_explained():
    with pytest.raises(ValueError, match="uint8"):
        Augmenter().apply(FRAMES.astype(np.float32), seed=0)
    with pytest.raises(ValueError, match="probability"):
        Augmenter(p=2)


def test_expand_keeps_originals_and_repeats_labels():
    labels = np.arange(len(FRAMES))
    x, y = Augmenter(p=1.0).expand(FRAMES, labels, copies=2, seed=0)
    assert x.shape == (3 * len(FRAMES), 32, 32) and list(y) == list(labels) * 3
    assert np.array_equal(x[: len(FRAMES)], FRAMES)


def test_augmented_frames_look_more_like_the_field():
    """Augmentation widens the training statistics toward night and leaves (the point of it)."""
    aug = Augmenter(p=1.0).apply(np.repeat(FRAMES, 4, axis=0), seed=0)
    assert aug.mean() < FRAMES.mean() and aug.std() > 0


def test_glare_adds_bright_spots_and_noise_seeded():
    from kit.ml.augment import glare

    dark = np.full((32, 32), 20, np.uint8)
    a = glare(dark, spots=3, rng=np.random.default_rng(0))
    b = glare(dark, spots=3, rng=np.random.default_rng(0))
    assert np.array_equal(a, b)
    assert a.max() > 150 and a.std() > 1
    assert glare(dark, spots=0, rng=np.random.default_rng(0), noise=0.0).max() == 20

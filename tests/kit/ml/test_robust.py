import numpy as np
import pytest

from kit.ml.robust import (
    DEFAULT_Q,
    add_label_noise,
    cross_entropy,
    generalized_cross_entropy,
    logit_gradient,
    softmax,
)


def _numeric_gradient(f, z, eps=1e-5):
    g = np.zeros_like(z)
    for idx in np.ndindex(z.shape):
        d = np.zeros_like(z)
        d[idx] = eps
        g[idx] = (f(z + d) - f(z - d)) / (2 * eps)
    return g


@pytest.mark.parametrize("loss", ["ce", "gce"])
def test_logit_gradient_matches_finite_differences(loss):
    rng = np.random.default_rng(0)
    z, y = rng.normal(size=(6, 3)), rng.integers(0, 3, 6)
    f = (
        (lambda v: cross_entropy(softmax(v), y))
        if loss == "ce"
        else (lambda v: generalized_cross_entropy(softmax(v), y))
    )
    assert np.allclose(logit_gradient(z, y, loss=loss), _numeric_gradient(f, z), atol=1e-7)


def test_gce_is_bounded_where_ce_explodes():
    p = np.array([[1e-6, 1 - 1e-6, 0.0]])
    assert cross_entropy(p, np.array([0])) > 13
    assert generalized_cross_entropy(p, np.array([0])) <= 1 / DEFAULT_Q


def test_gce_tends_to_ce_as_q_goes_to_zero():
    p = softmax(np.random.default_rng(1).normal(size=(20, 3)))
    y = np.arange(20) % 3
    assert generalized_cross_entropy(p, y, q=1e-4) == pytest.approx(cross_entropy(p, y), rel=1e-3)


def test_gce_listens_less_to_implausible_labels():
    z = np.array([[4.0, 0.0, 0.0], [4.0, 0.0, 0.0]])
    y = np.array([0, 1])  # the second label disagrees with a confident model
    ce = np.abs(logit_gradient(z, y, loss="ce")).sum(axis=1)
    gce = np.abs(logit_gradient(z, y, loss="gce")).sum(axis=1)
    assert gce[1] / ce[1] < gce[0] / ce[0]


def test_label_noise_flips_the_rate_asked_for_and_never_to_the_same_class():
    y = np.arange(3000) % 3
    noisy = add_label_noise(y, 0.3, n_classes=3, seed=0)
    assert 0.27 < (noisy != y).mean() < 0.33
    assert np.array_equal(noisy, add_label_noise(y, 0.3, n_classes=3, seed=0))


def test_bad_arguments_are_explained():
    with pytest.raises(ValueError, match="q=0"):
        generalized_cross_entropy(np.array([[1.0]]), np.array([0]), q=0)
    with pytest.raises(ValueError, match="choose one of"):
        logit_gradient(np.zeros((1, 3)), np.array([0]), loss="mse")
    with pytest.raises(ValueError, match=r"probs \(n, k\)"):
        cross_entropy(np.array([0.2, 0.8]), np.array([1]))


@pytest.mark.slow
def test_keras_loss_matches_the_numpy_loss():
    tf = pytest.importorskip("tensorflow")
    from kit.ml.robust import keras_loss

    probs = softmax(np.random.default_rng(2).normal(size=(8, 3)))
    y = np.arange(8) % 3
    got = float(tf.reduce_mean(keras_loss("gce")(tf.constant(y[:, None]), tf.constant(probs, tf.float32))))
    assert got == pytest.approx(generalized_cross_entropy(probs, y), rel=1e-5)
    ce = float(keras_loss("ce")(tf.constant(y), tf.constant(probs, tf.float32)))
    assert ce == pytest.approx(cross_entropy(probs, y), rel=1e-5)
    with pytest.raises(ValueError, match="choose one of"):
        keras_loss("hinge")

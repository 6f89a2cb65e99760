"""kit.ml.sensors: the sensor vector from readings and from a simulated board, the noise model, stuck sensors."""

from __future__ import annotations

import numpy as np
import pytest

from kit.ml.sensors import DISTANCE_MAX_M, SENSORS, SensorNoise, stick, vector, vector_from_board, vectors


def test_vector_scales_each_reading_and_masks_failed_sensors():
    v = vector(distance_m=1.0, pir=True, light=0.8, road_temp_c=14.0)
    assert v.dtype == np.float32 and v.shape == (len(SENSORS),)
    assert np.allclose(v, [0.5, 1.0, 0.8, 0.2, 1.0, 1.0])
    failed = vector(distance_m=1.0, pir=True, light=0.8, road_temp_c=14.0, distance_ok=False)
    assert failed[0] == 0.0 and failed[SENSORS.index("distance_ok")] == 0.0 and failed[1] == 1.0
    assert vector(distance_m=9.0, pir=False, light=2.0, road_temp_c=10.0)[[0, 2]].tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match="finite"):
        vector(distance_m=float("nan"), pir=False, light=0.5, road_temp_c=10.0)


def test_distance_scale_is_the_boards():
    from kit.board import DISTANCE_MAX_M as board_max

    assert DISTANCE_MAX_M == board_max


def test_vector_from_a_simulated_board_follows_the_world():
    from kit import Board

    with Board() as board:
        board.car_light.red.on()
        board.ped_light.red.on()
        before = vector_from_board(board)
        board.world.advance(minutes=3)
        after = vector_from_board(board)
    assert before[0] > after[0], "a queue built on red: the tail of the queue came closer"
    assert np.isclose(after[0], board.world.queue_distance / DISTANCE_MAX_M, atol=0.05)


def test_noise_errs_at_the_stated_rates_and_exact_does_not():
    rng = np.random.default_rng(0)
    n = 20_000
    waiting = np.r_[np.zeros(n // 2), np.ones(n // 2)]
    kw = dict(distance_m=np.full(n, 1.0), waiting=waiting, light=np.full(n, 0.5), road_temp_c=np.full(n, 12.0))
    noisy = SensorNoise().apply(rng, **kw)
    assert abs(noisy["pir"][n // 2 :].mean() - 0.90) < 0.02 and abs(noisy["pir"][: n // 2].mean() - 0.06) < 0.01
    assert abs((noisy["distance_m"] == DISTANCE_MAX_M).mean() - 0.03) < 0.01
    exact = SensorNoise.exact().apply(rng, **kw)
    assert (exact["pir"] == (waiting > 0)).all() and (exact["distance_m"] == 1.0).all()
    v = vectors(exact)
    assert v.shape == (n, len(SENSORS)) and (v[:, 4:] == 1).all()


def test_stick_unnoticed_or_flagged():
    v = vector(distance_m=0.4, pir=True, light=0.3, road_temp_c=8.0)
    quiet = stick(v, "distance", 0.9)
    assert quiet[0] == np.float32(0.9) and quiet[4] == 1.0
    flagged = stick(v, "pir", 0.0, known=True)
    assert flagged[1] == 0.0 and flagged[5] == 0.0 and flagged[0] == v[0]
    assert (v == vector(distance_m=0.4, pir=True, light=0.3, road_temp_c=8.0)).all(), "the original is unchanged"
    with pytest.raises(ValueError, match="stuck"):
        stick(v, "light", 0.5)

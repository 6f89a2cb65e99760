"""Model files for the over-the-air tests: the shipped float32 model and head-patched variants of it."""

from __future__ import annotations

import numpy as np
import pytest

from kit.ml import shipped_model
from kit.ml.card import load_card
from kit.ml.data import make_dataset
from kit.ml.ota.headpatch import patch_head, shipped_head, write_candidate


@pytest.fixture(scope="session")
def variants(tmp_path_factory):
    """name -> .tflite path (each with its card): "good" (same decisions, another file), "flat" (unsure
    of everything), "rolled" (confident and wrong: every class shifted by one)."""
    folder = tmp_path_factory.mktemp("ota-models")
    base = shipped_model().read_bytes()
    kernel, bias = shipped_head()
    card = load_card("intersection")
    heads = {
        "good": (kernel, bias + np.float32(1e-3)),
        "flat": (kernel * np.float32(0.0), bias * np.float32(0.0)),
        "rolled": (np.roll(kernel, 1, axis=1), np.roll(bias, 1)),
    }
    return {
        name: write_candidate(patch_head(base, kernel, bias, k, b), folder, name, base_card=card)
        for name, (k, b) in heads.items()
    }


@pytest.fixture(scope="session")
def day_frames():
    """64 daylight frames and their true queue classes (what a sensor would say)."""
    data = make_dataset(64, seed=4242, conditions="day")
    return data.x, data.queue

"""The app's model loop with over-the-air models: a delivery is canaried and swapped in while it serves."""

import time

import numpy as np

from kit.apps.health import Health
from kit.apps.model_loop import ModelLoop
from kit.ml import shipped_model
from kit.ml.card import load_card
from kit.ml.data import make_dataset
from kit.ml.ota.headpatch import patch_head, shipped_head, write_candidate


def test_model_loop_takes_a_delivered_model_between_frames_and_keeps_it_after_a_restart(tmp_path):
    kernel, bias = shipped_head()
    good = write_candidate(
        patch_head(shipped_model().read_bytes(), kernel, bias, kernel, bias + np.float32(1e-3)),
        tmp_path,
        "good",
        base_card=load_card("intersection"),
    )
    frames = make_dataset(64, seed=3, conditions="day").x
    loop = ModelLoop("intersection", Health(), models_folder=str(tmp_path / "models"))
    loop.load()
    try:
        assert loop.field is not None and loop.field.status()["version"] == "factory"
        assert loop.field.offer_file(good, version="good-1", card=good.with_suffix(".json")) == "queued"
        factory = loop.host
        for k in range(3000):  # bounded: the updater's thread canaries the frames as they come
            rows = loop.look(lambda k=k: frames[k % len(frames)], float(k))
            assert any(name == "model_queue_class" for name, _, _ in rows)
            if loop.host is not factory:
                break
            time.sleep(0.002)
        assert loop.host is not factory, loop.field.status()
        assert loop.field.status()["version"] == "good-1" and "over the air" in loop.health.model
    finally:
        loop.close()
    again = ModelLoop("intersection", Health(), models_folder=str(tmp_path / "models"))
    again.load()
    try:
        assert again.field.status()["version"] == "good-1" and again.host.path.name.endswith(".tflite")
        assert again.health.model == "good-1 (over the air)"
    finally:
        again.close()


def test_without_a_folder_the_loop_is_as_before():
    loop = ModelLoop("intersection", Health())
    loop.load()
    assert loop.field is None and loop.host is not None
    loop.close()

"""The app's model loop with over-the-air models: a delivery is canaried and swapped in while it serves."""

import json
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


def test_the_running_app_takes_a_deployment_from_its_shadow_and_reports_it(cloud, tmp_path):
    from kit.apps.intersection import AppOptions, IntersectionApp
    from kit.ml.ota.deploy import deploy, reported
    from kit.store import Store

    kernel, bias = shipped_head()
    good = write_candidate(
        patch_head(shipped_model().read_bytes(), kernel, bias, kernel, bias + np.float32(1e-3)),
        tmp_path,
        "good",
        base_card=load_card("intersection"),
    )
    store = Store(tmp_path / "kit.db")
    device = store.params.get("device_id")
    deploy(good, device, version="good-1")
    options = AppOptions(
        seed=0,
        hours=4,
        model="intersection",
        cloud=True,
        mqtt=False,
        poll_s=0.2,
        final_sync_s=2,
        models_folder=str(tmp_path / "models"),
    )
    app = IntersectionApp(store, options)
    try:
        summary = app.run()
    finally:
        app.close()
    assert summary["model"] == "good-1 (over the air)", app.model_loop.field.status()
    seen = reported(device)
    assert seen["reported"]["version"] == "good-1" and seen["reported"]["sha256"] == seen["desired"]["sha256"]
    # the parameter agent left desired.model to the updater: no "model" among its rejected requests
    doc = json.loads(cloud.client("iot-data").get_thing_shadow(thingName=device)["payload"].read())
    assert not (doc["state"]["reported"].get("rejected") or {}).get("model")
    store.close()


def test_kit_run_intersection_models_flag_gives_the_app_its_models_folder(tmp_path, capsys):
    from kit.cli import main

    folder = tmp_path / "ota"
    argv = ["run", "intersection", "--hours", "0.02", "--fresh", "--model", "intersection", "--db"]
    assert main([*argv, str(tmp_path / "kit.db"), "--models", str(folder)]) == 0
    assert "Smart intersection" in capsys.readouterr().out
    assert (folder / "blobs").is_dir()  # the app's updater made its models folder there
